"""Task locks and fixed-window rate limits, both kept in the storage's KV and counters."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from huey.constants import EmptyData
from huey.exceptions import RateLimitExceeded, TaskLockedException

if TYPE_CHECKING:
    from huey.api import Huey

F = TypeVar("F", bound=Callable[..., Any])
logger = logging.getLogger("huey")


class TaskLock(contextlib.ContextDecorator):
    """A named lock: only one holder at a time, across every consumer of the storage.

    :param huey: the Huey instance whose storage holds the lock.
    :param name: the lock name; the key is ``<huey.name>.lock.<name>``.
    :param ttl: seconds after which a lock whose holder died is released by the storage.
    """

    def __init__(self, huey: Huey, name: str, ttl: float | None = None) -> None:
        if ttl is not None and (not isinstance(ttl, (int, float)) or ttl <= 0):
            raise ValueError(f"lock ttl must be a positive number of seconds, got {ttl!r}")
        self._huey = huey
        self._name = name
        self._ttl = ttl
        self._key = f"{huey.name}.lock.{name}"
        # Registered at construction so decorator locks are found by flush_locks().
        huey._locks.add(self._key)

    def is_locked(self) -> bool:
        """Whether somebody holds the lock."""
        return self._huey.storage.has_data_for_key(self._key)

    locked = is_locked

    def acquire(self) -> bool:
        """Take the lock or raise ``TaskLockedException``.

        Inside a running task the lock's value is the task's id (its owner), so a lock held
        by a worker that died is released when that task is delivered again; elsewhere it
        is ``'1'`` as upstream stores it (upstream only checks that the key exists).
        """
        task = getattr(self._huey._local, "current_task", None)
        owner = task.id if task is not None else "1"
        if not self._huey.put_if_empty(self._key, owner, self._ttl):
            if task is None or not self._take_over_from_dead_run(task):
                raise TaskLockedException(f"unable to acquire lock {self._name}")
        return True

    def _take_over_from_dead_run(self, task: Any) -> bool:
        """Whether a re-delivered task may take over this lock from its own dead run.

        A task delivered again after its worker died (``_delivery`` gives it a
        ``_healed_locks`` set) may find a lock the dead run took. Locks registered in this
        process were released before it ran; a lock created inside the task's body is
        only known now: if its owner is this very task, nobody else holds it, so the run
        takes it over - once per lock, so a nested acquire still fails as upstream's does.
        """
        healed = getattr(task, "_healed_locks", None)
        if healed is None or self._key in healed:
            return False
        raw = self._huey.storage.peek_data(self._key)
        try:
            holder = None if raw is EmptyData else self._huey.deserialize(raw)  # type: ignore[arg-type]
        except Exception:
            return False
        if holder != task.id:
            return False
        healed.add(self._key)
        logger.warning(
            "Took over lock %s held by task %s when its worker died", self._name, task.id
        )
        return True

    def clear(self) -> bool:
        """Release the lock whoever holds it; return whether it was held."""
        return self._huey.delete(self._key)

    release = clear

    def __enter__(self) -> TaskLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._huey.delete(self._key)


class RateLimit(contextlib.ContextDecorator):
    """A fixed-window rate limit: at most ``limit`` acquisitions per ``per`` seconds.

    :param retry: when the window is full, whether the worker retries the task at the next
        window (``RateLimitExceeded.retry``).
    """

    def __init__(self, huey: Huey, name: str, limit: int, per: int, retry: bool = True) -> None:
        if not isinstance(limit, int) or limit < 1:
            raise ValueError(f"rate limit must be a positive integer, got {limit!r}")
        if not isinstance(per, (int, float)) or per <= 0:
            raise ValueError(f"rate limit period must be a positive number, got {per!r}")
        self._huey = huey
        self.name = name
        self.limit = limit
        self.per = per
        self.retry = retry
        self._counter_key = f"{huey.name}.rl.{name}"
        self._window_key = f"{huey.name}.rl.{name}.w"

    def acquire(self) -> None:
        """Count one use; raise ``RateLimitExceeded`` when the window is full."""
        now = time.time()
        window = int(now) // self.per
        if self._huey.get(self._window_key, peek=True) != window:
            self._huey.storage.delete_counter(self._counter_key)
            self._huey.put(self._window_key, window)
        count = self._huey.storage.incr(self._counter_key)
        if count > self.limit:
            delay = (window + 1) * self.per - now
            raise RateLimitExceeded(self.name, delay, self.retry)

    def current_usage(self) -> int:
        """How many acquisitions the current window has counted."""
        return self._huey.storage.incr(self._counter_key, 0)

    def reset(self) -> None:
        """Forget the current window and its count."""
        self._huey.delete(self._window_key)
        self._huey.storage.delete_counter(self._counter_key)

    def __enter__(self) -> None:
        self.acquire()

    def __exit__(self, *exc: object) -> None:
        pass
