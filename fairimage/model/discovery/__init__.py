"""What search indexes, and the records others harvest: JSON-LD, RO-Crate, DataCite, OAI-PMH."""
