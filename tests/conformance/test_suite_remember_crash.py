"""The conformance suite's remember crash-safety tests, on every backend."""

from memcubed.testing.conformance.remember_crash import *  # noqa: F403
