"""Leased, acknowledged delivery: how a worker takes a task and lets it go.

A take leases the message: the storage keeps it until the worker acknowledges it, in the
same write as the task's outcome (:class:`WriteBuffer`). A worker that dies leaves the lease
to expire and the message is delivered again. Each
re-delivery after a crash uses up one of the task's retries; a task without retries may be
delivered ``max_deliveries`` times. Past that - and for messages that cannot be decoded - the
message is set aside in the dead-letter store with the reason, never silently dropped.

Storages without lease support (``supports_leases = False``), and Huey instances created with
``at_most_once=True``, get upstream's behaviour: the message is removed when taken.
"""

from __future__ import annotations

import datetime
import logging
import os
import threading
import time
from typing import TYPE_CHECKING, NamedTuple

from huey._task import Task
from huey.signals import SIGNAL_ENQUEUED
from huey.storage._base import Delivery, WriteOp

if TYPE_CHECKING:
    from huey.api import Huey

logger = logging.getLogger("huey")


class Taken(NamedTuple):
    """A decoded task and the delivery it came from (pass both to :func:`finish`)."""

    task: Task
    delivery: Delivery


def uses_leases(huey: Huey) -> bool:
    """Whether this instance delivers at least once (leases) or at most once."""
    return not huey.at_most_once and huey.storage.supports_leases


def take(huey: Huey) -> Taken | None:
    """Take the next task under a lease; None when the queue is empty (or the message taken
    was set aside as a dead letter)."""
    batch = take_batch(huey, 1)
    return batch[0] if batch else None


def take_batch(huey: Huey, limit: int) -> list[Taken]:
    """Take up to ``limit`` tasks in one round trip where the storage allows it.

    Messages that cannot be decoded, or that crashed their workers too often, are set aside
    in the dead-letter store and left out of the batch.
    """
    if uses_leases(huey):
        deliveries = huey.storage.dequeue_leased_many(huey.visibility_timeout, limit)
    else:
        deliveries = []
        while len(deliveries) < limit:
            data = huey.storage.dequeue()
            if data is None:
                break
            deliveries.append(Delivery(data))
            if huey.storage.blocking:
                break  # the next call would wait a read timeout on an empty queue
    batch = []
    for delivery in deliveries:
        try:
            task = huey.deserialize_task(delivery.data)
        except Exception as exc:
            set_aside(huey, delivery, f"undecodable message: {exc!r}")
            continue
        if delivery.count > 1 and not _charge_redelivery(huey, task, delivery):
            continue
        batch.append(Taken(task, delivery))
    return batch


def _charge_redelivery(huey: Huey, task: Task, delivery: Delivery) -> bool:
    """Count a re-delivery after a crash against the task; False if it was set aside."""
    crashes = delivery.count - 1
    allowed = task.retries + 1 if task.retries else huey.max_deliveries
    if delivery.count > allowed:
        set_aside(
            huey,
            delivery,
            f"task {task.id} was delivered {delivery.count} times and its worker died each "
            f"time (allowed: {allowed})",
        )
        return False
    if task.retries:
        task.retries = max(task.retries - crashes, 0)
    release_dead_owner_locks(huey, task)
    # Marks the run as a re-delivery: locks created in the task's body that its dead run
    # still holds are taken over when it acquires them (huey._locks.TaskLock).
    task._healed_locks = set()  # type: ignore[attr-defined]
    logger.warning(
        "Task %s delivered again after its worker died (delivery %s of %s)",
        task.id,
        delivery.count,
        allowed,
    )
    return True


def release_dead_owner_locks(huey: Huey, task: Task) -> int:
    """Release the registered locks still held by ``task`` from a run whose worker died.

    A lock taken inside a task stores the task's id; when the task comes back after a
    crash, nobody else can be running it, so its old locks are stale.
    """
    keys = sorted(huey._locks)
    if not keys:
        return 0
    released = 0
    for key, raw in huey.storage.peek_many(keys).items():
        try:
            owner = huey.deserialize(raw)
        except Exception:
            continue
        if owner == task.id and huey.delete(key):
            logger.warning("Released lock %s held by task %s when its worker died", key, task.id)
            released += 1
    return released


def set_aside(huey: Huey, delivery: Delivery, reason: str) -> None:
    """Move a message to the dead-letter store (log it if the storage has none) and ack it."""
    try:
        letter_id = huey.storage.add_dead_letter(delivery.data, reason)
    except NotImplementedError:
        logger.error("Dropped a message (%s); this storage has no dead-letter store", reason)
    else:
        logger.error("Message set aside as dead letter %s: %s", letter_id, reason)
    huey.storage.ack(delivery.token)


def move_due_scheduled(huey: Huey, now: datetime.datetime) -> list[Task]:
    """Move the tasks due at ``now`` from the schedule to the queue; return them.

    Leased like a take: the messages leave the schedule under a lease, and the enqueues
    and the acknowledgements are applied together (one round trip or transaction). A
    scheduler that dies in between leaves the leases to expire, and the reaper queues the
    messages (due anyway) - a crash never loses a scheduled task. A message that cannot be
    decoded or enqueued (the storage rejects it) is set aside as a dead letter.
    """
    deliveries = huey.storage.read_schedule_leased(now, huey.visibility_timeout)
    moves: list[tuple[Task, Delivery, WriteOp]] = []
    for delivery in deliveries:
        try:
            task = huey.deserialize_task(delivery.data)
            huey._announce_enqueue(task)
            enqueue = ("enqueue", huey.serialize_task(task), task.priority)
        except Exception as exc:
            set_aside(huey, delivery, f"scheduled message could not be enqueued: {exc!r}")
            continue
        moves.append((task, delivery, enqueue))
    if not moves:
        return []
    acks = [("ack", d.token) for _, d, _ in moves if d.token is not None]
    try:
        huey.storage.apply_writes([enqueue for _, _, enqueue in moves] + acks)
        return [task for task, _, _ in moves]
    except Exception:
        logger.warning("Moving %d scheduled task(s) failed; retrying one by one", len(moves))
    # One message the storage rejects must not hold back the others: move them one by one.
    # (A storage whose apply_writes is not atomic may have queued a prefix already; those
    # run twice - at least once, never lost.)
    moved = []
    for task, delivery, enqueue in moves:
        ack = [("ack", delivery.token)] if delivery.token is not None else []
        try:
            huey.storage.apply_writes([enqueue, *ack])
        except Exception as exc:
            logger.exception("Error enqueueing scheduled task %s", task.id)
            set_aside(huey, delivery, f"scheduled task could not be enqueued: {exc!r}")
            continue
        moved.append(task)
    return moved


def enqueue_tick(huey: Huey, task: Task, key: str, ttl: float) -> bool:
    """Enqueue a periodic task unless its tick ``key`` was claimed already; the claim and
    the enqueue are one atomic storage step, so a leader dying in between loses nothing.
    """
    if task.expires:
        task.resolve_expires(huey.utc)
    if not huey.storage.enqueue_once(key, ttl, huey.serialize_task(task), task.priority):
        return False
    huey._emit(SIGNAL_ENQUEUED, task)
    return True


def release(huey: Huey, taken: Taken) -> None:
    """Give an unstarted task back to the queue at once (graceful shutdown)."""
    if taken.delivery.token is not None:
        huey.storage.release(taken.delivery.token)


class Heartbeat:
    """Renews the leases of the tasks running in this process, from a daemon thread.

    One per Huey instance and process (a forked worker process gets its own). It renews
    every ``visibility_timeout / 3`` seconds, so a task that runs longer than the
    visibility timeout is never delivered again while its worker lives.
    """

    _instances: dict[tuple[int, int], Heartbeat] = {}
    _instances_lock = threading.Lock()

    def __init__(self, huey: Huey) -> None:
        self.huey = huey
        self.interval = huey.visibility_timeout / 3
        self._tokens: set[str] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="huey-heartbeat", daemon=True)

    @classmethod
    def get(cls, huey: Huey) -> Heartbeat:
        """The heartbeat of ``huey`` in this process (started on first use)."""
        key = (id(huey), os.getpid())
        with cls._instances_lock:
            beat = cls._instances.get(key)
            created = beat is None
            if beat is None:
                beat = cls._instances[key] = cls(huey)
        # Started outside the lock: under gevent, Thread.start() yields to other greenlets,
        # which must not find the (possibly unpatched, process-wide) lock held.
        if created:
            beat._thread.start()
        return beat

    def add(self, token: str) -> None:
        """Start renewing ``token``."""
        with self._lock:
            self._tokens.add(token)

    def discard(self, token: str) -> None:
        """Stop renewing ``token``."""
        with self._lock:
            self._tokens.discard(token)

    def _run(self) -> None:
        while True:
            time.sleep(self.interval)
            with self._lock:
                tokens = list(self._tokens)
            if not tokens:
                continue
            try:
                self.huey.storage.extend_leases(tokens, self.huey.visibility_timeout)
            except Exception:
                logger.exception("Heartbeat failed to renew %d lease(s)", len(tokens))


class WriteBuffer:
    """Writes of a batch of tasks (results, cleared revocations, acks), applied together.

    Outcomes come first and acknowledgements last, so a flush that fails part-way never
    acknowledges a task whose outcome was not stored: it is delivered again instead.
    """

    def __init__(self, huey: Huey) -> None:
        self.huey = huey
        self.ops: list[WriteOp] = []
        self.acks: list[WriteOp] = []

    def put(self, key: str, value: bytes, is_result: bool) -> None:
        """Store ``value`` under ``key`` at the next flush."""
        self.ops.append(("put", key, value, is_result))

    def delete(self, key: str) -> None:
        """Delete ``key`` at the next flush."""
        self.ops.append(("delete", key))

    def ack(self, token: str) -> None:
        """Acknowledge a delivery at the next flush, after every outcome."""
        self.acks.append(("ack", token))

    def flush(self) -> None:
        """Apply everything buffered in one round trip (where the storage allows it)."""
        if not self.ops and not self.acks:
            return
        ops, self.ops, self.acks = self.ops + self.acks, [], []
        self.huey.storage.apply_writes(ops)


def active_buffer(huey: Huey) -> WriteBuffer | None:
    """The write buffer of the batch this thread is running, if any."""
    return getattr(huey._local, "write_buffer", None)
