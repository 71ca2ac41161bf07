"""The conformance suite (``memcubed.testing.conformance``) runs here once per backend: SQLite and PostgreSQL."""

from memcubed.testing.conformance.fixtures import *  # noqa: F403
