"""Fixtures for reliability tests: a store on each backend and consumer processes on it."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from huey import _workers
from tests.consumer.conftest import ConsumerProcess

HERE = Path(__file__).resolve().parent
SCHEDULER_KNOBS = ("periodic_task_seconds", "leader_lease_seconds")
FAST = ("-d", "0.05", "-m", "0.2", "-c", "1", "-T", "1")


class Store:
    """One backend's settings, shared by the test process and its consumers."""

    def __init__(self, backend: str, target: str, workdir: Path) -> None:
        self.backend = backend
        self.events = workdir / "events.txt"
        self.env = {
            "RELIABLE_BACKEND": backend,
            "RELIABLE_TARGET": target,
            "RELIABLE_NAME": "rel" + uuid.uuid4().hex[:10],
            "RELIABLE_EVENTS": str(self.events),
            "RELIABLE_VISIBILITY": "1",
        }
        self.workdir = workdir

    def tasks(self, **extra: str) -> Any:
        """The task module, imported in this process with this store's settings."""
        os.environ.update({**self.env, **extra})
        if str(HERE) not in sys.path:
            sys.path.insert(0, str(HERE))
        sys.modules.pop("tasks_reliable", None)
        import tasks_reliable

        return tasks_reliable

    def event_rows(self, kind: str) -> list[list[str]]:
        if not self.events.exists():
            return []
        rows = [line.split() for line in self.events.read_text().splitlines() if line]
        return [row[1:] for row in rows if row and row[0] == kind]


@pytest.fixture(autouse=True)
def restore_scheduler_knobs() -> Iterator[None]:
    """Importing ``tasks_reliable`` in the test process applies its test knobs to the
    Scheduler class; undo them so later tests see the defaults."""
    saved = {name: _workers.Scheduler.__dict__[name] for name in SCHEDULER_KNOBS}
    yield
    for name, value in saved.items():
        setattr(_workers.Scheduler, name, value)


@pytest.fixture
def store_for(tmp_path: Path, request: pytest.FixtureRequest) -> Callable[[str], Store]:
    def build(backend: str) -> Store:
        if backend == "redis":
            target = request.getfixturevalue("redis_url")
        elif backend == "postgres":
            target = request.getfixturevalue("pg_dsn")
        elif backend == "file":
            target = str(tmp_path / "files")
        else:
            target = str(tmp_path / "reliable.db")
        return Store(backend, target, tmp_path)

    return build


@pytest.fixture
def start_consumer(tmp_path: Path) -> Iterator[Callable[..., ConsumerProcess]]:
    """Start ``huey_consumer tasks_reliable.huey`` on a store; killed at teardown."""
    started: list[ConsumerProcess] = []
    saved = dict(os.environ)

    def start(store: Store, *args: str, name: str = "c", **extra_env: str) -> ConsumerProcess:
        workdir = tmp_path / f"consumer-{name}-{len(started)}"
        workdir.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("RELIABLE_")}
        env.update(store.env, **extra_env)
        env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
        argv = [sys.executable, "-m", "huey.bin.huey_consumer", "tasks_reliable.huey", "-v"]
        argv += ["-l", str(workdir / "consumer.log"), *FAST, *args]
        process = ConsumerProcess(argv, env, workdir)
        started.append(process)
        return process

    yield start
    for process in started:
        process.cleanup()
    os.environ.clear()
    os.environ.update(saved)
    sys.modules.pop("tasks_reliable", None)
