"""huey-ng: a small, fast task queue, importable as ``huey``.

A clean-room implementation of huey's public API (wire-compatible with huey 3.5) that adds
at-least-once delivery. ``import huey`` loads only the standard library.
"""

from __future__ import annotations

__version__ = "0.1.0"
__author__ = "Charles Leifer"  # upstream's value, kept for compatibility
__license__ = "MIT"

from huey.api import (
    BlackHoleHuey,
    CySqliteHuey,
    FileHuey,
    Huey,
    MemoryHuey,
    PostgresHuey,
    PriorityRedisExpireHuey,
    PriorityRedisHuey,
    RedisExpireHuey,
    RedisHuey,
    SqliteHuey,
    chord,
    crontab,
    group,
)
from huey.exceptions import CancelExecution, RetryTask
from huey.utils import SKIPPED, Error

__all__ = [
    "SKIPPED",
    "BlackHoleHuey",
    "CancelExecution",
    "CySqliteHuey",
    "Error",
    "FileHuey",
    "Huey",
    "MemoryHuey",
    "PostgresHuey",
    "PriorityRedisExpireHuey",
    "PriorityRedisHuey",
    "RedisExpireHuey",
    "RedisHuey",
    "RetryTask",
    "SqliteHuey",
    "chord",
    "crontab",
    "group",
]
