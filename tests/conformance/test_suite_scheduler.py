"""The scheduler conformance suite on every backend."""

from memcubed.testing.conformance.scheduler import *  # noqa: F403
