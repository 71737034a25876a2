"""Governance: the one access check, accounts, policies, grants, access requests, versions,
audit, fixity, provenance and DRS."""
