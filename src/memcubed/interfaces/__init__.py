"""Interfaces: Python API, CLI (and later REST, MCP); they only call the kernel."""
