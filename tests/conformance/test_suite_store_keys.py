"""The conformance suite's store_keys tests, on every backend."""

from memcubed.testing.conformance.store_keys import *  # noqa: F403
