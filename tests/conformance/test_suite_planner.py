"""The conformance suite's planner tests, on every backend."""

from memcubed.testing.conformance.planner import *  # noqa: F403
