"""The conformance suite's embedder-record tests, on every backend."""

from memcubed.testing.conformance.embedder_record import *  # noqa: F403
