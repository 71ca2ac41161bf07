"""The conformance suite's derivation tests, on every backend."""

from memcubed.testing.conformance.derivation import *  # noqa: F403
