"""The waiting take of the Redis storages: the wake-up and the take in one round trip.

``BLMOVE q q RIGHT RIGHT`` moves the next message onto itself (the list is left as it was)
and wakes as soon as one is pushed, but Lua scripts cannot block. So the take script is
sent behind the BLMOVE in the same pipeline: Redis runs it the moment the BLMOVE returns,
and the waiter gets its messages with its wake-up. Used by
:class:`~huey.storage._redis_leases.RedisLeasesMixin` through
:func:`huey.storage._wakeup.take_waiting` (one waiting thread per process).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from huey.storage._base import Delivery

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
