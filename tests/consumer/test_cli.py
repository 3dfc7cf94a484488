"""The ``huey run`` command and the logging flags, on real consumer processes."""

from __future__ import annotations

import re
import signal
from types import SimpleNamespace
from typing import Any

import pytest

from tests.consumer.conftest import HUEY_RUN, value_of


@pytest.mark.timeout(60)
def test_huey_run_with_simple_log_format(app: SimpleNamespace, start_consumer: Any) -> None:
    result = app.tasks.add(20, 22)
    consumer = start_consumer(app.storage, "-S", "-w", "2", command=HUEY_RUN)
    assert value_of(result) == 42
    consumer.send(signal.SIGINT)
    assert consumer.wait_exit() == 0
    lines = consumer.log().splitlines()
    assert any("Huey consumer started with 2 thread worker(s)" in line for line in lines)
    # -S: "HH:MM:SS message", no level or logger name; -v: DEBUG lines are there too.
    assert all(re.match(r"\d\d:\d\d:\d\d ", line) for line in lines if not line.startswith("+"))
    assert not any("INFO:" in line for line in lines)
    assert any(f"Executing tasks_basic.add: {result.id}" in line for line in lines)
    assert any("Checking periodic tasks" in line for line in lines)  # a DEBUG line


@pytest.mark.timeout(60)
@pytest.mark.parametrize("storage", ["sqlite"])
def test_quiet_logs_warnings_only(app: SimpleNamespace, start_consumer: Any) -> None:
    app.huey.put_if_empty(f"{app.huey.name}.lock.stale", "1")
    result = app.tasks.add(1, 2)
    consumer = start_consumer(app.storage, "-q", "-L", "stale")
    assert value_of(result) == 3
    consumer.send(signal.SIGINT)
    assert consumer.wait_exit() == 0
    log = consumer.log()
    assert "WARNING:huey.consumer:MainThread:Found stale locks: stale" in log
    assert "INFO" not in log and "DEBUG" not in log
    assert consumer.output() == ""  # with -l nothing goes to stderr
