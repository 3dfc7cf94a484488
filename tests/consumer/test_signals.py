"""OS signals on a real consumer process (spec section 16.2): graceful and immediate stops,
``-g TERM``, a second stop signal, ``-t`` shutdown timeout and the SIGHUP restart."""

from __future__ import annotations

import signal
from types import SimpleNamespace
from typing import Any

import pytest

from tests.consumer.conftest import value_of

pytestmark = pytest.mark.parametrize("storage", ["sqlite"])


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "worker_type,flags,sig",
    [
        ("thread", (), signal.SIGINT),
        ("process", (), signal.SIGINT),
        ("greenlet", ("-g", "TERM"), signal.SIGTERM),
    ],
)
def test_graceful_stop_lets_running_task_finish(
    app: SimpleNamespace, start_consumer: Any, worker_type: str, flags: tuple[str, ...], sig: int
) -> None:
    result = app.tasks.slow(1.5, "graceful")
    consumer = start_consumer(app.storage, "-k", worker_type, *flags)
    consumer.wait_for_events("start")
    consumer.send(sig)
    assert consumer.wait_exit() == 0
    assert consumer.events("end") == [["end", "graceful"]]
    assert value_of(result, timeout=5) == "graceful"
    log = consumer.log()
    assert f"Received {signal.Signals(sig).name}: stopping gracefully" in log
    assert consumer.events("interrupted") == []
    assert len(consumer.events("shutdown")) == 1


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "worker_type,flags,sig",
    [
        ("thread", (), signal.SIGTERM),
        ("process", (), signal.SIGTERM),
        ("greenlet", ("-g", "TERM"), signal.SIGINT),
    ],
)
def test_immediate_stop_interrupts_running_task(
    app: SimpleNamespace, start_consumer: Any, worker_type: str, flags: tuple[str, ...], sig: int
) -> None:
    result = app.tasks.slow(60, "immediate")
    consumer = start_consumer(app.storage, "-k", worker_type, *flags)
    consumer.wait_for_events("start")
    consumer.send(sig)
    assert consumer.wait_exit(timeout=15) == 0
    assert consumer.events("end") == []
    # SIGNAL_INTERRUPTED fired for the task (in the worker, or at exit for a thread).
    assert consumer.events("interrupted") == [["interrupted", result.id]]
    assert f"Received {signal.Signals(sig).name}: stopping immediately" in consumer.log()
    assert app.huey.result(result.id) is None  # nothing stored for an interrupted task


@pytest.mark.timeout(60)
def test_second_graceful_signal_stops_at_once(app: SimpleNamespace, start_consumer: Any) -> None:
    result = app.tasks.slow(60, "twice")
    consumer = start_consumer(app.storage, "-k", "process")
    consumer.wait_for_events("start")
    consumer.send(signal.SIGINT)
    consumer.wait_for_log("stopping gracefully")
    consumer.send(signal.SIGINT)
    assert consumer.wait_exit(timeout=15) == 0
    assert "Second stop signal: interrupting the running tasks" in consumer.log()
    assert consumer.events("interrupted") == [["interrupted", result.id]]
    assert consumer.events("end") == []


@pytest.mark.timeout(60)
def test_shutdown_timeout_interrupts_after_waiting(
    app: SimpleNamespace, start_consumer: Any
) -> None:
    result = app.tasks.slow(60, "too-slow")
    consumer = start_consumer(app.storage, "-k", "thread", "-t", "0.5")
    consumer.wait_for_events("start")
    consumer.send(signal.SIGINT)
    assert consumer.wait_exit(timeout=15) == 0
    log = consumer.log()
    assert "Shutdown timeout of 0.5s reached: interrupting the running tasks" in log
    assert "1 thread worker(s) cannot be interrupted" in log
    assert consumer.events("interrupted") == [["interrupted", result.id]]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_sighup_restarts_and_keeps_consuming(
    app: SimpleNamespace, start_consumer: Any, worker_type: str
) -> None:
    consumer = start_consumer(app.storage, "-k", worker_type)
    assert value_of(app.tasks.add(1, 1)) == 2
    consumer.send(signal.SIGHUP)
    consumer.wait_for_log("Huey consumer started", count=2)
    log = consumer.log()
    assert "Received SIGHUP: restarting" in log
    assert f"PID {consumer.pid}" in log.rsplit("Huey consumer started", 1)[1]  # re-exec'd
    assert value_of(app.tasks.add(2, 3)) == 5
    # The first worker shut down cleanly and a new one started after the restart.
    assert len(consumer.events("shutdown")) == 1
    assert len(consumer.events("startup")) == 2
    consumer.send(signal.SIGINT)
    assert consumer.wait_exit() == 0
    assert len(consumer.events("shutdown")) == 2
