"""The loops that run inside a consumer: :class:`Worker` (take, run, acknowledge) and
:class:`Scheduler` (schedule, periodic ticks, lease reaping). See ``huey.consumer`` for the
timing decisions and ``huey._delivery`` for leased delivery.

No task is lost (huey-ng): a worker's take is a lease renewed by a heartbeat while the task
runs and acknowledged once its outcome is stored; each scheduler returns tasks whose lease
expired (their worker died) to the queue. Periodic tasks are enqueued by one consumer at a
time (a leader lease in the storage) and each (task, tick) is claimed in the storage, so a
tick fires once however many consumers run.
"""

from __future__ import annotations

import datetime
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from huey import _delivery
from huey._delivery import Taken
from huey._environments import StopFlag

if TYPE_CHECKING:
    from huey._task import Task
    from huey.api import Huey

EPOCH = datetime.datetime(1970, 1, 1)


class ConsumerStopped(Exception):
    """Raised inside the consumer's main loop once it has stopped."""


class WorkerRecycle(Exception):
    """Raised in a worker that ran ``max_tasks`` tasks; the health check replaces it."""


class BaseProcess:
    """A loop run by one worker thread, process or greenlet.

    ``run()`` calls ``initialize()``, then ``loop()`` until the stop flag is set, then
    ``shutdown()`` (always, even after an error or an interruption).
    """

    logger_name = "huey.consumer"

    def __init__(self, huey: Huey, stop_flag: StopFlag) -> None:
        self.huey = huey
        self.stop_flag = stop_flag
        self._logger = logging.getLogger(self.logger_name)

    def initialize(self) -> None:
        """Called once when the worker starts, before the first loop."""

    def shutdown(self) -> None:
        """Called once when the worker exits."""

    def loop(self, now: datetime.datetime | None = None) -> None:
        """One iteration of work; subclasses implement it."""
        raise NotImplementedError

    def sleep_for_interval(self, start_ts: float, nseconds: float) -> None:
        """Wait (on the stop flag) until ``nseconds`` after the monotonic ``start_ts``."""
        remaining = start_ts + nseconds - time.monotonic()
        if remaining > 0:
            self.stop_flag.wait(remaining)

    def run(self) -> None:
        """The body of the worker: initialize, loop until stopped, shut down."""
        self.initialize()
        try:
            while not self.stop_flag.is_set():
                self.loop()
        except WorkerRecycle:
            self._logger.info("Worker recycled: it ran its maximum number of tasks")
        except KeyboardInterrupt:
            self._logger.info("Worker interrupted")
        except Exception:
            self._logger.exception("Unhandled error in the worker loop; the worker exits")
        finally:
            self.shutdown()


class Worker(BaseProcess):
    """Takes tasks from the queue and executes them, backing off while the queue is empty.

    A take is a lease on a batch of tasks (one round trip; batches grow from one task while
    tasks are quick); ``process_batch`` runs them while the heartbeat renews their leases,
    then stores their outcomes and acknowledgements together (``huey._delivery``).
    """

    logger_name = "huey.consumer.Worker"
    #: most tasks taken in one round trip (batches grow from 1 while tasks are quick)
    max_batch_size = 32
    #: a batch running longer than this gives its unstarted tasks back to the queue
    batch_seconds = 0.05

    def __init__(
        self,
        huey: Huey,
        stop_flag: StopFlag,
        default_delay: float,
        max_delay: float,
        backoff: float,
        max_tasks: int | None = None,
    ) -> None:
        super().__init__(huey, stop_flag)
        self.default_delay = default_delay
        self.delay = default_delay
        self.max_delay = max_delay
        self.backoff = backoff
        self.max_tasks = max_tasks
        self.tasks_run = 0
        self.batch_size = 1

    def initialize(self) -> None:
        """Run the ``on_startup`` hooks (errors are logged, never raised)."""
        for name, hook in list(self.huey._startup.items()):
            try:
                hook()
            except Exception:
                self._logger.exception("Error in startup hook %r", name)

    def shutdown(self) -> None:
        """Run the ``on_shutdown`` hooks (errors are logged, never raised)."""
        for name, hook in list(self.huey._shutdown.items()):
            try:
                hook()
            except Exception:
                self._logger.exception("Error in shutdown hook %r", name)

    def loop(self, now: datetime.datetime | None = None) -> None:
        """Take a batch of tasks and run them, or sleep when there is none."""
        limit = self.batch_size
        if self.max_tasks:
            limit = max(1, min(limit, self.max_tasks - self.tasks_run))
        try:
            batch = _delivery.take_batch(self.huey, limit)
        except Exception:
            self._logger.exception("Error reading from the queue; backing off")
            self.sleep()
            return
        if not batch:
            if not self.huey.storage.blocking:
                self.sleep()
            return
        self.delay = self.default_delay
        self.process_batch(batch, now)
        if self.max_tasks and self.tasks_run >= self.max_tasks:
            raise WorkerRecycle()

    def process_batch(self, batch: list[Taken], now: datetime.datetime | None = None) -> None:
        """Run a batch of taken tasks, then store their outcomes and acks in one round trip.

        While they wait and run, the process's heartbeat renews their leases. If the stop
        flag is set or the batch turns out slow, the tasks not started yet go back to the
        queue at once for other workers. If storing the outcomes fails (the storage went
        away), nothing is acknowledged: the leases expire and the tasks are delivered again.
        """
        huey = self.huey
        tokens = [t.delivery.token for t in batch if t.delivery.token]
        heartbeat = _delivery.Heartbeat.get(huey) if tokens else None
        for token in tokens:
            heartbeat.add(token)  # type: ignore[union-attr]
        buffer = _delivery.WriteBuffer(huey)
        huey._local.write_buffer = buffer
        if len(batch) > 1:
            huey.prefetch_revocations([t.task for t in batch])
        started = time.monotonic()
        try:
            for index, taken in enumerate(batch):
                if index and self._should_release(started):
                    for rest in batch[index:]:
                        _delivery.release(huey, rest)
                    break
                self._run_one(taken, buffer, now)
        finally:
            huey._local.write_buffer = None
            huey.clear_prefetched_revocations()
            try:
                buffer.flush()
            except Exception:
                self._logger.exception(
                    "Could not store the outcomes of %d task(s); they are not acknowledged "
                    "and will be delivered again",
                    len(batch),
                )
            for token in tokens:
                heartbeat.discard(token)  # type: ignore[union-attr]
        self._adapt_batch_size(len(batch), time.monotonic() - started)

    def _run_one(
        self, taken: Taken, buffer: _delivery.WriteBuffer, now: datetime.datetime | None
    ) -> None:
        task = taken.task
        self.tasks_run += 1
        try:
            self.huey.execute(task, now)
        except Exception:
            self._logger.exception(
                "Error while executing task %s; its outcome may not be stored, so it is not "
                "acknowledged and will be delivered again",
                task.id,
            )
            return
        if getattr(task, "_interrupted", False):
            _delivery.release(self.huey, taken)
        elif taken.delivery.token:
            buffer.ack(taken.delivery.token)

    def _should_release(self, started: float) -> bool:
        """Whether to give the rest of a batch back: stopping, or the batch is slow."""
        return self.stop_flag.is_set() or time.monotonic() - started > self.batch_seconds

    def _adapt_batch_size(self, size: int, elapsed: float) -> None:
        """Grow batches while tasks are quick (fewer round trips); one at a time otherwise."""
        if elapsed > self.batch_seconds:
            self.batch_size = 1
        elif size >= self.batch_size:
            self.batch_size = min(self.batch_size * 2, self.max_batch_size)

    def sleep(self) -> None:
        """Wait for the current poll delay (a stop cuts it short), then back off."""
        self.stop_flag.wait(self.delay)
        self.delay = min(self.delay * self.backoff, self.max_delay)


class Scheduler(BaseProcess):
    """Moves due scheduled tasks to the queue and enqueues periodic tasks each minute.

    See the module docstring for the timing rules.
    """

    logger_name = "huey.consumer.Scheduler"
    #: width of a periodic tick in seconds (a test knob; huey's granularity is a minute)
    periodic_task_seconds: float = 60
    #: the scheduler's clock (a test knob); None means ``huey._get_timestamp``
    _now: Callable[[], datetime.datetime] | None = None

    #: seconds the periodic leader lease lasts without renewal: the longest a dead
    #: leader's periodic tasks can go unscheduled before another consumer takes over
    leader_lease_seconds: float = 10

    def __init__(self, huey: Huey, stop_flag: StopFlag, interval: float, periodic: bool) -> None:
        super().__init__(huey, stop_flag)
        self.interval = interval
        self.periodic = periodic
        self._last_tick: int | None = None
        self.owner_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._was_leader = False

    def now(self) -> datetime.datetime:
        """The current time in huey time, or the injected clock's."""
        clock = self.__dict__.get("_now") or type(self)._now
        return clock() if clock is not None else self.huey._get_timestamp()

    def loop(self, now: datetime.datetime | None = None) -> None:
        """One scheduler iteration, then a sleep until the next wall-clock interval."""
        if now is None:
            now = self.now()
        self.requeue_expired()
        self.enqueue_scheduled(now)
        if self.periodic and self.is_periodic_leader():
            self.enqueue_periodic(now)
        self.sleep_until_next_interval()

    def requeue_expired(self) -> int:
        """Deliver again the tasks whose worker died (their lease expired)."""
        if not _delivery.uses_leases(self.huey):
            return 0
        try:
            count = self.huey.storage.requeue_expired()
        except Exception:
            self._logger.exception("Error requeueing expired leases")
            return 0
        if count:
            self._logger.warning(
                "Requeued %d task(s) whose worker stopped renewing its lease", count
            )
        return count

    def is_periodic_leader(self) -> bool:
        """Whether this consumer enqueues periodic tasks now (it holds the leader lease).

        Storages without leases have no leader: every consumer with periodic tasks on
        enqueues them, as upstream does.
        """
        if not _delivery.uses_leases(self.huey):
            return True
        try:
            leader = self.huey.storage.acquire_lease(
                "periodic-scheduler", self.owner_id, self.leader_lease_seconds
            )
        except Exception:
            self._logger.exception("Error renewing the periodic scheduler lease")
            return False
        if leader != self._was_leader:
            self._logger.info(
                "%s the periodic scheduler", "Became" if leader else "Another consumer is"
            )
            self._was_leader = leader
        return leader

    def sleep_until_next_interval(self) -> None:
        """Sleep until the next wall-clock multiple of ``interval`` (a stop cuts it short)."""
        # A few ms past the boundary, so the clock read after waking is in the new second.
        delay = self.interval - (time.time() % self.interval) + 0.005
        self.stop_flag.wait(delay)

    def enqueue_scheduled(self, now: datetime.datetime) -> int:
        """Move every task due at ``now`` from the schedule to the queue; return the count.

        With leased delivery the move is leased too (``_delivery.move_due_scheduled``):
        a consumer killed half-way leaves nothing lost, the reaper queues the rest.
        """
        if _delivery.uses_leases(self.huey):
            try:
                moved = _delivery.move_due_scheduled(self.huey, now)
            except Exception:
                self._logger.exception(
                    "Error moving due scheduled tasks to the queue; the reaper will queue "
                    "any taken from the schedule when their lease expires"
                )
                return 0
            for task in moved:
                self._logger.info("Enqueueing scheduled task %s", task)
            return len(moved)
        try:
            tasks = self.huey.read_schedule(now)
        except Exception:
            self._logger.exception("Error reading the schedule")
            return 0
        return sum(1 for task in tasks if self._enqueue(task, "scheduled"))

    def enqueue_periodic(self, now: datetime.datetime) -> int:
        """Enqueue the periodic tasks of the tick containing ``now``, once per tick."""
        period = self.periodic_task_seconds
        tick = int((now - EPOCH).total_seconds() // period)
        if tick == self._last_tick:
            return 0
        if self._last_tick is not None and tick > self._last_tick + 1:
            self._logger.warning(
                "Scheduler fell behind: skipping %d missed periodic check(s)",
                tick - self._last_tick - 1,
            )
        self._last_tick = tick
        timestamp = EPOCH + datetime.timedelta(seconds=tick * period)
        self._logger.debug("Checking periodic tasks for %s", timestamp)
        try:
            tasks = self.huey.read_periodic(timestamp)
        except Exception:
            self._logger.exception("Error checking periodic tasks for %s", timestamp)
            return 0
        return sum(1 for task in tasks if self._enqueue_tick(task, tick))

    def _enqueue_tick(self, task: Task, tick: int) -> bool:
        """Enqueue ``task`` for ``tick`` once overall: the (task, tick) claim and the
        enqueue are one atomic storage step (storages without leases: just enqueue)."""
        if not _delivery.uses_leases(self.huey):
            return self._enqueue(task, "periodic")
        key = f"periodic:{self.huey._registry.task_to_string(type(task))}:{tick}"
        ttl = max(10 * self.periodic_task_seconds, 600)
        try:
            enqueued = _delivery.enqueue_tick(self.huey, task, key, ttl)
        except Exception:
            self._logger.exception("Error enqueueing periodic task %s; skipped", task.name)
            return False
        if enqueued:
            self._logger.info("Enqueueing periodic task %s", task)
        else:
            self._logger.debug("Periodic task %s for tick %s already enqueued", task.name, tick)
        return enqueued

    def _enqueue(self, task: Task, kind: str) -> bool:
        self._logger.info("Enqueueing %s task %s", kind, task)
        try:
            self.huey.enqueue(task)
        except Exception:
            self._logger.exception("Error enqueueing %s task %s; skipped", kind, task.id)
            return False
        return True
