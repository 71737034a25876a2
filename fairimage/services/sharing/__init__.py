"""Sharing with people who are not users yet: share links for a study."""
