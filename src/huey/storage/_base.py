"""The storage contract: bytes in, bytes out.

Every backend implements :class:`BaseStorage`. Keys are ``str``, values are ``bytes``;
storages never see tasks, the serializer or the registry. One contract suite
(``tests/storage/test_contract.py``) runs against every backend.

Leased delivery (additive, see ARCHITECTURE.md "Delivery model"): ``dequeue_leased``,
``ack``, ``extend_leases``, ``release`` and ``requeue_expired``. Their defaults here give
plain at-most-once delivery on top of ``dequeue()``, so a third-party storage that only
implements the upstream methods keeps working; backends override them to lease.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterable
from typing import Any, NamedTuple

from huey.constants import EmptyData


class Delivery(NamedTuple):
    """A task message taken from the queue.

    :param data: the message bytes.
    :param token: the lease token to pass to :meth:`BaseStorage.ack`, or ``None`` when the
        storage delivers at most once (the message was removed when taken).
    :param count: how many times this message has been delivered, this time included.
    """

    data: bytes
    token: str | None = None
    count: int = 1  # type: ignore[assignment]  # shadows tuple.count on purpose


class DeadLetter(NamedTuple):
    """A message set aside instead of being run or dropped.

    :param id: the dead letter's id within this storage.
    :param data: the message bytes, exactly as they were queued.
    :param reason: why it was set aside (crash loop, undecodable, unknown task...).
    :param timestamp: when it was set aside (epoch seconds).
    """

    id: str
    data: bytes
    reason: str
    timestamp: float


#: A write the engine may defer and apply with others in one round trip
#: (:meth:`BaseStorage.apply_writes`): ``("put", key, value, is_result)``,
#: ``("delete", key)``, ``("enqueue", data, priority)`` or ``("ack", token)``.
WriteOp = tuple[Any, ...]


class BaseStorage:
    """Base class of every storage; documents the contract each backend fulfils.

    :param name: the queue namespace; keeps several queues apart inside one store.
    :param storage_kwargs: backend options; the base class ignores unknown ones.
    """

    #: Whether ``dequeue()`` itself waits for a message (so the worker need not sleep).
    blocking = False
    #: Whether priorities are supported.
    priority = True

    def __init__(self, name: str = "huey", **storage_kwargs: Any) -> None:
        self.name = name

    def close(self) -> bool | None:
        """Release connections and handles. Called before forking process workers."""
        return None

    # -- queue ---------------------------------------------------------------------------
    def enqueue(self, data: bytes, priority: float | None = None) -> None:
        """Push a message; a higher priority is dequeued first, FIFO among equals."""
        raise NotImplementedError

    def enqueue_many(self, items: Iterable[tuple[bytes, float | None]]) -> None:
        """Push several ``(data, priority)`` messages, in order; backends do it in one round
        trip or transaction. The default enqueues them one by one."""
        for data, priority in items:
            self.enqueue(data, priority)

    def dequeue(self) -> bytes | None:
        """Atomically remove and return the next message, or ``None`` (may block a while)."""
        raise NotImplementedError

    def queue_size(self) -> int:
        """Number of messages waiting in the queue."""
        raise NotImplementedError

    def enqueued_items(self, limit: int | None = None) -> list[bytes]:
        """The first ``limit`` messages in dequeue order, not removed."""
        raise NotImplementedError

    def flush_queue(self) -> None:
        """Remove every message from the queue."""
        raise NotImplementedError

    # -- schedule ------------------------------------------------------------------------
    def add_to_schedule(self, data: bytes, ts: datetime.datetime) -> None:
        """Store a message to become due at the naive datetime ``ts``."""
        raise NotImplementedError

    def read_schedule(self, ts: datetime.datetime) -> list[bytes]:
        """Atomically remove and return every message due at or before ``ts``, soonest first."""
        raise NotImplementedError

    def schedule_size(self) -> int:
        """Number of scheduled messages."""
        raise NotImplementedError

    def scheduled_items(self, limit: int | None = None) -> list[bytes]:
        """The first ``limit`` scheduled messages, soonest first, not removed."""
        raise NotImplementedError

    def flush_schedule(self) -> None:
        """Remove every scheduled message."""
        raise NotImplementedError

    # -- results / key-value -------------------------------------------------------------
    def put_data(self, key: str, value: bytes, is_result: bool = False) -> None:
        """Upsert ``key``. ``is_result`` marks a task result (notification, expiry)."""
        raise NotImplementedError

    def peek_data(self, key: str) -> bytes | type[EmptyData]:
        """Return the value of ``key`` or ``EmptyData``, leaving it stored."""
        raise NotImplementedError

    def peek_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """Return ``{key: value}`` for those of ``keys`` that exist."""
        found: dict[str, bytes] = {}
        for key in keys:
            value = self.peek_data(key)
            if value is not EmptyData:
                found[key] = value  # type: ignore[assignment]
        return found

    def pop_data(self, key: str) -> bytes | type[EmptyData]:
        """Remove and return the value of ``key``, or ``EmptyData``."""
        raise NotImplementedError

    def delete_data(self, key: str) -> bool:
        """Delete ``key``; return whether it existed."""
        return self.pop_data(key) is not EmptyData

    def has_data_for_key(self, key: str) -> bool:
        """Return whether ``key`` exists."""
        raise NotImplementedError

    def put_if_empty(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        """Store ``value`` only if ``key`` is absent; return whether it was stored.

        This default is not atomic and has no ttl support; backends override it.
        """
        if ttl is not None:
            raise NotImplementedError(f"{type(self).__name__}.put_if_empty() has no ttl support")
        if self.has_data_for_key(key):
            return False
        self.put_data(key, value)
        return True

    def wait_result(
        self,
        key: str,
        timeout: float | None = None,
        backoff: float = 1.15,
        max_delay: float = 1.0,
    ) -> bool:
        """Wait until ``key`` exists; return False if ``timeout`` seconds pass first.

        ``timeout=None`` waits forever and ``timeout=0`` checks once. This default polls
        with a delay that starts at 0.05 s and grows by ``backoff`` up to ``max_delay``.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.05
        while True:
            if self.has_data_for_key(key):
                return True
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return False
            sleep = min(delay, max_delay)
            if deadline is not None:
                sleep = min(sleep, deadline - now)
            time.sleep(max(sleep, 0))
            delay *= backoff

    def wait_and_read(
        self,
        key: str,
        timeout: float | None = None,
        backoff: float = 1.15,
        max_delay: float = 1.0,
        peek: bool = False,
    ) -> bytes | type[EmptyData]:
        """Wait like :meth:`wait_result`, then read ``key`` (destructively unless ``peek``);
        ``EmptyData`` on timeout. Redis and PostgreSQL override it to wait and read in
        fewer round trips (``Result.get(blocking=True)`` uses it)."""
        if not self.wait_result(key, timeout, backoff, max_delay):
            return EmptyData
        return self._read_data(key, peek)

    def _read_data(self, key: str, peek: bool) -> bytes | type[EmptyData]:
        """``peek_data`` or, unless ``peek``, ``pop_data``."""
        return self.peek_data(key) if peek else self.pop_data(key)

    def result_store_size(self) -> int:
        """Number of keys in the result / key-value store."""
        raise NotImplementedError

    def result_items(self) -> dict[str, bytes]:
        """Every key of the result / key-value store with its raw value."""
        raise NotImplementedError

    def flush_results(self) -> None:
        """Remove every key of the result / key-value store."""
        raise NotImplementedError

    # -- counters ------------------------------------------------------------------------
    def incr(self, key: str, amount: int = 1) -> int:
        """Atomically add ``amount`` to a counter (missing counts as 0); return the new value."""
        raise NotImplementedError

    def delete_counter(self, key: str) -> None:
        """Delete a counter."""
        raise NotImplementedError

    def flush_counters(self) -> None:
        """Delete every counter."""
        raise NotImplementedError

    def flush_all(self) -> None:
        """Clear the queue, the schedule, the result store and the counters."""
        self.flush_queue()
        self.flush_schedule()
        self.flush_results()
        self.flush_counters()

    # -- leased delivery (additive; defaults are at-most-once) ---------------------------
    def dequeue_leased(self, lease_seconds: float) -> Delivery | None:
        """Take the next message under a lease of ``lease_seconds``.

        The message stays owned by the caller until :meth:`ack`; if the lease expires first
        it becomes available again. The default removes the message (at-most-once) and
        returns a delivery without a token.
        """
        data = self.dequeue()
        return None if data is None else Delivery(data)

    def dequeue_leased_many(self, lease_seconds: float, limit: int) -> list[Delivery]:
        """Take up to ``limit`` messages under leases (fewer, or none, when the queue has fewer).

        The default takes them one by one; backends override it to take a batch in one
        round trip. Blocks no longer than one ``dequeue_leased`` would.
        """
        taken: list[Delivery] = []
        # A blocking storage would wait a read timeout on the call after the queue empties.
        while len(taken) < (limit if not self.blocking else 1):
            delivery = self.dequeue_leased(lease_seconds)
            if delivery is None:
                break
            taken.append(delivery)
        return taken

    def apply_writes(self, ops: Iterable[WriteOp]) -> None:
        """Apply deferred writes in order: results and flags stored or deleted, acks.

        The default applies them one by one; backends override it to apply them in one
        round trip or transaction (a failure may leave a prefix applied: acks come last
        in every batch the engine builds, so an unapplied ack only means a re-delivery).
        """
        for op in ops:
            kind = op[0]
            if kind == "put":
                self.put_data(op[1], op[2], is_result=op[3])
            elif kind == "delete":
                self.delete_data(op[1])
            elif kind == "enqueue":
                self.enqueue(op[1], op[2])
            elif kind == "ack":
                self.ack(op[1])
            else:
                raise ValueError(f"unknown write operation {kind!r}")

    def read_schedule_leased(self, ts: datetime.datetime, lease_seconds: float) -> list[Delivery]:
        """Take every message due at ``ts`` out of the schedule under a lease.

        The scheduler enqueues the tasks, then acknowledges the leases (in one
        :meth:`apply_writes`). If it dies in between, the leases expire and
        :meth:`requeue_expired` puts the messages in the queue (they are due), so a crash
        never loses a scheduled task. The deliveries have ``count`` 0: leaving the schedule
        is not a delivery. The default is upstream's ``read_schedule`` (at-most-once).
        """
        return [Delivery(data, None, 0) for data in self.read_schedule(ts)]

    def enqueue_once(
        self, key: str, ttl: float, data: bytes, priority: float | None = None
    ) -> bool:
        """Enqueue ``data`` unless ``key`` was claimed in the last ``ttl`` seconds.

        The claim and the enqueue are one atomic step on storages that share state between
        processes, so a periodic tick is neither enqueued twice nor claimed and lost. The
        default claims, then enqueues (a crash in between loses that one message).
        """
        if not self.claim(key, ttl):
            return False
        self.enqueue(data, priority)
        return True

    def ack(self, token: str | None) -> None:
        """Acknowledge a delivery: its outcome is stored, so forget the message."""

    def extend_leases(self, tokens: Iterable[str], lease_seconds: float) -> None:
        """Renew the leases of running tasks (the heartbeat)."""

    def release(self, token: str | None) -> None:
        """Give a taken but unstarted message back to the queue at once."""

    def requeue_expired(self) -> int:
        """Make messages whose lease expired available again; return how many."""
        return 0

    # -- huey-ng state beside upstream's layout (dead letters, claims, leases) -----------
    #: Whether this storage implements leased delivery and the methods below.
    supports_leases = False

    def add_dead_letter(self, data: bytes, reason: str) -> str:
        """Set a message aside with the reason; return its dead-letter id."""
        raise NotImplementedError(f"{type(self).__name__} has no dead-letter store")

    def dead_letters(self, limit: int | None = None) -> list[DeadLetter]:
        """The dead letters, oldest first."""
        return []

    def dead_letter_count(self) -> int:
        """Number of dead letters."""
        return 0

    def pop_dead_letter(self, id: str) -> DeadLetter | None:
        """Remove and return one dead letter (None if there is no such id)."""
        return None

    def flush_dead_letters(self) -> None:
        """Delete every dead letter."""

    def claim(self, key: str, ttl: float) -> bool:
        """Atomically mark ``key`` as taken for ``ttl`` seconds; False if already taken.

        Used to deduplicate periodic ticks; lives outside the result store.
        """
        return self.put_if_empty(f"hueyng.claim.{key}", b"1", ttl)

    def acquire_lease(self, key: str, owner: str, ttl: float) -> bool:
        """Take or renew the named lease for ``owner`` for ``ttl`` seconds.

        True when ``owner`` holds it afterwards (it was free, expired, or already theirs).
        """
        raise NotImplementedError(f"{type(self).__name__} has no leases")

    def release_lease(self, key: str, owner: str) -> None:
        """Give up the named lease if ``owner`` holds it."""
