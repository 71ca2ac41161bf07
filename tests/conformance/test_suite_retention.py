"""The deleted-cube retention conformance suite on every backend."""

from memcubed.testing.conformance.retention import *  # noqa: F403
