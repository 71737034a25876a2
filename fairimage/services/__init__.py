"""Use cases: the only layer that combines the catalog and the object store."""
