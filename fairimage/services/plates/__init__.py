"""Plates: high-content screening plates in (vendor folders, platemaps), listed, served and viewed."""
