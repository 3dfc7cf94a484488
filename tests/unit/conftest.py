"""Fixtures and helpers for the task-API unit tests (spec §2-§13).

Everything runs on ``MemoryHuey`` in this process: the "consumer side" is simulated by
``run_next`` / ``run_all``, which dequeue and ``execute`` tasks directly. Time is injected
through ``timestamp=`` rather than slept, so the suite stays fast and deterministic.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterator
from typing import Any

import pytest

from huey import MemoryHuey
from huey.api import Task

#: Every signal name of spec §11.1, for recorders that want to check coverage.
ALL_SIGNALS = (
    "enqueued",
    "scheduled",
    "executing",
    "complete",
    "error",
    "retrying",
    "canceled",
    "revoked",
    "expired",
    "locked",
    "interrupted",
    "timeout",
    "rate-limited",
)


@pytest.fixture
def huey(unique_name: str) -> Iterator[MemoryHuey]:
    """A fresh in-memory huey with local (non-UTC) time, flushed at teardown."""
    instance = MemoryHuey(unique_name, utc=False)
    yield instance
    instance.flush()


@pytest.fixture
def immediate_huey(unique_name: str) -> Iterator[MemoryHuey]:
    """A fresh in-memory huey in immediate mode (tasks run inside ``enqueue``)."""
    instance = MemoryHuey(unique_name, utc=False, immediate=True)
    yield instance
    instance.flush()


@pytest.fixture
def non_utc_timezone(monkeypatch: pytest.MonkeyPatch) -> Iterator[datetime.timedelta]:
    """Switch the process to a fixed +05:30 zone so local time and UTC really differ.

    Yields the local-minus-UTC offset. The original zone is restored afterwards.
    """
    monkeypatch.setenv("TZ", "IST-05:30")
    time.tzset()
    try:
        yield datetime.timedelta(hours=5, minutes=30)
    finally:
        monkeypatch.undo()
        time.tzset()


def run_next(huey: MemoryHuey, timestamp: datetime.datetime | None = None) -> Any:
    """Take the next task from the queue and execute it, as one worker iteration would.

    Fails the test when the queue is empty.
    """
    task = huey.dequeue()
    assert task is not None, "expected a task in the queue"
    return huey.execute(task, timestamp=timestamp)


def run_all(
    huey: MemoryHuey,
    timestamp: datetime.datetime | None = None,
    schedule: bool = False,
    limit: int = 200,
) -> int:
    """Drain the queue (and, with ``schedule=True``, the due part of the schedule).

    ``timestamp`` is passed to ``execute`` and ``read_schedule``. Returns the number of
    tasks executed. ``limit`` guards against a test that would loop forever.
    """
    executed = 0
    while executed < limit:
        if schedule:
            for task in huey.read_schedule(timestamp):
                huey.enqueue(task)
        task = huey.dequeue()
        if task is None:
            return executed
        huey.execute(task, timestamp=timestamp)
        executed += 1
    raise AssertionError(f"run_all: more than {limit} tasks executed; runaway retry loop?")


def far_future() -> datetime.datetime:
    """A local timestamp one day ahead: everything scheduled for 'soon' is due then."""
    return datetime.datetime.now() + datetime.timedelta(days=1)


class Recorder:
    """A signal receiver that remembers ``(signal, task_id, extra_args)`` per call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, tuple[Any, ...]]] = []

    def __call__(self, signal: str, task: Task, *args: Any) -> None:
        self.calls.append((signal, task.id, args))

    @property
    def names(self) -> list[str]:
        """Signal names in emission order."""
        return [name for name, _, _ in self.calls]

    def for_task(self, task_id: str) -> list[str]:
        """Signal names emitted for one task id, in order."""
        return [name for name, tid, _ in self.calls if tid == task_id]

    def clear(self) -> None:
        """Forget every recorded call."""
        self.calls.clear()


@pytest.fixture
def recorder(huey: MemoryHuey) -> Recorder:
    """A ``Recorder`` connected to every signal of the ``huey`` fixture."""
    rec = Recorder()
    huey.signal()(rec)
    return rec


def approx_now_plus(
    value: datetime.datetime | None, seconds: float, tolerance: float = 10.0
) -> bool:
    """True when ``value`` is within ``tolerance`` s of local now + ``seconds``."""
    assert value is not None
    expected = datetime.datetime.now() + datetime.timedelta(seconds=seconds)
    return abs((value - expected).total_seconds()) <= tolerance


__all__ = [
    "ALL_SIGNALS",
    "Recorder",
    "approx_now_plus",
    "far_future",
    "run_all",
    "run_next",
]
