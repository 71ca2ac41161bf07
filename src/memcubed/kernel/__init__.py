"""The kernel: rights, versions, audit and events around every operation."""

from memcubed.kernel.events import Event, EventBus
from memcubed.kernel.kernel import ADMIN, Kernel, Progress

__all__ = ["ADMIN", "Event", "EventBus", "Kernel", "Progress"]
