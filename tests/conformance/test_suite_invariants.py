"""The conformance suite's invariants tests, on every backend."""

from memcubed.testing.conformance.invariants import *  # noqa: F403
