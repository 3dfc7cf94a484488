"""Tasks for the demo (examples/demo.py): a SqliteHuey whose file comes from HUEY_DEMO_DB.

The consumer process imports this module as ``demo_tasks.huey``; demo.py imports it too, to
enqueue the tasks. Both sides then share the SQLite file.
"""

from __future__ import annotations

import os
import time
from typing import Any

from huey import SqliteHuey

# store_intermediate_errors=False: a retried task's result is its final outcome, never the
# error of an attempt that is retried.
huey = SqliteHuey(
    "demo",
    filename=os.environ.get("HUEY_DEMO_DB", "demo.db"),
    store_intermediate_errors=False,
)


@huey.task()
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@huey.task()
def multiply(a: int, b: int) -> int:
    """Multiply two numbers (the second stage of the pipeline)."""
    return a * b


@huey.task()
def slow_square(n: int) -> int:
    """Square ``n`` after a short nap, so the two workers visibly share the map."""
    time.sleep(0.2)
    return n * n


@huey.task(retries=2, context=True)
def flaky(task: Any = None) -> str:
    """Fail on the first two attempts, succeed on the last one."""
    if task.retries > 0:
        raise RuntimeError(f"simulated failure ({task.retries} retries left)")
    return "succeeded on the third attempt"


@huey.task()
def reminder(message: str) -> str:
    """A task the demo schedules two seconds ahead."""
    return f"{message} (ran at {time.strftime('%H:%M:%S')})"
