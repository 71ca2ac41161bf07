"""The conformance suite's retrieval-stage tests (expansion, sub-queries, neighbours), on every backend."""

from memcubed.testing.conformance.retrieve import *  # noqa: F403
