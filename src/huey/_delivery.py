"""Leased, acknowledged delivery: how a worker takes a task and lets it go.

A take leases the message (the storage keeps it until :func:`finish` acknowledges it); a
worker that dies leaves the lease to expire and the message is delivered again. Each
re-delivery after a crash uses up one of the task's retries; a task without retries may be
delivered ``max_deliveries`` times. Past that - and for messages that cannot be decoded - the
message is set aside in the dead-letter store with the reason, never silently dropped.

Storages without lease support (``supports_leases = False``), and Huey instances created with
``at_most_once=True``, get upstream's behaviour: the message is removed when taken.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, NamedTuple

from huey._task import Task
from huey.storage._base import Delivery

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
    """Take the next task under a lease; None when the queue is empty.

    Messages that cannot be decoded, or that crashed their workers too often, are set aside
    in the dead-letter store and None is returned for them.
    """
    if uses_leases(huey):
        delivery = huey.storage.dequeue_leased(huey.visibility_timeout)
    else:
        data = huey.storage.dequeue()
        delivery = None if data is None else Delivery(data)
    if delivery is None:
        return None
    try:
        task = huey.deserialize_task(delivery.data)
    except Exception as exc:
        set_aside(huey, delivery, f"undecodable message: {exc!r}")
        return None
    if delivery.count > 1 and not _charge_redelivery(huey, task, delivery):
        return None
    return Taken(task, delivery)


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
    logger.warning(
        "Task %s delivered again after its worker died (delivery %s of %s)",
        task.id,
        delivery.count,
        allowed,
    )
    return True


def set_aside(huey: Huey, delivery: Delivery, reason: str) -> None:
    """Move a message to the dead-letter store (log it if the storage has none) and ack it."""
    try:
        letter_id = huey.storage.add_dead_letter(delivery.data, reason)
    except NotImplementedError:
        logger.error("Dropped a message (%s); this storage has no dead-letter store", reason)
    else:
        logger.error("Message set aside as dead letter %s: %s", letter_id, reason)
    huey.storage.ack(delivery.token)


def finish(huey: Huey, taken: Taken) -> None:
    """Acknowledge a delivery once its outcome is stored."""
    if taken.delivery.token is not None:
        huey.storage.ack(taken.delivery.token)


def release(huey: Huey, taken: Taken) -> None:
    """Give an unstarted task back to the queue at once (graceful shutdown)."""
    if taken.delivery.token is not None:
        huey.storage.release(taken.delivery.token)
