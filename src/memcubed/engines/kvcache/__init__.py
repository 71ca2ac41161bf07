"""Activation memory: KV-caches compiled from plaintext, stored as a prefix tree, injected, or simulated."""

from memcubed.engines.kvcache.config import KVCacheConfig, StorageDType
from memcubed.engines.kvcache.engine import BuildReport, KVCacheEngine, KVPrefix, Mode
from memcubed.engines.kvcache.memory import MEMORY_NOTICE, CubeText, ordered, render_memory, with_notice
from memcubed.engines.kvcache.prefix import Link, MemorySegmentIndex, SegmentIndex, segment_key
from memcubed.engines.kvcache.serialize import KVSegment, SegmentMeta
from memcubed.engines.kvcache.simulate import render_prefix, with_prefix

__all__ = [
    "MEMORY_NOTICE",
    "BuildReport",
    "CubeText",
    "KVCacheConfig",
    "KVCacheEngine",
    "KVPrefix",
    "KVSegment",
    "Link",
    "MemorySegmentIndex",
    "Mode",
    "SegmentIndex",
    "SegmentMeta",
    "StorageDType",
    "ordered",
    "render_memory",
    "render_prefix",
    "segment_key",
    "with_notice",
    "with_prefix",
]
