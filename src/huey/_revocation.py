"""Revocation for ``Huey``: per-instance (``r:<id>``) and per-class (``rt:<name>``) flags.

A flag is the serialized tuple ``(revoke_until_or_None, revoke_once)``.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from huey._result import Result
from huey._task import Task, TaskWrapper
from huey.utils import normalize_time

if TYPE_CHECKING:
    from huey.registry import Registry
    from huey.storage._base import BaseStorage

logger = logging.getLogger("huey")

#: How long prefetched revocation flags stay valid: a revoke issued later than this
#: before a prefetched task starts is always seen.
REVOCATION_PREFETCH_SECONDS = 0.05


class RevocationMixin:
    """Revoke / restore / is_revoked for a Huey instance."""

    _registry: Registry
    storage: BaseStorage
    utc: bool
    _local: threading.local

    if TYPE_CHECKING:  # provided by Huey

        def put(self, key: str, data: Any) -> Any: ...

        def delete(self, key: str) -> bool: ...

        def deserialize(self, data: bytes) -> Any: ...

        def _get_timestamp(self) -> datetime.datetime: ...

    def _class_revoke_id(self, task_class: Any) -> str:
        if isinstance(task_class, TaskWrapper):
            task_class = task_class.task_class
        return f"rt:{self._registry.task_to_string(task_class)}"

    def _revoke_keys(self, task: Any) -> list[str]:
        if isinstance(task, str):
            return [f"r:{task}"]
        if isinstance(task, TaskWrapper) or (isinstance(task, type) and issubclass(task, Task)):
            return [self._class_revoke_id(task)]
        if isinstance(task, Result):
            task = task.task
        return [task.revoke_id, self._class_revoke_id(type(task))]

    def _revoke_value(self, revoke_until: Any, revoke_once: bool) -> tuple[Any, bool]:
        if revoke_until is not None:
            if isinstance(revoke_until, datetime.datetime):
                revoke_until = normalize_time(eta=revoke_until, utc=self.utc)
            else:
                revoke_until = normalize_time(delay=revoke_until, utc=self.utc)
        return revoke_until, revoke_once

    def revoke(self, task: Any, revoke_until: Any = None, revoke_once: bool = False) -> None:
        """Revoke a task (anything with ``revoke_id``): until a time, once, or for good."""
        self.put(task.revoke_id, self._revoke_value(revoke_until, revoke_once))

    def restore(self, task: Any) -> bool:
        """Undo a task's revocation; return whether one existed."""
        return self.delete(task.revoke_id)

    def revoke_by_id(self, id: str, revoke_until: Any = None, revoke_once: bool = False) -> None:
        """Revoke the task with this id."""
        self.revoke(Task(id=id), revoke_until, revoke_once)

    def restore_by_id(self, id: str) -> bool:
        """Undo the revocation of the task with this id."""
        return self.restore(Task(id=id))

    def revoke_all(
        self, task_class: Any, revoke_until: Any = None, revoke_once: bool = False
    ) -> None:
        """Revoke every instance of a task (a TaskWrapper or Task subclass)."""
        self.put(self._class_revoke_id(task_class), self._revoke_value(revoke_until, revoke_once))

    def restore_all(self, task_class: Any) -> bool:
        """Undo a class-level revocation; return whether one existed."""
        return self.delete(self._class_revoke_id(task_class))

    def is_revoked(
        self, task: Any, timestamp: datetime.datetime | None = None, peek: bool = True
    ) -> bool:
        """Whether ``task`` (wrapper, class, instance, Result or id) is revoked.

        With ``peek=False`` a one-shot or lapsed flag is consumed.
        """
        keys = self._revoke_keys(task)
        flags = self._prefetched_flags(keys)
        if flags is None:
            flags = self.storage.peek_many(keys)
        if not flags:
            return False
        if timestamp is None:
            timestamp = self._get_timestamp()
        for key in keys:
            if key in flags and self._check_flag(key, flags[key], timestamp, peek):
                return True
        return False

    def prefetch_revocations(self, tasks: list[Task]) -> None:
        """Read the revocation flags of a batch of tasks in one round trip.

        The next ``is_revoked`` checks of those tasks in this thread use them, for at most
        ``REVOCATION_PREFETCH_SECONDS``, after which they read the storage again.
        """
        keys = [key for task in tasks for key in self._revoke_keys(task)]
        found = self.storage.peek_many(keys)
        expires = time.monotonic() + REVOCATION_PREFETCH_SECONDS
        self._local.revocations = (expires, set(keys), found)

    def clear_prefetched_revocations(self) -> None:
        """Forget prefetched revocation flags."""
        self._local.revocations = None

    def _prefetched_flags(self, keys: list[str]) -> dict[str, bytes] | None:
        cache = getattr(self._local, "revocations", None)
        if cache is None:
            return None
        expires, covered, found = cache
        if time.monotonic() > expires or not covered.issuperset(keys):
            return None
        return {key: found[key] for key in keys if key in found}

    def _check_flag(self, key: str, raw: bytes, timestamp: datetime.datetime, peek: bool) -> bool:
        try:
            revoke_until, revoke_once = self.deserialize(raw)
        except Exception:
            logger.exception("Unreadable revocation flag %s; treated as revoked", key)
            return True
        if revoke_once:
            if not peek:
                self.delete(key)
            return True
        if revoke_until is not None and revoke_until <= timestamp:
            if not peek:
                self.delete(key)
            return False
        return True
