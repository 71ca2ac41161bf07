"""An in-process event bus: the kernel emits after each committed write and after each read.

In-process subscribers only; the durable record of the same events is the event log (``kernel.outbox``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from memcubed.schemas.events import Event

__all__ = ["Event", "EventBus", "Handler"]

_log = logging.getLogger(__name__)


Handler = Callable[[Event], None]


class EventBus:
    """Synchronous publish/subscribe; a failing handler is logged and never breaks the operation."""

    def __init__(self) -> None:
        self._handlers: list[tuple[Handler, frozenset[str] | None]] = []
        self._lock = threading.Lock()

    def subscribe(self, handler: Handler, kinds: set[str] | None = None) -> Callable[[], None]:
        """Call ``handler`` for every event (or only those of ``kinds``); return an unsubscribe function."""
        entry = (handler, frozenset(kinds) if kinds is not None else None)
        with self._lock:
            self._handlers.append(entry)

        def unsubscribe() -> None:
            with self._lock:
                if entry in self._handlers:
                    self._handlers.remove(entry)

        return unsubscribe

    def emit(self, event: Event) -> None:
        """Deliver ``event`` to every matching handler."""
        with self._lock:
            handlers = list(self._handlers)
        for handler, kinds in handlers:
            if kinds is None or event.kind in kinds:
                try:
                    handler(event)
                except Exception:  # a subscriber's bug must not undo a committed operation
                    _log.exception("event handler %r failed on %s", handler, event.kind)
