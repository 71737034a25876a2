"""Transparency log over the audit log: RFC 9162 Merkle trees, C2SP checkpoints and cosignatures."""
