"""Result handles: :class:`Result`, :class:`ResultGroup` and :class:`ChordResult`."""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from huey.constants import EmptyData
from huey.exceptions import ResultTimeout, TaskException
from huey.utils import Error, normalize_time

if TYPE_CHECKING:
    from huey._task import Task
    from huey.api import Huey

R = TypeVar("R")


class Result(Generic[R]):
    """A handle on the result of one task.

    Reads are destructive by default (the stored value is removed) and the value is cached on
    the handle, so calling ``get()`` again returns it. An ``Error`` result raises
    ``TaskException`` until :meth:`reset`.
    """

    def __init__(self, huey: Huey, task: Task) -> None:
        self.huey = huey
        self.task = task
        self.revoke_id = task.revoke_id
        self._result: Any = EmptyData

    @property
    def id(self) -> str:
        """The task id."""
        return self.task.id

    def __repr__(self) -> str:
        return f"<Result: task {self.task.id}>"

    def __call__(self, *args: Any, **kwargs: Any) -> R:
        return self.get(*args, **kwargs)

    def _read(self, preserve: bool) -> Any:
        raw = self.huey.get_raw(self.id, peek=preserve)
        if raw is EmptyData:
            return EmptyData
        return self.huey.deserialize(raw)

    def is_ready(self) -> bool:
        """Whether the result is available. Reads (destructively) and caches the value."""
        if self._result is EmptyData:
            self._result = self._read(False)
        return self._result is not EmptyData

    def get_raw_result(
        self,
        blocking: bool = False,
        timeout: float | None = None,
        backoff: float = 1.15,
        max_delay: float = 1.0,
        revoke_on_timeout: bool = False,
        preserve: bool = False,
    ) -> Any:
        """Like :meth:`get`, but return a stored ``Error`` instead of raising."""
        if self._result is EmptyData:
            if blocking:
                value = self._read_blocking(timeout, backoff, max_delay, preserve)
                if value is EmptyData:
                    if revoke_on_timeout:
                        self.revoke()
                    raise ResultTimeout("timed out waiting for result")
            else:
                value = self._read(preserve)
            if value is EmptyData:
                return None
            self._result = value
        return self._result

    def _read_blocking(
        self, timeout: float | None, backoff: float, max_delay: float, preserve: bool
    ) -> Any:
        """Wait for the value, then read it; ``EmptyData`` on timeout.

        ``storage.wait_and_read`` looks for the key before it waits (Redis and PostgreSQL
        wait and read in fewer round trips), so a blocking get costs one round trip less
        than a read followed by a wait when the value is still to come (the usual case).
        """
        raw = self.huey.storage.wait_and_read(self.id, timeout, backoff, max_delay, peek=preserve)
        if raw is EmptyData:
            return EmptyData
        return self.huey.deserialize(raw)  # type: ignore[arg-type]

    def get(
        self,
        blocking: bool = False,
        timeout: float | None = None,
        backoff: float = 1.15,
        max_delay: float = 1.0,
        revoke_on_timeout: bool = False,
        preserve: bool = False,
    ) -> R:
        """Return the task's value (None if not ready and not ``blocking``).

        :param blocking: wait for the value; ``timeout=None`` waits forever.
        :param timeout: seconds to wait; then ``ResultTimeout`` is raised.
        :param revoke_on_timeout: revoke the task when the wait times out.
        :param preserve: read without removing the stored value.
        :raises TaskException: the task failed (the stored value is an ``Error``).
        """
        value = self.get_raw_result(
            blocking, timeout, backoff, max_delay, revoke_on_timeout, preserve
        )
        if isinstance(value, Error):
            raise TaskException(value.metadata)
        return value  # type: ignore[no-any-return]

    def is_revoked(self) -> bool:
        """Whether this task (or its class) is revoked."""
        return self.huey.is_revoked(self.task, peek=True)

    def revoke(self, revoke_once: bool = True) -> None:
        """Revoke this task; by default only its next run is skipped."""
        self.huey.revoke(self.task, revoke_once=revoke_once)

    def restore(self) -> bool:
        """Undo a revocation; return whether one existed."""
        return self.huey.restore(self.task)

    def reschedule(
        self,
        eta: datetime.datetime | None = None,
        delay: float | datetime.timedelta | None = None,
        expires: Any = None,
        priority: float | None = None,
        preserve_pipeline: bool = True,
    ) -> Any:
        """Revoke this run (once) and enqueue a new task with the same arguments.

        Returns the new handle.
        """
        self.revoke(revoke_once=True)
        if eta is not None or delay is not None:
            eta = normalize_time(eta, delay, self.huey.utc)
        task = self.task
        new_task = type(task)(
            task.args,
            task.kwargs,
            eta=eta,
            retries=task.retries,
            retry_delay=task.retry_delay,
            priority=task.priority if priority is None else priority,
            expires=task.expires if expires is None else expires,
            on_complete=task.on_complete if preserve_pipeline else None,
            on_error=task.on_error if preserve_pipeline else None,
            timeout=task.timeout,
            chord_config=task.chord_config,
            retry_backoff=task.retry_backoff,
        )
        return self.huey.enqueue(new_task)

    def reset(self) -> None:
        """Forget the cached value (to see a retry's result after an error was read)."""
        self._result = EmptyData


class ResultGroup:
    """Handles on several results (a pipeline's stages, a group, a ``map()``)."""

    def __init__(self, results: list[Any]) -> None:
        self._results = results

    def get(self, *args: Any, **kwargs: Any) -> list[Any]:
        """The values of every member, in order (arguments as for ``Result.get``)."""
        return [result.get(*args, **kwargs) for result in self._results]

    __call__ = get

    def __getitem__(self, idx: int) -> Any:
        """The *value* of member ``idx`` (blocks until it is ready)."""
        return self._results[idx].get(True)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._results)

    def __len__(self) -> int:
        return len(self._results)

    def as_completed(self, backoff: float = 1.15, max_delay: float = 1.0) -> Iterator[Any]:
        """Yield values in the order the tasks complete (a failure raises TaskException)."""
        pending = [[result, 0.1, 0.0] for result in self._results]
        while pending:
            now = time.monotonic()
            for entry in list(pending):
                result, delay, due = entry
                if due > now:
                    continue
                if result.is_ready():
                    pending.remove(entry)
                    yield result.get()
                else:
                    entry[1] = min(delay * backoff, max_delay)
                    entry[2] = now + delay
            if pending:
                wait = min(entry[2] for entry in pending) - time.monotonic()
                if wait > 0:
                    time.sleep(wait)


class ChordResult:
    """The handles of a chord: its members, its callback and the callback's pipeline."""

    def __init__(
        self, results: ResultGroup, callback_result: Any, pipeline: ResultGroup | None = None
    ) -> None:
        self.results = results
        self.callback = callback_result
        self.pipeline_results = pipeline

    def get(self, *args: Any, **kwargs: Any) -> Any:
        """The callback's value (arguments as for ``Result.get``)."""
        return self.callback.get(*args, **kwargs)

    __call__ = get

    def reset(self) -> None:
        """Forget the callback handle's cached value."""
        self.callback.reset()
