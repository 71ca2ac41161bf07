"""The conformance suite's portable-bundle tests, on every backend."""

from memcubed.testing.conformance.bundle import *  # noqa: F403
