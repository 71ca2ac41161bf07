"""The scheduler: runs long work (jobs) and the policies that move memory between forms by themselves.

``signals`` folds the event log into usage, ``budgets`` bounds what may be spent, ``policies`` rank what
to do, ``plan`` admits it against the budgets; the kernel (``kernel.scheduler``) builds the view, runs the
plan and records every decision. All of it but the kernel glue is pure and deterministic.
"""

from memcubed.engines.scheduler.budgets import Budget, Budgets, Cost, Ledger
from memcubed.engines.scheduler.loop import SchedulerLoop, SchedulerRunner
from memcubed.engines.scheduler.plan import Decision, plan
from memcubed.engines.scheduler.policies import POLICIES, Policy, get_policy
from memcubed.engines.scheduler.signals import Signals, Usage, estimate_tokens
from memcubed.engines.scheduler.view import CubeInfo, Derived, PolicyConfig, Proposal, View
from memcubed.engines.scheduler.worker import JobRunner, JobWorker

__all__ = [
    "POLICIES",
    "Budget",
    "Budgets",
    "Cost",
    "CubeInfo",
    "Decision",
    "Derived",
    "JobRunner",
    "JobWorker",
    "Ledger",
    "Policy",
    "PolicyConfig",
    "Proposal",
    "SchedulerLoop",
    "SchedulerRunner",
    "Signals",
    "Usage",
    "View",
    "estimate_tokens",
    "get_policy",
    "plan",
]
