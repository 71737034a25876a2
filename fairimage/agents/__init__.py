"""Interfaces for AI agents: the Model Context Protocol server (``fairimage mcp``)."""
