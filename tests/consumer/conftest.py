"""Fixtures that start real consumer processes (``python -m huey.bin.huey_consumer``).

Each consumer runs in its own session (process group) so a test can signal it like a
terminal or a supervisor would, and teardown can SIGKILL whatever is left of it. Its log
goes to a file (``-v -l``) that tests read; workers append events to another file (see
``tasks_basic``).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

TESTS_DIR = Path(__file__).resolve().parent
# The consumer subprocess imports the task module as top-level ``tasks_basic`` (its
# PYTHONPATH holds this directory); the test process must use the same module name, since
# a task's name includes its module.
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

import tasks_basic  # noqa: E402

CONSUMER = ("-m", "huey.bin.huey_consumer")
HUEY_RUN = ("-m", "huey.cli", "run")
# Fast polling so tests do not wait on the (10 s) default poll backoff.
FAST = ("-d", "0.05", "-m", "0.2")


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll ``predicate`` every 50 ms until it is truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


class ConsumerProcess:
    """A consumer subprocess plus its log and events files."""

    def __init__(self, argv: list[str], env: dict[str, str], workdir: Path) -> None:
        self.log_path = workdir / "consumer.log"
        self.events_path = workdir / "events.txt"
        self.output_path = workdir / "output.txt"
        env = {**env, "HUEY_TEST_EVENTS": str(self.events_path)}
        self._output = open(self.output_path, "ab")
        self.argv = argv
        self.proc = subprocess.Popen(
            argv,
            env=env,
            cwd=str(workdir),
            stdout=self._output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def output(self) -> str:
        return self.output_path.read_text()

    def events(self, kind: str | None = None) -> list[list[str]]:
        if not self.events_path.exists():
            return []
        rows = [line.split() for line in self.events_path.read_text().splitlines() if line]
        return [row for row in rows if kind is None or row[0] == kind]

    def wait_for_log(self, pattern: str, count: int = 1, timeout: float = 20.0) -> str:
        regex = re.compile(pattern)
        wait_until(
            lambda: len(regex.findall(self.log())) >= count,
            timeout,
            f"{count} log line(s) matching {pattern!r}; log:\n{self.log()[-3000:]}",
        )
        return self.log()

    def wait_for_events(self, kind: str, count: int = 1, timeout: float = 20.0) -> list[list[str]]:
        wait_until(
            lambda: len(self.events(kind)) >= count,
            timeout,
            f"{count} {kind!r} event(s); events: {self.events()}; log:\n{self.log()[-3000:]}",
        )
        return self.events(kind)

    def send(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = 20.0) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"consumer did not exit within {timeout}s; log:\n{self.log()[-3000:]}"
            )

    def cleanup(self) -> None:
        # The consumer and its workers share the session we created: kill that group only.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        self._output.close()


@pytest.fixture(params=["sqlite", "file", "redis", "postgres"])
def storage(request: pytest.FixtureRequest) -> str:
    """The storage kinds the end-to-end worker tests run on (servers: skip or fail in CI
    when they are down, as everywhere)."""
    if request.param == "redis":
        request.getfixturevalue("redis_url")
    elif request.param == "postgres":
        request.getfixturevalue("pg_dsn")
    return str(request.param)


@pytest.fixture
def consumer_env(tmp_path: Path) -> Callable[..., dict[str, str]]:
    """Build the environment of a consumer subprocess (explicit PYTHONPATH, test knobs)."""

    def build(storage: str, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(TESTS_DIR)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        )
        for key in [key for key in env if key.startswith("HUEY_TEST_")]:
            del env[key]
        env.update(HUEY_TEST_STORAGE=storage, HUEY_TEST_PATH=str(tmp_path), **extra)
        return env

    return build


@pytest.fixture
def start_consumer(
    tmp_path: Path, consumer_env: Callable[..., dict[str, str]]
) -> Iterator[Callable[..., ConsumerProcess]]:
    """Start ``python -m huey.bin.huey_consumer tasks_basic.huey -v -l <log> *args``."""
    started: list[ConsumerProcess] = []

    def start(
        storage: str,
        *args: str,
        command: tuple[str, ...] = CONSUMER,
        fast: bool = True,
        env: dict[str, str] | None = None,
    ) -> ConsumerProcess:
        environment = consumer_env(storage, **(env or {}))
        argv = [sys.executable, *command, "tasks_basic.huey", "-v", "-l"]
        argv += [str(tmp_path / "consumer.log"), *(FAST if fast else ()), *args]
        process = ConsumerProcess(argv, environment, tmp_path)
        started.append(process)
        return process

    yield start
    for process in started:
        process.cleanup()


@pytest.fixture
def app(tmp_path: Path, storage: str) -> Iterator[SimpleNamespace]:
    """The test process's view of the store: ``app.huey`` and ``app.tasks``."""
    huey = tasks_basic.create_huey(storage, str(tmp_path))
    yield SimpleNamespace(huey=huey, tasks=tasks_basic.register(huey), storage=storage)
    if storage in ("redis", "postgres"):
        huey.flush()  # a shared server: leave nothing behind


def value_of(result: Any, timeout: float = 30.0) -> Any:
    """Block for a Result / ResultGroup value, polling every 0.1 s at most."""
    return result.get(blocking=True, timeout=timeout, max_delay=0.1)
