"""The conformance suite's blob garbage collection tests, on every backend."""

from memcubed.testing.conformance.gc import *  # noqa: F403
