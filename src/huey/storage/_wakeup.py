"""One server waiter per storage object and process (Redis, PostgreSQL).

The idle worker threads of a consumer share one storage object. If each one blocked in
its own server-side wait (``BLMOVE`` on Redis, ``LISTEN`` on PostgreSQL), one enqueue
would wake all of them: they would race for the message (one take wins, the others come
back empty) and fight for the GIL with the winner while it runs the task. Measured on
Redis with ``-w 4`` threads, that herd cost about half of an enqueue-to-result round trip.

:class:`WaitGate` lets one thread per storage object wait on the server at a time; the
other idle threads sleep on a local condition and take the server wait over, one at a
time, as soon as the waiter leaves (with work, or when its wait ran out). A burst is not
slowed down: the thread that found work hands the wait over at once, and the next
waiter's server wait returns at once while messages remain. Threads that are not idle
never touch the gate: a take that finds work returns without waiting.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

_ATTRIBUTE = "_hueyng_wait_gate"


class WaitGate:
    """Admits one thread at a time to the server-side wait of a storage object."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._held = False
        #: per thread: ``drained``, whether the thread's last take left the queue empty
        self.threads = threading.local()

    @classmethod
    def of(cls, owner: object) -> WaitGate:
        """The gate of ``owner`` in this process (a forked child gets a new one)."""
        pid = os.getpid()
        entry: tuple[int, WaitGate] | None = owner.__dict__.get(_ATTRIBUTE)
        if entry is None or entry[0] != pid:
            # Two threads racing here may briefly use two gates: at worst two waiters once.
            entry = (pid, cls())
            owner.__dict__[_ATTRIBUTE] = entry
        return entry[1]

    def enter(self, timeout: float) -> bool:
        """Become the waiter within ``timeout`` seconds; False if another thread still is."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._held:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            self._held = True
            return True

    def leave(self) -> None:
        """Stop being the waiter and hand the wait over to one sleeping thread."""
        with self._cond:
            self._held = False
            self._cond.notify()


def take_waiting(
    owner: object,
    timeout: float,
    take_now: Callable[[], list[T]],
    wait_and_take: Callable[[float], list[T] | None],
    drained: Callable[[list[T]], bool] | None = None,
) -> list[T]:
    """Take work, waiting for up to ``timeout`` seconds as ``owner``'s single server waiter.

    ``take_now()`` takes without waiting. ``wait_and_take(seconds)`` waits on the server
    for up to ``seconds`` and takes in the same round trip: it returns at once when work
    is there, ``[]`` when the wait ran out (or another consumer was quicker), and None to
    end the wait at once (its connection was lost). It is called only while this thread
    holds the gate, and again until it returns something or the time is up. When nobody
    holds the gate, the thread goes straight to ``wait_and_take`` (one round trip whether
    or not work is waiting); otherwise it tries ``take_now`` before queueing for the gate.
    Returns ``[]`` on timeout.

    ``drained(taken)`` tells whether a take left the queue empty (it got fewer messages
    than it asked for). Give it only when the server wait returns at once while work is
    queued (Redis' BLMOVE): then a thread whose last take drained the queue skips
    ``take_now`` (a round trip that would find nothing, just as a result is being
    stored) and queues for the gate at once; work that comes meanwhile wakes the waiter,
    who hands the wait over to it.
    """
    gate = WaitGate.of(owner)
    deadline = time.monotonic() + timeout
    entered = gate.enter(0)
    if not entered and not (drained is not None and getattr(gate.threads, "drained", False)):
        taken = take_now()
        if taken:
            gate.threads.drained = drained is not None and drained(taken)
            return taken
    while True:
        if not entered:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not gate.enter(remaining):
                return []
        try:
            found = wait_and_take(max(deadline - time.monotonic(), 0.0))
        finally:
            gate.leave()
            entered = False
        if found is None:
            return []
        if found:
            gate.threads.drained = drained is not None and drained(found)
            return found
