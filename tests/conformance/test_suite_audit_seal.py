"""The conformance suite's audit_seal tests, on every backend."""

from memcubed.testing.conformance.audit_seal import *  # noqa: F403
