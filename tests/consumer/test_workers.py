"""Real consumer processes on SqliteHuey and FileHuey, for each worker type."""

from __future__ import annotations

import signal
import time
from types import SimpleNamespace
from typing import Any

import pytest

from tests.consumer.conftest import ConsumerProcess, value_of

WORKER_TYPES = ["thread", "process", "greenlet"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("worker_type", WORKER_TYPES)
def test_tasks_run_and_store_results(
    app: SimpleNamespace, start_consumer: Any, worker_type: str
) -> None:
    t = app.tasks
    before = time.time()
    scheduled = t.run_time.schedule(delay=2)
    plain = [t.add(i, i) for i in range(5)]
    pipeline = app.huey.enqueue(t.add.s(1, 2).then(t.mul, 10))
    mapped = t.mul.map([(i, 3) for i in range(4)])
    retried = t.flaky()

    consumer: ConsumerProcess = start_consumer(app.storage, "-w", "2", "-k", worker_type)

    assert [value_of(r) for r in plain] == [0, 2, 4, 6, 8]
    assert value_of(pipeline) == [3, 30]
    assert value_of(mapped) == [0, 3, 6, 9]
    assert value_of(retried) == "finally"
    ran_at = value_of(scheduled)
    assert ran_at >= before + 2, "a scheduled task ran before its eta"

    consumer.send(signal.SIGINT)
    assert consumer.wait_exit() == 0
    log = consumer.log()
    # Task ids appear in the log lines about tasks.
    assert plain[0].id in log
    assert f"2 {worker_type} worker(s)" in log
    # Default log format: process workers show the pid where threads show the thread name.
    where = str(consumer.pid) if worker_type == "process" else "MainThread"
    assert f"] INFO:huey.consumer:{where}:Huey consumer started" in log
    # on_startup / on_shutdown ran once per worker, never in the scheduler.
    startups, shutdowns = consumer.events("startup"), consumer.events("shutdown")
    assert len(startups) == 2 and len(shutdowns) == 2, consumer.events()
    assert len({tuple(row[1:]) for row in startups}) == 2
