"""The conformance suite's chat tests, on every backend."""

from memcubed.testing.conformance.chat import *  # noqa: F403
