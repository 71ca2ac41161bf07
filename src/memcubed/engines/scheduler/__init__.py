"""The scheduler: runs long work (jobs) and, later, the policies that move memory between forms."""

from memcubed.engines.scheduler.worker import JobRunner, JobWorker

__all__ = ["JobRunner", "JobWorker"]
