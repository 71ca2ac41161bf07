"""The conformance suite's principals tests, on every backend."""

from memcubed.testing.conformance.principals import *  # noqa: F403
