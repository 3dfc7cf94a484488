"""Supervision on a real consumer: dead workers replaced, max-tasks recycling, stale locks,
and task timeouts per worker type (hard for process / greenlet, reported for threads)."""

from __future__ import annotations

import os
import signal
from types import SimpleNamespace
from typing import Any

import pytest

from huey.exceptions import TaskException
from tests.consumer.conftest import value_of, wait_until

pytestmark = pytest.mark.parametrize("storage", ["sqlite"])


@pytest.mark.timeout(60)
def test_sigkilled_process_worker_is_replaced(app: SimpleNamespace, start_consumer: Any) -> None:
    consumer = start_consumer(app.storage, "-k", "process", "-w", "2", "-c", "0.2")
    startups = consumer.wait_for_events("startup", count=2)
    victim = int(startups[0][1])
    os.kill(victim, signal.SIGKILL)
    consumer.wait_for_log(rf"Worker-\d \(pid {victim}\) died \(exit code -9\)")
    replacement = consumer.wait_for_events("startup", count=3)[2]
    assert int(replacement[1]) not in (victim, int(startups[1][1]))
    # The consumer keeps going: both workers (one of them new) take tasks.
    assert value_of(app.tasks.add.map([(i, 1) for i in range(6)])) == [1, 2, 3, 4, 5, 6]
    consumer.send(signal.SIGINT)
    assert consumer.wait_exit() == 0


@pytest.mark.timeout(60)
@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_max_tasks_recycles_workers(
    app: SimpleNamespace, start_consumer: Any, worker_type: str
) -> None:
    results = [app.tasks.whoami() for _ in range(6)]
    consumer = start_consumer(app.storage, "-k", worker_type, "-M", "2", "-c", "0.1")
    identities = [value_of(result) for result in results]
    # One worker, two tasks each: at least three distinct workers ran the six tasks.
    assert len(set(identities)) >= 3, identities
    assert len(consumer.events("startup")) >= 3
    assert "Worker recycled: it ran its maximum number of tasks" in consumer.log()
    assert "exited (recycled); starting a new one" in consumer.log()
    consumer.send(signal.SIGINT)
    assert consumer.wait_exit() == 0
    # Every recycled worker ran its shutdown hook.
    assert len(consumer.events("shutdown")) == len(consumer.events("startup"))


@pytest.mark.timeout(60)
def test_extra_locks_flush_stale_locks(app: SimpleNamespace, start_consumer: Any) -> None:
    huey = app.huey
    for name in ("deco-lock", "extra1", "extra2", "unrelated"):
        assert huey.put_if_empty(f"{huey.name}.lock.{name}", "1")
    consumer = start_consumer(app.storage, "-L", "extra1, extra2")
    consumer.wait_for_log("Found stale locks: deco-lock, extra1, extra2")
    # The decorator's lock was stale: with it flushed the locked task runs.
    assert value_of(app.tasks.locked()) == "locked ran"
    assert not huey.is_locked("extra1") and not huey.is_locked("extra2")
    assert huey.is_locked("unrelated")
    consumer.send(signal.SIGINT)
    assert consumer.wait_exit() == 0


@pytest.mark.timeout(60)
@pytest.mark.parametrize("worker_type", ["process", "greenlet"])
def test_hard_timeout_stores_task_timeout(
    app: SimpleNamespace, start_consumer: Any, worker_type: str
) -> None:
    result = app.tasks.sleepy(30)  # timeout=1
    after = app.tasks.add(2, 2)
    consumer = start_consumer(app.storage, "-k", worker_type)
    with pytest.raises(TaskException) as info:
        value_of(result)
    assert "TaskTimeout" in info.value.metadata["error"]
    assert consumer.wait_for_events("timeout") == [["timeout", result.id]]
    assert value_of(after) == 4  # the worker goes on with the next task
    consumer.send(signal.SIGINT)
    assert consumer.wait_exit() == 0


@pytest.mark.timeout(60)
def test_thread_overrun_is_logged_and_signalled(app: SimpleNamespace, start_consumer: Any) -> None:
    result = app.tasks.sleepy(2.5)  # timeout=1; a thread cannot be interrupted
    consumer = start_consumer(app.storage, "-k", "thread")
    assert value_of(result) == "woke up"
    log = consumer.wait_for_log(f"Task {result.id} has run past its timeout of 1s")
    assert "a thread worker cannot interrupt it" in log
    # SIGNAL_TIMEOUT was emitted exactly once for the overrun.
    wait_until(lambda: consumer.events("timeout"), 10, "the timeout event")
    assert consumer.events("timeout") == [["timeout", result.id]]
    consumer.send(signal.SIGINT)
    assert consumer.wait_exit() == 0
    assert consumer.events("timeout") == [["timeout", result.id]]


def _gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie awaiting its new parent's reaping counts)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return True


@pytest.mark.timeout(60)
def test_process_workers_exit_when_the_consumer_is_killed(
    app: SimpleNamespace, start_consumer: Any
) -> None:
    consumer = start_consumer(app.storage, "-k", "process", "-w", "2")
    workers = [int(row[1]) for row in consumer.wait_for_events("startup", count=2)]
    os.kill(consumer.pid, signal.SIGKILL)
    consumer.wait_exit()
    # The stop-flag pipe reads as "set" once its only writer (the consumer) is gone.
    wait_until(lambda: all(_gone(pid) for pid in workers), 20, "orphaned workers to exit")
    assert len(consumer.wait_for_events("shutdown", count=2)) == 2
