"""The conformance suite's search_namespaces tests, on every backend."""

from memcubed.testing.conformance.search_namespaces import *  # noqa: F403
