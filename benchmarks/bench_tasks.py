"""The task module shared by every benchmark process (producer and consumer).

It is imported under the same module name (``bench_tasks``) by the scenario
script and by ``huey_consumer bench_tasks.huey``, so the task names match on
both sides.  It must only use the public API common to upstream huey 3.5.4 and
huey-ng, because the very same file runs under either implementation.

The storage is chosen by environment variables set by ``benchmarks/run.py``:

``BENCH_BACKEND``
    ``redis``, ``sqlite`` or ``postgres``.
``BENCH_NAME``
    The queue name, unique per run so runs never see each other's data.
``BENCH_REDIS_URL`` / ``BENCH_PG_DSN`` / ``BENCH_SQLITE_FILE``
    Where the store lives.
``BENCH_MARKER``
    A file the ``on_startup`` hook appends ``<pid> <unix time>`` to, once per
    worker, so the harness can tell when the consumer is ready to work.
"""

from __future__ import annotations

import os
import time

from huey import PostgresHuey, RedisHuey, SqliteHuey

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
DEFAULT_PG_DSN = "postgresql://127.0.0.1:5432/test"


def _make_huey() -> RedisHuey | SqliteHuey | PostgresHuey:
    """Build the Huey instance with each implementation's default settings."""
    backend = os.environ.get("BENCH_BACKEND", "sqlite")
    name = os.environ.get("BENCH_NAME", "bench")
    if backend == "redis":
        return RedisHuey(name, url=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL))
    if backend == "sqlite":
        return SqliteHuey(name, filename=os.environ.get("BENCH_SQLITE_FILE", "bench.db"))
    if backend == "postgres":
        return PostgresHuey(name, dsn=os.environ.get("BENCH_PG_DSN", DEFAULT_PG_DSN))
    raise ValueError(f"BENCH_BACKEND must be redis, sqlite or postgres, not {backend!r}")


huey = _make_huey()


@huey.task()
def noop(n: int = 0) -> int:
    """Do nothing useful; return a value so that a result is stored for every task."""
    return n


@huey.on_startup()
def _mark_ready() -> None:
    """Record that a worker is up: the harness times the drain from the first mark."""
    marker = os.environ.get("BENCH_MARKER")
    if marker:
        # One short append per worker; O_APPEND keeps lines whole across processes.
        with open(marker, "a") as fh:
            fh.write(f"{os.getpid()} {time.time():.6f}\n")
