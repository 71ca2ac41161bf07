"""Portable MemCube bundles: the file format (a verified zip with a manifest of hashes and versions)."""

from memcubed.engines.bundle.archive import MANIFEST, BundleLimits, BundleWriter, ReadBundle, blob_entry, read_bundle

__all__ = ["MANIFEST", "BundleLimits", "BundleWriter", "ReadBundle", "blob_entry", "read_bundle"]
