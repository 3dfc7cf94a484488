"""Worker execution environments: threads, forked processes and gevent greenlets.

An environment is the only thing that differs between worker types. It supplies:

- a **stop flag** that the consumer sets and every worker polls or waits on;
- a way to **create, start, join, interrupt and kill** a worker (a thread, a process or a
  greenlet running ``BaseProcess.run``);
- a **timeout context factory**, ``timeout(seconds)``, that the consumer installs as
  ``huey._timeout_handler`` so that ``Huey.execute`` enforces a task's hard timeout by raising
  :class:`~huey.exceptions.TaskTimeout` inside the task.

The consumer and the workers never look at the worker type themselves, so a new kind of
worker (an asyncio event loop, for instance) is one more :class:`Environment` subclass and one
more entry in ``WORKER_TO_ENVIRONMENT`` - never a second execution path.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import select
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager
from typing import Any, Protocol

from huey.constants import WORKER_GREENLET, WORKER_PROCESS, WORKER_THREAD
from huey.exceptions import ConfigurationError, TaskTimeout

logger = logging.getLogger("huey.consumer")

Runnable = Callable[[], None]


class StopFlag(Protocol):
    """What workers need from a stop flag (``threading.Event`` satisfies it)."""

    def set(self) -> None: ...

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class ForkSafeFlag:
    """A stop flag shared by a process and the children it forks, built on an OS pipe.

    Setting the flag writes one byte to the pipe; every process that holds the read end sees
    it readable from then on, so ``is_set`` and ``wait`` work across ``fork`` without the
    locks (and the fork-time deadlocks) of ``multiprocessing.Event``.

    A child calls :meth:`close_writer` after the fork. Once the parent is gone no process
    holds the write end any more and the read end reports end-of-file, which reads as "set":
    workers of a consumer that was killed stop on their own instead of running forever.
    """

    def __init__(self) -> None:
        self._read_fd, self._write_fd = os.pipe()
        self._writer_open = True

    def set(self) -> None:
        """Set the flag (idempotent)."""
        if not self._writer_open:
            raise RuntimeError("this ForkSafeFlag was closed for writing in a child process")
        if not self.is_set():
            os.write(self._write_fd, b"1")

    def is_set(self) -> bool:
        """Whether the flag is set (or the process that owned it is gone)."""
        return self.wait(0)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the flag is set or ``timeout`` seconds pass; return ``is_set()``."""
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(self._read_fd, select.POLLIN)
            millis = None if timeout is None else max(0.0, timeout) * 1000.0
            return bool(poller.poll(millis))
        readable, _, _ = select.select([self._read_fd], [], [], timeout)
        return bool(readable)

    def clear(self) -> None:
        """Unset the flag (only meaningful in the process that owns the write end)."""
        while self.wait(0):
            if not os.read(self._read_fd, 1024):
                break  # end-of-file: the writer is gone and the flag cannot be cleared

    def close_writer(self) -> None:
        """Drop this process's copy of the write end (called in a forked child)."""
        if self._writer_open:
            self._writer_open = False
            os.close(self._write_fd)


class Environment:
    """How workers run: the strategy object behind each worker type.

    Subclasses override every method. ``configure`` is called by the consumer before any
    worker is created, with the signals it uses and a ``busy`` callable that says whether a
    task body is running in the calling worker.
    """

    worker_type: str = ""
    #: whether ``timeout()`` really interrupts a task (False: overruns are only reported)
    hard_timeout: bool = False
    #: whether workers are forked processes (the storage is closed before each fork)
    forks: bool = False

    def __init__(self) -> None:
        self.graceful_signal: int = signal.SIGINT
        self.interrupt_signal: int = signal.SIGTERM
        self.busy: Callable[[], bool] = lambda: False

    def configure(
        self, graceful_signal: int, interrupt_signal: int, busy: Callable[[], bool]
    ) -> None:
        """Record the consumer's signals and the "a task is running here" predicate."""
        self.graceful_signal = graceful_signal
        self.interrupt_signal = interrupt_signal
        self.busy = busy

    def get_stop_flag(self) -> StopFlag:
        """A new stop flag suitable for this worker type."""
        raise NotImplementedError

    def create_process(self, runnable: Runnable, name: str) -> Any:
        """Create (not start) a worker that calls ``runnable()``."""
        raise NotImplementedError

    def start(self, process: Any) -> None:
        """Start a worker made by :meth:`create_process`."""
        process.start()

    def is_alive(self, process: Any) -> bool:
        """Whether the worker is still running."""
        return bool(process.is_alive())

    def join(self, process: Any, timeout: float | None = None) -> None:
        """Wait for the worker to finish, at most ``timeout`` seconds."""
        process.join(timeout)

    def interrupt(self, process: Any) -> bool:
        """Ask a running worker to abandon its task; False when the type cannot do it."""
        return False

    def kill(self, process: Any) -> bool:
        """Stop a worker that ignored :meth:`interrupt`; False when the type cannot do it."""
        return False

    def timeout(self, seconds: float) -> ContextManager[None]:
        """A context manager that raises ``TaskTimeout`` in the task after ``seconds``."""
        return contextlib.nullcontext()

    def describe(self, process: Any) -> str:
        """A short label for log lines (name, plus the pid for processes)."""
        return str(getattr(process, "name", process))


class ThreadEnvironment(Environment):
    """Workers are daemon threads of the consumer process.

    A thread cannot be interrupted safely, so there is no hard timeout: the consumer's
    watchdog logs a clear line and emits ``SIGNAL_TIMEOUT`` when a task overruns, and tasks
    can check their own deadline cooperatively (``task.check_timeout()``).
    """

    worker_type = WORKER_THREAD

    def get_stop_flag(self) -> StopFlag:
        return threading.Event()

    def create_process(self, runnable: Runnable, name: str) -> threading.Thread:
        return threading.Thread(target=runnable, name=name, daemon=True)


class GreenletEnvironment(Environment):
    """Workers are gevent greenlets; the hard timeout is ``gevent.Timeout``.

    gevent is an optional dependency: without it this environment raises ``ImportError``.
    Greenlets only switch on cooperative I/O, so the consumer command monkey-patches the
    standard library before it imports the application; a warning is logged otherwise.
    """

    worker_type = WORKER_GREENLET
    hard_timeout = True

    def __init__(self) -> None:
        super().__init__()
        try:
            import gevent
            import gevent.event
        except ImportError as exc:
            raise ImportError(
                "greenlet workers need gevent: pip install 'huey-ng[gevent]' "
                f"(or choose -k thread / -k process) [{exc}]"
            ) from exc
        self._gevent = gevent
        from gevent import monkey

        if not monkey.is_module_patched("socket"):
            logger.warning(
                "greenlet workers are running without gevent monkey-patching: blocking I/O "
                "in one task blocks every worker. Call gevent.monkey.patch_all() first."
            )

    def get_stop_flag(self) -> StopFlag:
        from gevent.event import Event

        flag: StopFlag = Event()
        return flag

    def create_process(self, runnable: Runnable, name: str) -> Any:
        greenlet = self._gevent.Greenlet(run=runnable)
        greenlet.name = name
        return greenlet

    def is_alive(self, process: Any) -> bool:
        return not process.dead

    def interrupt(self, process: Any) -> bool:
        # KeyboardInterrupt inside the task is reported as SIGNAL_INTERRUPTED by Huey.
        process.kill(KeyboardInterrupt, block=False)
        return True

    def kill(self, process: Any) -> bool:
        process.kill(block=False)
        return True

    def timeout(self, seconds: float) -> ContextManager[None]:
        error = TaskTimeout(f"task exceeded its timeout of {seconds}s")
        return self._gevent.Timeout(seconds, error)  # type: ignore[no-any-return]


class ProcessEnvironment(Environment):
    """Workers are forked daemon processes; the hard timeout is ``SIGALRM``.

    The fork start method is required: workers inherit the loaded application (tasks, hooks,
    signal receivers) instead of re-importing it. In a worker, the graceful signal and SIGHUP
    are ignored (the parent's stop flag drives a graceful stop), and the interrupt signal
    raises ``KeyboardInterrupt`` only while a task body is running.
    """

    worker_type = WORKER_PROCESS
    hard_timeout = True
    forks = True

    def __init__(self) -> None:
        super().__init__()
        if "fork" not in multiprocessing.get_all_start_methods():
            raise ConfigurationError(
                "process workers need the 'fork' start method, which this platform lacks; "
                "use -k thread or -k greenlet"
            )
        self._context = multiprocessing.get_context("fork")
        self._flags: list[ForkSafeFlag] = []

    def get_stop_flag(self) -> StopFlag:
        flag = ForkSafeFlag()
        self._flags.append(flag)
        return flag

    def create_process(self, runnable: Runnable, name: str) -> Any:
        return self._context.Process(
            target=self._child_main, args=(runnable,), name=name, daemon=True
        )

    def _child_main(self, runnable: Runnable) -> None:
        for flag in self._flags:
            flag.close_writer()
        signal.signal(self.graceful_signal, signal.SIG_IGN)
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(self.interrupt_signal, self._on_interrupt)
        runnable()

    def _on_interrupt(self, signum: int, frame: Any) -> None:
        # Only abandon a running task; an idle worker stops through the stop flag.
        if self.busy():
            raise KeyboardInterrupt

    def interrupt(self, process: Any) -> bool:
        if process.is_alive() and process.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, self.interrupt_signal)
        return True

    def kill(self, process: Any) -> bool:
        if process.is_alive():
            process.kill()
            process.join(1.0)
        return True

    def describe(self, process: Any) -> str:
        return f"{process.name} (pid {process.pid})"

    def timeout(self, seconds: float) -> ContextManager[None]:
        return _alarm_timeout(seconds)


@contextlib.contextmanager
def _alarm_timeout(seconds: float) -> Iterator[None]:
    """Raise TaskTimeout in the main thread after ``seconds`` (``setitimer``, sub-second)."""
    if threading.current_thread() is not threading.main_thread():
        # Signals are delivered to the main thread only; a timer here could hit another task.
        logger.warning("SIGALRM timeout requested outside the main thread; not enforced")
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise TaskTimeout(f"task exceeded its timeout of {seconds}s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


#: worker type name -> environment class ('gevent' is accepted as an alias of 'greenlet')
WORKER_TO_ENVIRONMENT: dict[str, type[Environment]] = {
    WORKER_THREAD: ThreadEnvironment,
    WORKER_GREENLET: GreenletEnvironment,
    "gevent": GreenletEnvironment,
    WORKER_PROCESS: ProcessEnvironment,
}
