"""The Python API."""

from memcubed.interfaces.api.client import Memcubed, open_store
from memcubed.interfaces.api.migrate import migrate_store

__all__ = ["Memcubed", "migrate_store", "open_store"]
