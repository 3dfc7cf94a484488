"""The waits of the Redis storages: the waiting take (the wake-up and the take in one round
trip) and blocking result reads (:class:`RedisResultWaitMixin`).

``BLMOVE q q RIGHT RIGHT`` moves the next message onto itself (the list is left as it was)
and wakes as soon as one is pushed, but Lua scripts cannot block. So the take script is
sent behind the BLMOVE in the same pipeline: Redis runs it the moment the BLMOVE returns,
and the waiter gets its messages with its wake-up. Used by
:class:`~huey.storage._redis_leases.RedisLeasesMixin` through
:func:`huey.storage._wakeup.take_waiting` (one waiting thread per process).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from huey.constants import EmptyData
from huey.storage._base import BaseStorage, Delivery

_F = TypeVar("_F")
#: Longest BLPOP of one wait round: the key is looked up again at least this often.
_MAX_WAIT_ROUND = 5.0

if TYPE_CHECKING:
    from huey.storage._redis_leases import RedisLeasesMixin


def wait_and_take(
    storage: RedisLeasesMixin, timeout: float, lease_ms: int, limit: int
) -> list[Delivery]:
    """Wait up to ``timeout`` seconds until the queue is not empty, then lease up to
    ``limit`` messages; ``[]`` when the wait ran out (or another consumer was quicker).

    Until the server is known to have BLMOVE, and for queues no blocking command can watch
    (the priority zset; servers older than 6.2), the storage's own ``_wait_for_message``
    (which probes, or polls) comes first and the take second.
    """
    if storage.priority or storage._blmove is not True:
        if not storage._wait_for_message(timeout):
            return []
        return storage._take_many(lease_ms, limit)
    from redis.exceptions import NoScriptError

    keys = [storage.queue_key, storage.leases_key, storage.leased_key, storage.deliveries_key]
    tokens = [uuid.uuid4().hex for _ in range(limit)]
    pipe = storage.conn.pipeline(transaction=False)
    # A timeout rounding to 0 ms would block forever: never go below 10 ms.
    pipe.blmove(storage.queue_key, storage.queue_key, max(timeout, 0.01), "RIGHT", "RIGHT")
    # EVALSHA directly: a Script called on a pipeline costs a SCRIPT EXISTS each time.
    sha = storage._take_many_lua.sha
    pipe.evalsha(sha, len(keys), *keys, lease_ms, storage._zset, *tokens)
    moved, flat = pipe.execute(raise_on_error=False)
    if isinstance(flat, NoScriptError):
        return storage._take_many(lease_ms, limit)  # the server lost its scripts: reload
    for reply in (moved, flat):
        if isinstance(reply, Exception):
            raise reply
    return [
        Delivery(bytes(flat[i]), tokens[i // 2], int(flat[i + 1])) for i in range(0, len(flat), 2)
    ]


class RedisResultWaitMixin(BaseStorage):
    """Blocking result reads of :class:`~huey.storage._redis.RedisStorage`: with
    ``notify_result`` they sleep in ``BLPOP`` on the key's notification list, and the read
    (or the look-up) is pipelined behind each BLPOP, so a wake-up costs no extra round trip.
    """

    name: str
    conn: Any
    notify_result: bool
    _pop_lua: Any

    if TYPE_CHECKING:  # provided by RedisStorage

        def _queue_has_data(self, pipe: Any, key: str) -> None: ...

        def _queue_read(self, pipe: Any, key: str, peek: bool) -> None: ...

        def _socket_timeout(self) -> float | None: ...

    def wait_result(
        self,
        key: str,
        timeout: float | None = None,
        backoff: float = 1.15,
        max_delay: float = 1.0,
    ) -> bool:
        """Wait for ``key``; with ``notify_result`` sleep in ``BLPOP`` instead of polling.

        ``timeout=None`` waits forever, ``timeout=0`` checks once. The key is re-checked
        after every BLPOP round (at most ``max_delay`` long), so a result stored by a writer
        that does not notify (e.g. upstream huey with notify_result off) is still seen.
        A lost or unresponsive connection returns False.
        """
        if not self.notify_result:
            return super().wait_result(key, timeout, backoff, max_delay)
        import redis  # imported by the storage already; lazily, as everywhere

        try:
            if self.has_data_for_key(key):
                return True
            return self._wait_rounds(key, timeout, max_delay, self._wait_round) is not None
        except (redis.ConnectionError, redis.TimeoutError):
            return False

    def wait_and_read(
        self,
        key: str,
        timeout: float | None = None,
        backoff: float = 1.15,
        max_delay: float = 1.0,
        peek: bool = False,
    ) -> bytes | type[EmptyData]:
        """``wait_result`` then ``pop_data`` (``peek_data`` with ``peek``), in fewer round
        trips: the read is pipelined behind each BLPOP, so a woken wait returns the value
        without another round trip. ``EmptyData`` on timeout or a lost connection.
        """
        value = self._read_data(key, peek)
        if value is not EmptyData or (timeout is not None and timeout <= 0):
            return value
        if not self.notify_result:
            return super().wait_and_read(key, timeout, backoff, max_delay, peek)
        import redis  # imported by the storage already; lazily, as everywhere

        def wait_round(key: str, wait: float) -> bytes | None:
            return self._wait_round_read(key, wait, peek)

        try:
            found = self._wait_rounds(key, timeout, max_delay, wait_round)
        except (redis.ConnectionError, redis.TimeoutError):
            return EmptyData
        return EmptyData if found is None else found

    def _wait_rounds(
        self,
        key: str,
        timeout: float | None,
        max_delay: float,
        wait_round: Callable[[str, float], _F | None],
    ) -> _F | None:
        """Call ``wait_round(key, seconds)`` until it finds something; None on timeout.

        A round lasts at most ``max_delay`` (and half the socket timeout), so the key is
        looked up that often even when no notification comes (writers that do not notify).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        round_limit = min(max(max_delay, 0.05), _MAX_WAIT_ROUND)
        socket_timeout = self._socket_timeout()
        if socket_timeout is not None:
            round_limit = min(round_limit, socket_timeout / 2)
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            found = wait_round(
                key, round_limit if remaining is None else min(round_limit, remaining)
            )
            if found is not None:
                return found

    def _blpop_pipeline(self, key: str, wait: float) -> Any:
        """A pipeline that BLPOPs the notification list of ``key``, then deletes it (a
        result notified twice must not wake a later wait for nothing). Whatever is queued
        behind runs the moment the BLPOP returns (woken, or at the end of the round), so a
        wake-up costs no extra round trip."""
        notify_key = f"huey.notify.{self.name}.{key}"
        pipe = self.conn.pipeline(transaction=False)
        # BLPOP timeout 0 means "forever": never let a round reach 0.
        return pipe.blpop(notify_key, timeout=max(wait, 0.01)).delete(notify_key)

    def _wait_round(self, key: str, wait: float) -> bool | None:
        """One round of ``wait_result``: True when the key is there after it, else None."""
        pipe = self._blpop_pipeline(key, wait)
        self._queue_has_data(pipe, key)
        return True if any(pipe.execute()[2:]) else None

    def _wait_round_read(self, key: str, wait: float, peek: bool) -> bytes | None:
        """One round of ``wait_and_read``: the value read after it, or None."""
        pipe = self._blpop_pipeline(key, wait)
        self._queue_read(pipe, key, peek)
        replies = pipe.execute(raise_on_error=False)
        from redis.exceptions import NoScriptError

        for reply in replies:
            if isinstance(reply, NoScriptError):
                # The server lost its scripts (a restart): load them, read on its own.
                self.conn.script_load(self._pop_lua.script)
                value = self._read_data(key, peek)
                return value if isinstance(value, bytes) else None
            if isinstance(reply, Exception):
                raise reply
        return next((bytes(value) for value in replies[2:] if value is not None), None)
