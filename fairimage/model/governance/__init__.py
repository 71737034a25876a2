"""Roles and policies, DUO consent terms, versions, provenance and DRS objects."""
