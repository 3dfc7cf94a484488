"""How SQLite consumers and result waiters wake up quickly without a server.

Waking up without a server (same host): SQLite has no LISTEN/NOTIFY, so a waiting take and
``wait_result`` watch ``PRAGMA data_version``, which changes exactly when *another*
connection committed (a read of the shared WAL index, ~10 us, no lock taken). Commits
through this storage's own connection (other threads of the process) wake waiters at once
through a condition variable. One thread per storage object polls at a time
(:class:`ChangeWatch`); the others sleep on the condition, so four idle worker threads cost
what one does. Polls run every ``poll_interval`` (1 ms) while waiters found work in the
last second and every ``IDLE_POLL_INTERVAL`` (5 ms) after that. Alternatives weighed:
inotify on the WAL file is Linux-only, fires before the commit is visible (the WAL index
lives in shared memory, which raises no event) and needs a poll after it anyway; a socket
per consumer needs discovery and cleanup of dead consumers. A poll of one shared-memory
counter is portable, survives crashes and costs ~1% of a core per idle process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, TypeVar

T = TypeVar("T")

#: Poll interval of a waiting take once no take found work for IDLE_AFTER seconds.
IDLE_POLL_INTERVAL = 0.005
IDLE_AFTER = 1.0
#: ``wait_result``: first poll after this many seconds, growing by ``backoff`` up to the cap.
RESULT_FIRST_POLL = 0.0005
RESULT_POLL_CAP = 0.05
#: ``wait_result`` reads the key at least this often even when nothing seems to change.
RESULT_RECHECK = 1.0


class ChangeWatch:
    """Lets the threads of one storage object wait until the database may have changed.

    ``epoch`` grows on every change seen: :meth:`bump` after a commit through the storage's
    own connection, or a poll of ``probe()`` (``PRAGMA data_version``) returning a new
    value. Take ``epoch`` *before* looking, then :meth:`wait` with it: a change between the
    look and the wait is not lost.

    :param probe: returns a value that differs whenever another connection committed.
    """

    def __init__(self, probe: Callable[[], Hashable]) -> None:
        self._probe = probe
        self._cond = threading.Condition(threading.Lock())
        self._polling = False  # one waiter polls; the others sleep on the condition
        self._version: Hashable = None
        self.busy_at = time.monotonic()  # when a waiter last found work (see wait)
        self.epoch = 0

    def bump(self) -> None:
        """Record a change made through this storage and wake every waiter."""
        with self._cond:
            self._changed_locked()

    def _changed_locked(self) -> None:
        self.epoch += 1
        self._cond.notify_all()

    def wait_local(self, epoch: int, timeout: float) -> None:
        """Sleep up to ``timeout`` seconds; a :meth:`bump` after ``epoch`` cuts it short."""
        with self._cond:
            if self.epoch == epoch and timeout > 0:
                self._cond.wait(timeout)

    def wait(self, epoch: int, timeout: float, interval: float) -> int:
        """Wait up to ``timeout`` seconds for a change after ``epoch``; return the epoch.

        The polling waiter probes every ``interval`` seconds, or every
        ``IDLE_POLL_INTERVAL`` once no waiter found work (``busy_at``) for ``IDLE_AFTER``
        seconds; on leaving it hands polling over. Commits alone do not count as work:
        heartbeats and scheduler leases commit every second on an idle queue.
        """
        deadline = time.monotonic() + timeout
        polling = False
        with self._cond:
            try:
                while self.epoch == epoch:
                    now = time.monotonic()
                    if now >= deadline:
                        break
                    if self._polling and not polling:
                        self._cond.wait(deadline - now)
                        continue
                    polling = self._polling = True
                    if now - self.busy_at > IDLE_AFTER:
                        interval = max(interval, IDLE_POLL_INTERVAL)
                    self._cond.wait(min(interval, deadline - now))
                    if self.epoch == epoch:
                        self._poll_locked()
            finally:
                if polling:
                    self._polling = False
                    self._cond.notify_all()  # another waiter takes the polling over
            return self.epoch

    def _poll_locked(self) -> None:
        # The probe takes the storage's lock: never hold the condition meanwhile (a writer
        # holding that lock bumps through the condition).
        self._cond.release()
        try:
            version = self._probe()
        finally:
            self._cond.acquire()
        if version != self._version:
            self._version = version
            self._changed_locked()


class SqliteWaitMixin:
    """The waiting take and ``wait_result`` of the SQLite storages."""

    _generation: int
    _change_watch: ChangeWatch
    blocking: bool
    read_timeout: float
    poll_interval: float

    if TYPE_CHECKING:  # provided by BaseSqlStorage

        def _locked(self) -> threading.Lock: ...

        def _connection(self) -> Any: ...

        def has_data_for_key(self, key: str) -> bool: ...

    def _watch(self) -> ChangeWatch:
        """The waiters' change watch of this process (a forked child gets its own)."""
        self._locked()  # resets the per-process state after a fork
        return self._change_watch

    def _data_version(self) -> tuple[int, int]:
        """A value that changes whenever another connection commits to the database."""
        with self._locked():
            row = self._connection().execute("pragma data_version").fetchone()
            return self._generation, int(row[0])

    def _take_waiting(self, take: Callable[[], T | None]) -> T | None:
        """``take()``; when blocking and it finds nothing, retry it whenever the database
        changes, for up to ``read_timeout`` seconds (see the module docstring)."""
        watch = self._watch()
        epoch = watch.epoch  # before looking, so a commit right after is not missed
        found = take()
        deadline = time.monotonic() + self.read_timeout
        while found is None and self.blocking:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            epoch = watch.wait(epoch, remaining, self.poll_interval)
            found = take()
        if found is not None:
            watch.busy_at = time.monotonic()  # more work likely follows: poll fast
        return found

    def wait_result(
        self,
        key: str,
        timeout: float | None = None,
        backoff: float = 1.15,
        max_delay: float = 1.0,
    ) -> bool:
        """Wait until ``key`` exists; False once ``timeout`` seconds pass (None: forever,
        0: check once).

        Polls from ``RESULT_FIRST_POLL`` (0.5 ms), the delay growing by ``backoff`` up to
        ``min(max_delay, RESULT_POLL_CAP)`` (50 ms). A poll reads ``PRAGMA data_version``
        and looks the key up only when some commit happened since the last look (or
        ``RESULT_RECHECK`` seconds passed); a commit through this storage object wakes the
        wait at once.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        cap = max(min(max_delay, RESULT_POLL_CAP), RESULT_FIRST_POLL)
        delay = RESULT_FIRST_POLL
        watch = self._watch()
        seen: Hashable = None
        checked_at = 0.0
        while True:
            epoch = watch.epoch
            version = (epoch, self._data_version())
            now = time.monotonic()
            if version != seen or now - checked_at >= RESULT_RECHECK:
                if self.has_data_for_key(key):
                    return True
                seen, checked_at = version, now
            if deadline is not None and now >= deadline:
                return False
            watch.wait_local(epoch, delay if deadline is None else min(delay, deadline - now))
            delay = min(delay * max(backoff, 1.0), cap)
