"""The ``storage`` fixture: one fresh storage per test, parametrised over every backend.

Each backend registers a factory in ``FACTORIES``; the contract suite
(``test_contract.py``) runs once per entry. A storage is flushed at teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from huey.storage import BaseStorage

Factory = Callable[[pytest.FixtureRequest, str, Path], BaseStorage]


def _memory(request: pytest.FixtureRequest, name: str, tmp: Path) -> BaseStorage:
    from huey.storage import MemoryStorage

    return MemoryStorage(name)


def _file(request: pytest.FixtureRequest, name: str, tmp: Path) -> BaseStorage:
    from huey.storage import FileStorage

    return FileStorage(name, path=str(tmp / "files"))


def _sqlite(request: pytest.FixtureRequest, name: str, tmp: Path) -> BaseStorage:
    from huey.storage import SqliteStorage

    return SqliteStorage(name, filename=str(tmp / "huey.db"), read_timeout=0.2)


def _redis_factory(class_name: str) -> Factory:
    def factory(request: pytest.FixtureRequest, name: str, tmp: Path) -> BaseStorage:
        import huey.storage

        url = request.getfixturevalue("redis_url")
        cls: Any = getattr(huey.storage, class_name)
        return cls(name, url=url)  # type: ignore[no-any-return]

    return factory


def _postgres(request: pytest.FixtureRequest, name: str, tmp: Path) -> BaseStorage:
    from huey.storage import PostgresStorage

    return PostgresStorage(name, dsn=request.getfixturevalue("pg_dsn"))


FACTORIES: dict[str, Factory] = {
    "memory": _memory,
    "file": _file,
    "sqlite": _sqlite,
    "redis": _redis_factory("RedisStorage"),
    "redis_expire": _redis_factory("RedisExpireStorage"),
    "priority_redis": _redis_factory("PriorityRedisStorage"),
    "priority_redis_expire": _redis_factory("PriorityRedisExpireStorage"),
    "postgres": _postgres,
}


@pytest.fixture(params=list(FACTORIES))
def storage(
    request: pytest.FixtureRequest, unique_name: str, tmp_path: Path
) -> Iterator[BaseStorage]:
    """A fresh, empty storage of each backend kind."""
    store = FACTORIES[request.param](request, unique_name, tmp_path)
    store.flush_all()
    try:
        yield store
    finally:
        store.flush_all()
        store.close()


@pytest.fixture
def client(redis_url: str, unique_name: str) -> Iterator[Any]:
    """A raw Redis client; deletes every key that mentions the test's queue name afterwards."""
    import redis

    conn = redis.Redis.from_url(redis_url)
    yield conn
    keys = list(conn.scan_iter(match=f"*{unique_name}*"))
    if keys:
        conn.delete(*keys)
    conn.close()


@pytest.fixture
def admin(pg_dsn: str) -> Iterator[Any]:
    """A raw autocommit PostgreSQL connection."""
    import psycopg

    conn = psycopg.connect(pg_dsn, autocommit=True)
    yield conn
    conn.close()
