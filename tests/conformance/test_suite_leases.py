"""The conformance suite's job lease tests, on every backend."""

from memcubed.testing.conformance.leases import *  # noqa: F403
