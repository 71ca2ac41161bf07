"""Backends: stores, blob stores, embedders and language models behind small Protocols."""
