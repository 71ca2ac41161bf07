"""Importers for public conversation-memory datasets (the data itself is never shipped)."""
