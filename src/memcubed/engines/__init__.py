"""Engines: plaintext retrieval, activation (KV-cache), parameter (LoRA) and the scheduler."""
