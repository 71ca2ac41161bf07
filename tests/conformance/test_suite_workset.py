"""The conformance suite's working set tests, on every backend."""

from memcubed.testing.conformance.workset import *  # noqa: F403
