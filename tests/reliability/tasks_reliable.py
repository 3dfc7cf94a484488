"""Tasks for the reliability tests; consumer subprocesses import ``tasks_reliable.huey``.

Configured from the environment (both the test process and its consumers read it):
RELIABLE_BACKEND (sqlite | file | redis | postgres), RELIABLE_TARGET (file, directory, url
or dsn), RELIABLE_NAME (queue name), RELIABLE_EVENTS (file the tasks append events to),
RELIABLE_VISIBILITY (lease seconds). Test-only knobs: RELIABLE_PERIOD (periodic tick width
in seconds instead of 60), RELIABLE_LEADER_LEASE (scheduler leader lease seconds).
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import huey as huey_module
from huey import _workers, crontab
from huey import signals as S

BACKEND = os.environ.get("RELIABLE_BACKEND", "sqlite")
TARGET = os.environ.get("RELIABLE_TARGET", "reliable.db")
NAME = os.environ.get("RELIABLE_NAME", "reliable")
EVENTS = os.environ.get("RELIABLE_EVENTS")
OPTIONS: dict[str, Any] = {"visibility_timeout": float(os.environ.get("RELIABLE_VISIBILITY", 1))}

if BACKEND == "sqlite":
    huey = huey_module.SqliteHuey(NAME, filename=TARGET, **OPTIONS)
elif BACKEND == "file":
    huey = huey_module.FileHuey(NAME, path=TARGET, **OPTIONS)
elif BACKEND == "redis":
    huey = huey_module.RedisHuey(NAME, url=TARGET, **OPTIONS)
elif BACKEND == "postgres":
    huey = huey_module.PostgresHuey(NAME, dsn=TARGET, **OPTIONS)
else:  # pragma: no cover - a wrong test parameter
    raise SystemExit(f"unknown RELIABLE_BACKEND {BACKEND!r}")

PERIOD = float(os.environ.get("RELIABLE_PERIOD", 60))
if "RELIABLE_PERIOD" in os.environ:
    _workers.Scheduler.periodic_task_seconds = PERIOD
if "RELIABLE_LEADER_LEASE" in os.environ:
    _workers.Scheduler.leader_lease_seconds = float(os.environ["RELIABLE_LEADER_LEASE"])


def record(*parts: Any) -> None:
    """Append one event line (one write, so lines from many processes never interleave)."""
    if EVENTS:
        line = (" ".join(str(part) for part in parts) + "\n").encode()
        fd = os.open(EVENTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


@huey.task()
def job(i: int, duration: float = 0.0) -> int:
    """A unit of work that records its completion."""
    if duration:
        time.sleep(duration)
    record("done", i)
    return i


@huey.task()
def poison() -> None:
    """Kills the worker process that runs it, every time."""
    record("poison", os.getpid())
    os.kill(os.getpid(), signal.SIGKILL)


@huey.task()
@huey.lock_task("crash-once")
def crash_once_holding_lock(marker: str) -> str:
    """Dies (SIGKILL) holding its lock on the first run; succeeds on the next."""
    if not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    record("locked-done", os.getpid())
    return "finished"


@huey.task()
def long_task(seconds: float) -> str:
    """Runs longer than the visibility timeout."""
    record("start", os.getpid())
    time.sleep(seconds)
    record("end", os.getpid())
    return "finished"


if os.environ.get("RELIABLE_PERIODIC"):

    @huey.periodic_task(crontab())
    def tick() -> None:
        record("tick-run", os.getpid())

    @huey.signal(S.SIGNAL_ENQUEUED)
    def on_enqueued(signal_name: str, task: Any) -> None:
        if task.name == "tick":
            record("tick-enqueued", os.getpid(), int(time.time() // PERIOD))


if os.environ.get("RELIABLE_DIE_IN_MOVE"):
    # Test knob: the consumer dies (SIGKILL) right after taking due tasks out of the
    # schedule and before they reach the queue - the window a crash must not lose.
    _read_schedule_leased = huey.storage.read_schedule_leased

    def _read_schedule_leased_then_die(ts: Any, lease_seconds: float) -> Any:
        taken = _read_schedule_leased(ts, lease_seconds)
        if taken:
            record("schedule-taken", len(taken))
            os.kill(os.getpid(), signal.SIGKILL)
        return taken

    huey.storage.read_schedule_leased = _read_schedule_leased_then_die  # type: ignore[method-assign]
