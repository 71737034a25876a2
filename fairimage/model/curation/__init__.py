"""REMBI metadata, its checks and FAIR score, and ontology terms."""
