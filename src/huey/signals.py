"""Signal names and the :class:`Signal` dispatcher.

Receivers are called as ``handler(signal_name, task, *extra)`` in the process or thread
that emitted the signal. A receiver that raises is logged and never stops the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("huey.signals")

SIGNAL_CANCELED = "canceled"
SIGNAL_COMPLETE = "complete"
SIGNAL_ERROR = "error"
SIGNAL_EXECUTING = "executing"
SIGNAL_EXPIRED = "expired"
SIGNAL_LOCKED = "locked"
SIGNAL_SCHEDULED = "scheduled"
SIGNAL_RETRYING = "retrying"
SIGNAL_REVOKED = "revoked"
SIGNAL_INTERRUPTED = "interrupted"
SIGNAL_TIMEOUT = "timeout"
SIGNAL_RATE_LIMITED = "rate-limited"
SIGNAL_ENQUEUED = "enqueued"

Receiver = Callable[..., Any]


class Signal:
    """Dispatches signals to receivers, per channel plus the catch-all ``'any'`` channel."""

    __slots__ = ("receivers",)

    def __init__(self) -> None:
        self.receivers: dict[str, list[Receiver]] = {"any": []}

    def connect(self, receiver: Receiver, *signals: str) -> None:
        """Connect ``receiver`` to ``signals``, or to every signal when none are given."""
        for signal in signals or ("any",):
            self.receivers.setdefault(signal, []).append(receiver)

    def disconnect(self, receiver: Receiver, *signals: str) -> None:
        """Disconnect ``receiver`` from ``signals``, or from every channel when none are given.

        A receiver that is not connected is ignored.
        """
        for signal in signals or tuple(self.receivers):
            receivers = self.receivers.get(signal)
            if receivers:
                self.receivers[signal] = [r for r in receivers if r is not receiver]

    def send(self, signal: str, task: Any, *args: Any, **kwargs: Any) -> None:
        """Call the receivers of ``signal``, then the ``'any'`` receivers.

        Each receiver is isolated: its exception is logged and the others still run.
        """
        for receiver in [*self.receivers.get(signal, ()), *self.receivers["any"]]:
            try:
                receiver(signal, task, *args, **kwargs)
            except Exception:
                logger.exception(
                    "Signal receiver %r failed for %s (task %s)",
                    receiver,
                    signal,
                    getattr(task, "id", None),
                )
