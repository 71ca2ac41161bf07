"""Helpers for testing memcubed and programs built on it (shipped with the package)."""
