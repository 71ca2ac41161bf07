"""The Python API."""

from memcubed.interfaces.api.client import Memcubed, open_store

__all__ = ["Memcubed", "open_store"]
