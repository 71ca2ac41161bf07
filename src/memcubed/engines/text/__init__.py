"""Plaintext memory: embedding, indexing and hybrid retrieval."""

from memcubed.engines.text.config import TextConfig
from memcubed.engines.text.engine import FusedHit, TextEngine

__all__ = ["FusedHit", "TextConfig", "TextEngine"]
