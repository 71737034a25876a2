"""Domain: plain models and pure rules. Imports nothing else of the project."""
