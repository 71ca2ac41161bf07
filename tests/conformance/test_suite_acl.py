"""The conformance suite's acl tests, on every backend."""

from memcubed.testing.conformance.acl import *  # noqa: F403
