"""Curation: a study's REMBI metadata, its spreadsheets, annotations and tags."""
