"""Tasks shared by the consumer tests.

The consumer subprocess imports this module as ``tasks_basic.huey``; it builds its Huey from
the environment (``HUEY_TEST_STORAGE``: sqlite or file, ``HUEY_TEST_PATH``: a directory).
The test process calls :func:`create_huey` and :func:`register` with the same values, so both
sides share one store and the same task names.

Workers report what happened to them by appending lines to ``HUEY_TEST_EVENTS`` (a file):
``startup``/``shutdown`` from the hooks, ``timeout``/``interrupted`` from signal receivers,
``start``/``end`` from the ``slow`` task.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import threading
import time
import uuid
from types import SimpleNamespace
from typing import Any

from huey import FileHuey, PostgresHuey, RedisHuey, SqliteHuey, crontab
from huey import signals as S
from huey.api import Huey

#: identifies the worker (thread, greenlet or process) a task runs in; set by on_startup
_worker = threading.local()


def record(*parts: Any) -> None:
    """Append one line to the events file (no-op outside a consumer started by a test)."""
    path = os.environ.get("HUEY_TEST_EVENTS")
    if path:
        line = " ".join(str(part) for part in parts) + "\n"
        with open(path, "a") as fh:
            fh.write(line)


def create_huey(storage: str, path: str) -> Huey:
    """A SqliteHuey or FileHuey storing under ``path``, or a RedisHuey / PostgresHuey on the
    test servers with a queue named after ``path``.

    Errors of attempts that will be retried are not stored, so a test reading a retried
    task's result sees its final outcome, never an intermediate error.
    """
    options: dict[str, Any] = {"store_intermediate_errors": False}
    if storage == "sqlite":
        return SqliteHuey("consumer-tests", filename=os.path.join(path, "huey.db"), **options)
    if storage == "file":
        return FileHuey("consumer-tests", path=os.path.join(path, "files"), **options)
    # Servers are shared: a queue name derived from the test's directory keeps tests apart.
    name = "ct" + hashlib.md5(path.encode()).hexdigest()[:12]
    if storage == "redis":
        url = os.environ.get("HUEY_REDIS_URL", "redis://127.0.0.1:6379/15")
        return RedisHuey(name, url=url, **options)
    if storage == "postgres":
        dsn = os.environ.get("HUEY_PG_DSN", "postgresql://127.0.0.1:5432/test")
        return PostgresHuey(name, dsn=dsn, **options)
    raise ValueError(f"unknown storage {storage!r}")


def register(huey: Huey, periodic: bool = False) -> SimpleNamespace:
    """Register the test tasks, hooks and signal receivers on ``huey``."""
    tasks = _register_tasks(huey)
    _register_hooks(huey)
    if periodic:
        tasks.ticker = _register_periodic(huey)
    return tasks


def _register_tasks(huey: Huey) -> SimpleNamespace:

    @huey.task()
    def add(a: int, b: int) -> int:
        return a + b

    @huey.task()
    def mul(a: int, b: int) -> int:
        return a * b

    @huey.task()
    def whoami() -> str:
        return f"{os.getpid()}:{getattr(_worker, 'token', None)}"

    @huey.task()
    def run_time() -> float:
        return time.time()

    @huey.task()
    def slow(seconds: float, tag: str) -> str:
        record("start", tag, os.getpid())
        time.sleep(seconds)
        record("end", tag)
        return tag

    @huey.task(timeout=1)
    def sleepy(seconds: float) -> str:
        time.sleep(seconds)
        return "woke up"

    @huey.task(retries=2, context=True)
    def flaky(task: Any = None) -> str:
        if task.retries > 0:
            raise ValueError(f"failing while {task.retries} retries are left")
        return "finally"

    @huey.task()
    @huey.lock_task("deco-lock")
    def locked() -> str:
        return "locked ran"

    return SimpleNamespace(
        add=add,
        mul=mul,
        whoami=whoami,
        run_time=run_time,
        slow=slow,
        sleepy=sleepy,
        flaky=flaky,
        locked=locked,
    )


def _register_hooks(huey: Huey) -> None:
    @huey.on_startup()
    def startup_hook() -> None:
        _worker.token = uuid.uuid4().hex
        record("startup", os.getpid(), _worker.token)

    @huey.on_shutdown()
    def shutdown_hook() -> None:
        record("shutdown", os.getpid(), getattr(_worker, "token", None))

    @huey.signal(S.SIGNAL_TIMEOUT)
    def on_timeout(signal: str, task: Any, *args: Any) -> None:
        record("timeout", task.id)

    @huey.signal(S.SIGNAL_INTERRUPTED)
    def on_interrupted(signal: str, task: Any, *args: Any) -> None:
        record("interrupted", task.id)


def _register_periodic(huey: Huey) -> Any:
    def every_even_minute(dt: datetime.datetime) -> bool:
        record("check", dt.isoformat())
        return bool(crontab(minute="*/2")(dt))

    @huey.periodic_task(every_even_minute)
    def ticker() -> None:
        record("tick")

    return ticker


def _install_fake_clock() -> None:
    """Scheduler clock for the periodic test: one fake minute per real second, mid-minute
    seconds (to check truncation), and a 30-minute jump after HUEY_TEST_JUMP_AFTER seconds."""
    from huey.consumer import Scheduler

    base = datetime.datetime(2024, 1, 1, 12, 0, 17)
    start = int(time.time())
    jump_after = float(os.environ.get("HUEY_TEST_JUMP_AFTER", "1e9"))

    def fake_now() -> datetime.datetime:
        elapsed = int(time.time()) - start
        minutes = elapsed + (30 if elapsed >= jump_after else 0)
        return base + datetime.timedelta(minutes=minutes)

    Scheduler._now = staticmethod(fake_now)  # type: ignore[assignment]


if os.environ.get("HUEY_TEST_PATH"):
    huey = create_huey(os.environ["HUEY_TEST_STORAGE"], os.environ["HUEY_TEST_PATH"])
    tasks = register(huey, periodic=bool(os.environ.get("HUEY_TEST_PERIODIC")))
    if os.environ.get("HUEY_TEST_FAKE_CLOCK"):
        _install_fake_clock()
