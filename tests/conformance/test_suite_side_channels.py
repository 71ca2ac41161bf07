"""The conformance suite's side_channels tests, on every backend."""

from memcubed.testing.conformance.side_channels import *  # noqa: F403
