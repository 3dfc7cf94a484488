"""Storage backends. Every class upstream's ``huey.storage`` exposes is importable here.

Backends that need a driver (redis, psycopg) import it lazily and raise
``ConfigurationError`` naming the extra to install when it is missing.
"""

from __future__ import annotations

from huey.storage._base import BaseStorage, DeadLetter, Delivery
from huey.storage._file import FileStorage
from huey.storage._memory import BlackHoleStorage, MemoryStorage
from huey.storage._postgres import PostgresStorage
from huey.storage._redis import (
    SCHEDULE_POP_LUA,
    PriorityRedisExpireStorage,
    PriorityRedisStorage,
    RedisExpireStorage,
    RedisPriorityQueue,
    RedisStorage,
)
from huey.storage._sqlite import BaseSqlStorage, CySqliteStorage, SqliteStorage

__all__ = [
    "BaseStorage",
    "BaseSqlStorage",
    "BlackHoleStorage",
    "CySqliteStorage",
    "DeadLetter",
    "Delivery",
    "FileStorage",
    "MemoryStorage",
    "PostgresStorage",
    "PriorityRedisExpireStorage",
    "PriorityRedisStorage",
    "RedisExpireStorage",
    "RedisPriorityQueue",
    "RedisStorage",
    "SCHEDULE_POP_LUA",
    "SqliteStorage",
]
