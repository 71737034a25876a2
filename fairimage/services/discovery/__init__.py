"""Discovery: reading and searching the catalog, persistent identifiers, OAI-PMH and exports."""
