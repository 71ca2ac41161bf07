"""The working-set backoff and admission conformance suite on every backend."""

from memcubed.testing.conformance.scheduler_backoff import *  # noqa: F403
