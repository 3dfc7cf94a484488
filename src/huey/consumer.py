"""The consumer: worker loops, the scheduler, supervision and OS signals (spec section 16).

A :class:`Consumer` runs ``workers`` :class:`Worker` loops and one :class:`Scheduler` loop in
an :class:`Environment` (threads, forked processes or gevent greenlets; see
``huey._environments``). The main thread only supervises: it waits on the stop flag, acts
on the OS signals it received, restarts dead workers and watches for overrunning tasks.

Decisions (huey-ng):

- **Signal handlers only set flags.** The main loop notices the flag within 0.1 s and does
  the work (logging, joining, interrupting) outside the handler, where it is safe.
  A second stop signal during a graceful stop turns it into an immediate one.
- **Scheduled tasks**: every ``scheduler_interval`` seconds the scheduler calls
  ``huey.read_schedule(now)`` and enqueues each due task; a task that fails to enqueue is
  logged and skipped. The scheduler wakes on wall-clock multiples of the interval, so a
  slow iteration skips the iterations it missed instead of running them back to back.
- **Periodic tasks** tick on **wall-clock minutes**: ``read_periodic(ts)`` runs once for
  each new minute, with ``ts`` truncated to the minute in huey time (UTC when ``huey.utc``,
  else local time). A consumer starting mid-minute checks that minute at once. After a
  stall (a suspended machine, a long pause) the missed minutes are skipped, with a
  warning, rather than fired back to back. When the clock goes backwards (local time at
  the end of daylight saving), each minute seen again is checked again: a consumer never
  goes quiet for an hour. ``periodic=False`` (``-n``) turns periodic tasks off.
- **Test knobs**: ``Scheduler.periodic_task_seconds`` (default 60) is the tick width and
  ``Scheduler._now`` (default None: ``huey._get_timestamp``) the clock, so tests can make
  ticks happen without waiting a real minute.
- **Thread workers** cannot be interrupted. When a task with a ``timeout`` runs past its
  deadline, the supervisor logs an error naming the task and emits ``SIGNAL_TIMEOUT`` once
  for it; the task keeps running (use process or greenlet workers for a hard timeout, or
  ``task.check_timeout()`` inside the task).
- **Restart** (SIGHUP): a graceful stop, then the process re-executes itself with the
  interpreter options and arguments it was started with (``sys.orig_argv``), so
  ``python -m huey.bin.huey_consumer`` restarts the same way it was started.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from huey import signals as S
from huey._environments import (
    WORKER_TO_ENVIRONMENT,
    Environment,
    ForkSafeFlag,
    GreenletEnvironment,
    ProcessEnvironment,
    ThreadEnvironment,
)
from huey._workers import BaseProcess, ConsumerStopped, Scheduler, Worker, WorkerRecycle
from huey.constants import WORKER_GREENLET, WORKER_THREAD, WORKER_TYPES
from huey.exceptions import ConfigurationError

if TYPE_CHECKING:
    from huey.api import Huey

__all__ = [
    "WORKER_TO_ENVIRONMENT",
    "BaseProcess",
    "Consumer",
    "ConsumerOptionError",
    "ConsumerStopped",
    "Environment",
    "ForkSafeFlag",
    "GreenletEnvironment",
    "ProcessEnvironment",
    "Scheduler",
    "ThreadEnvironment",
    "Worker",
    "WorkerRecycle",
]

logger = logging.getLogger("huey.consumer")


class ConsumerOptionError(ConfigurationError, ValueError):
    """An invalid consumer option (both a ``ConfigurationError`` and a ``ValueError``)."""


def _check_number(name: str, value: Any, minimum: float, *, exclusive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConsumerOptionError(f"{name} must be a number, got {value!r}")
    if value < minimum or (exclusive and value == minimum):
        bound = f"> {minimum}" if exclusive else f">= {minimum}"
        raise ConsumerOptionError(f"{name} must be {bound}, got {value!r}")
    return value


def _check_count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConsumerOptionError(f"{name} must be a whole number >= 1, got {value!r}")
    return value


def _check_max_tasks(value: Any, health_check: bool) -> int | None:
    if value is None:
        return None
    if not health_check:
        raise ConsumerOptionError(
            "max_tasks needs the worker health check to replace recycled workers; "
            "do not combine it with check_worker_health=False (-C)"
        )
    return _check_count("max_tasks", value)


def _check_scheduler_interval(value: Any) -> int:
    _check_number("scheduler_interval", value, 0)
    interval = min(max(value, 1), 60)  # clamped to 1-60, as upstream does
    if interval != int(interval) or 60 % int(interval):
        raise ConsumerOptionError(
            f"scheduler_interval must be a whole number of seconds that divides 60 "
            f"(1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30 or 60), got {value!r}"
        )
    return int(interval)


def _check_worker_type(value: Any) -> str:
    if value == "gevent":
        return WORKER_GREENLET
    if value not in WORKER_TYPES:
        raise ValueError(
            f"worker_type must be one of {', '.join(WORKER_TYPES)} (or 'gevent'), got {value!r}"
        )
    return str(value)


def _check_signals(graceful_signal: Any) -> tuple[int, int]:
    name = str(graceful_signal).upper().removeprefix("SIG")
    if name == "INT":
        return signal.SIGINT, signal.SIGTERM
    if name == "TERM":
        return signal.SIGTERM, signal.SIGINT
    raise ConsumerOptionError(f"graceful_signal must be 'INT' or 'TERM', got {graceful_signal!r}")


def _lock_names(extra_locks: Any) -> list[str]:
    if not extra_locks:
        return []
    if isinstance(extra_locks, str):
        extra_locks = extra_locks.split(",")
    return [name.strip() for name in extra_locks if name and name.strip()]


class Consumer:
    """Runs workers and a scheduler for ``huey`` and supervises them (spec section 16.1).

    :param huey: the :class:`~huey.api.Huey` instance whose queue is consumed.
    :param workers: number of worker threads, processes or greenlets.
    :param periodic: whether the scheduler enqueues periodic tasks.
    :param initial_delay: first poll sleep on a non-blocking storage (reset after a task).
    :param backoff: multiplier applied to the poll sleep while the queue is empty (>= 1).
    :param max_delay: cap on the poll sleep.
    :param scheduler_interval: seconds between schedule reads (clamped to 1-60, divides 60).
    :param worker_type: ``'thread'``, ``'process'`` or ``'greenlet'`` (alias ``'gevent'``).
    :param check_worker_health: replace dead workers and a dead scheduler.
    :param health_check_interval: seconds between health checks.
    :param flush_locks: delete the registered task locks at start-up.
    :param extra_locks: comma-separated lock names to delete too (implies a flush).
    :param max_tasks: a worker exits after this many tasks and is replaced (needs the
        health check).
    :param shutdown_timeout: longest a graceful stop waits before interrupting the workers.
    :param graceful_signal: ``'INT'`` or ``'TERM'``; the other one stops immediately.
    :param visibility_timeout: overrides ``huey.visibility_timeout``: seconds a taken task
        stays leased without a heartbeat before it is delivered again.
    """

    worker_class: type[Worker] = Worker
    scheduler_class: type[Scheduler] = Scheduler

    def __init__(
        self,
        huey: Huey,
        workers: int = 1,
        periodic: bool = True,
        initial_delay: float = 0.1,
        backoff: float = 1.15,
        max_delay: float = 10.0,
        scheduler_interval: int = 1,
        worker_type: str = WORKER_THREAD,
        check_worker_health: bool = True,
        health_check_interval: float = 10,
        flush_locks: bool = False,
        extra_locks: str | None = None,
        max_tasks: int | None = None,
        shutdown_timeout: float | None = None,
        graceful_signal: str = "INT",
        visibility_timeout: float | None = None,
    ) -> None:
        self.huey = huey
        if visibility_timeout is not None:
            huey.visibility_timeout = _check_number(
                "visibility_timeout", visibility_timeout, 0, exclusive=True
            )
        if huey.immediate:
            logger.warning("Consumer created for a Huey in immediate mode; start() will refuse")
        self.workers = _check_count("workers", workers)
        self.periodic = bool(periodic)
        self.default_delay = _check_number("initial_delay", initial_delay, 0)
        self.backoff = _check_number("backoff", backoff, 1)
        self.max_delay = _check_number("max_delay", max_delay, 0)
        self.scheduler_interval = _check_scheduler_interval(scheduler_interval)
        self.worker_type = _check_worker_type(worker_type)
        self._health_check = bool(check_worker_health)
        self.health_check_interval = _check_number(
            "health_check_interval", health_check_interval, 0, exclusive=True
        )
        self.max_tasks = _check_max_tasks(max_tasks, self._health_check)
        if shutdown_timeout is not None:
            _check_number("shutdown_timeout", shutdown_timeout, 0)
        self.shutdown_timeout = shutdown_timeout
        self.graceful_signal, self.interrupt_signal = _check_signals(graceful_signal)
        self._setup(flush_locks, extra_locks)

    def _setup(self, flush_locks: bool, extra_locks: Any) -> None:
        huey = self.huey
        self.environment = self.get_environment(self.worker_type)
        self.environment.configure(
            self.graceful_signal, self.interrupt_signal, lambda: bool(huey._tasks_in_flight)
        )
        self.stop_flag = self.environment.get_stop_flag()
        if flush_locks or extra_locks:
            self.flush_locks(*_lock_names(extra_locks))

        self.scheduler = self._create_scheduler()
        self._scheduler_process = self._create_process(self.scheduler, "Scheduler")
        self.worker_threads: list[tuple[Worker, Any]] = []
        for i in range(self.workers):
            worker = self._create_worker()
            self.worker_threads.append((worker, self._create_process(worker, f"Worker-{i + 1}")))

        self._received_signal: str | None = None
        self._stopping = False
        self._force_stop = False
        self._restart = False
        self._reported_overruns: set[str] = set()

    # -- construction ---------------------------------------------------------------------
    def get_environment(self, worker_type: str) -> Environment:
        """The :class:`Environment` for a worker type name."""
        return WORKER_TO_ENVIRONMENT[worker_type]()

    def _create_worker(self) -> Worker:
        return self.worker_class(
            self.huey,
            self.stop_flag,
            self.default_delay,
            self.max_delay,
            self.backoff,
            self.max_tasks,
        )

    def _create_scheduler(self) -> Scheduler:
        return self.scheduler_class(
            self.huey, self.stop_flag, self.scheduler_interval, self.periodic
        )

    def _create_process(self, process: BaseProcess, name: str) -> Any:
        return self.environment.create_process(process.run, name)

    def _start_process(self, process: Any) -> None:
        if self.environment.forks:
            self._close_storage()  # a forked child must not share the parent's connection
        self.environment.start(process)

    def _close_storage(self) -> None:
        try:
            self.huey.storage.close()
        except Exception:
            logger.exception("Error closing the storage connection")

    def flush_locks(self, *names: str) -> set[str]:
        """Delete the registered locks plus ``names``; log and return those that existed."""
        flushed = self.huey.flush_locks(*names)
        if flushed:
            logger.warning("Found stale locks: %s", ", ".join(sorted(flushed)))
        return flushed

    # -- running --------------------------------------------------------------------------
    def start(self) -> None:
        """Start the scheduler and the workers, then install the OS signal handlers."""
        if self.huey.immediate:
            raise ConfigurationError(
                "the consumer cannot run a Huey in immediate mode; set immediate=False"
            )
        self._log_startup()
        env = self.environment
        self.huey._timeout_handler = env.timeout if env.hard_timeout else None
        self._start_process(self._scheduler_process)
        for _, process in self.worker_threads:
            self._start_process(process)
        self._set_signal_handlers()

    def _log_startup(self) -> None:
        logger.info(
            "Huey consumer started with %s %s worker(s), PID %s",
            self.workers,
            self.worker_type,
            os.getpid(),
        )
        logger.info("Scheduler runs every %s second(s)", self.scheduler_interval)
        logger.info("Periodic tasks are %s", "enabled" if self.periodic else "disabled")
        logger.info("UTC is %s", "enabled" if self.huey.utc else "disabled")
        names = sorted(self.huey._registry._registry)
        if names:
            logger.info("The following commands are available:\n+ %s", "\n+ ".join(names))
        else:
            logger.warning("No tasks are registered: did the module that defines them load?")

    def _set_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            logger.debug("Consumer not started in the main thread: OS signals not handled")
            return
        signal.signal(self.graceful_signal, self._handle_signal)
        signal.signal(self.interrupt_signal, self._handle_signal)
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, self._handle_signal)

    def _handle_signal(self, signum: int, frame: Any) -> None:
        # Only set flags: the main loop logs and acts, outside the signal handler.
        if self._stopping:
            self._force_stop = True
        elif signum == self.graceful_signal:
            self._received_signal = "graceful"
        elif signum == self.interrupt_signal:
            self._received_signal = "interrupt"
        else:
            self._received_signal = "restart"

    def run(self) -> None:
        """Start, supervise until stopped, then notify interrupted tasks (or restart)."""
        self.start()
        health_check_ts = time.monotonic()
        while True:
            try:
                health_check_ts = self.loop(health_check_ts)
            except ConsumerStopped:
                break
            except KeyboardInterrupt:
                self.stop(graceful=False)
                break
        self.huey.notify_interrupted_tasks()
        if self._restart:
            self._reexec()
        logger.info("Consumer exited")

    def loop(self, health_check_ts: float | None = None) -> float:
        """One supervision step; raises ConsumerStopped once the consumer has stopped."""
        if self._received_signal is not None:
            self._act_on_signal()
        if self.stop_flag.is_set():
            raise ConsumerStopped()
        self.stop_flag.wait(0.1)
        now = time.monotonic()
        if self._health_check and (
            health_check_ts is None or now >= health_check_ts + self.health_check_interval
        ):
            health_check_ts = now
            self.check_worker_health()
        if not self.environment.hard_timeout:
            self._report_overruns()
        return now if health_check_ts is None else health_check_ts

    def _act_on_signal(self) -> None:
        received, self._received_signal = self._received_signal, None
        name = signal.Signals(self.graceful_signal).name
        if received == "graceful":
            logger.info(
                "Received %s: stopping gracefully (running tasks finish; send it again to "
                "stop at once)",
                name,
            )
            self.stop(graceful=True)
        elif received == "interrupt":
            logger.warning(
                "Received %s: stopping immediately",
                signal.Signals(self.interrupt_signal).name,
            )
            self.stop(graceful=False)
        else:
            logger.info("Received SIGHUP: restarting after running tasks finish")
            self._restart = True
            self.stop(graceful=True)
        raise ConsumerStopped()

    def stop(self, graceful: bool = False) -> None:
        """Stop the workers: let running tasks finish (graceful) or interrupt them."""
        self._stopping = True
        self.stop_flag.set()
        if graceful:
            if self._wait_for_workers(self.shutdown_timeout):
                logger.info("All workers finished")
                return
            if self._force_stop:
                logger.warning("Second stop signal: interrupting the running tasks")
            else:
                logger.warning(
                    "Shutdown timeout of %ss reached: interrupting the running tasks",
                    self.shutdown_timeout,
                )
        self._interrupt_workers()

    def _all_processes(self) -> list[Any]:
        return [self._scheduler_process] + [process for _, process in self.worker_threads]

    def _wait_for_workers(self, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            alive = [p for p in self._all_processes() if self.environment.is_alive(p)]
            if not alive:
                return True
            if self._force_stop or (deadline is not None and time.monotonic() >= deadline):
                return False
            self.environment.join(alive[0], 0.1)

    def _interrupt_workers(self) -> None:
        env = self.environment
        alive = [p for p in self._all_processes() if env.is_alive(p)]
        interrupted = [p for p in alive if env.interrupt(p)]
        deadline = time.monotonic() + 1.0
        for process in interrupted:
            env.join(process, max(0.0, deadline - time.monotonic()))
        for process in interrupted:
            if env.is_alive(process) and env.kill(process):
                logger.warning(
                    "Killed %s, which did not stop when interrupted", env.describe(process)
                )
        abandoned = [p for p in alive if p not in interrupted and env.is_alive(p)]
        if abandoned:
            logger.warning(
                "%d %s worker(s) cannot be interrupted; their running tasks are abandoned "
                "and reported as interrupted",
                len(abandoned),
                self.worker_type,
            )

    def _reexec(self) -> None:
        logger.info("Restarting the consumer (re-executing %s)", sys.executable)
        self._close_storage()
        for handler in logging.getLogger("huey").handlers + logging.getLogger().handlers:
            handler.flush()
        original = list(getattr(sys, "orig_argv", []))
        args = [sys.executable, *(original[1:] if original else sys.argv)]
        os.execv(sys.executable, args)

    # -- supervision ----------------------------------------------------------------------
    def check_worker_health(self) -> bool:
        """Replace dead workers and a dead scheduler; True when all were alive."""
        if self.stop_flag.is_set():
            return True
        healthy = True
        env = self.environment
        for i, (worker, process) in enumerate(self.worker_threads):
            if env.is_alive(process):
                continue
            healthy = False
            self._log_dead(worker, process)
            worker = self._create_worker()
            process = self._create_process(worker, f"Worker-{i + 1}")
            self._start_process(process)
            self.worker_threads[i] = (worker, process)
        if not env.is_alive(self._scheduler_process):
            healthy = False
            self._log_dead(self.scheduler, self._scheduler_process)
            self.scheduler = self._create_scheduler()
            self._scheduler_process = self._create_process(self.scheduler, "Scheduler")
            self._start_process(self._scheduler_process)
        return healthy

    def _log_dead(self, worker: BaseProcess, process: Any) -> None:
        label = self.environment.describe(process)
        exitcode = getattr(process, "exitcode", None)
        recycled = isinstance(worker, Worker) and bool(
            worker.max_tasks and worker.tasks_run >= worker.max_tasks
        )
        if exitcode == 0 or recycled:
            logger.info("%s exited (recycled); starting a new one", label)
        else:
            logger.warning("%s died (exit code %s); starting a new one", label, exitcode)

    def _report_overruns(self) -> None:
        """Log and emit SIGNAL_TIMEOUT once for each running task past its deadline."""
        try:
            running = list(self.huey._tasks_in_flight)
        except RuntimeError:  # the set changed while being copied; check next time
            return
        now = time.monotonic()
        for task in running:
            deadline = task._deadline
            if deadline is None or now < deadline or task.id in self._reported_overruns:
                continue
            self._reported_overruns.add(task.id)
            logger.error(
                "Task %s has run past its timeout of %ss; a thread worker cannot interrupt "
                "it, so it keeps running (use process or greenlet workers for a hard timeout, "
                "or call task.check_timeout() inside the task)",
                task.id,
                task.timeout,
            )
            self.huey._emit(S.SIGNAL_TIMEOUT, task)
        self._reported_overruns &= {task.id for task in running}
