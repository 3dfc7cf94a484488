"""Low-latency waits on Redis and PostgreSQL (real servers).

- Idle worker threads of one process wait on the server one at a time (no herd), and every
  message is still taken exactly once.
- ``wait_and_read`` (what a blocking ``Result.get`` uses) is woken by the result's
  notification and reads in the same round trip, still finds results stored without a
  notification, honours its timeout, and recovers from a lost script cache.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from huey import PostgresHuey, RedisHuey
from huey.constants import EmptyData
from huey.exceptions import ResultTimeout
from huey.storage._postgres import PostgresStorage
from huey.storage._redis import RedisExpireStorage, RedisStorage
from huey.storage._redis_leases import _LUA_HELPERS, _TAKE_MANY_LUA

WAIT = 10.0  # generous bound on waits that should end at once
THREADS = 4


def later(delay: float, action: Callable[[], Any]) -> threading.Thread:
    """Run ``action`` in a thread after ``delay`` seconds."""

    def run() -> None:
        time.sleep(delay)
        action()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def take_in_threads(take: Callable[[], list[Any]]) -> tuple[list[threading.Thread], list[Any]]:
    """Start THREADS threads that each call ``take`` once; their findings go in one list."""
    found: list[Any] = []
    lock = threading.Lock()

    def run() -> None:
        taken = take()
        with lock:
            found.extend(taken)

    threads = [threading.Thread(target=run) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    return threads, found


def most_seen(count: Callable[[], int], seconds: float) -> int:
    """The largest value of ``count()`` sampled for ``seconds``, once it is positive."""
    deadline = time.monotonic() + WAIT
    while count() == 0:
        assert time.monotonic() < deadline, "nobody waits on the server"
        time.sleep(0.01)
    most = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        most = max(most, count())
        time.sleep(0.01)
    return most


# -- Redis ------------------------------------------------------------------------------------
@pytest.fixture
def redis_storage(redis_url: str, unique_name: str) -> Iterator[RedisStorage]:
    storage = RedisStorage(unique_name, url=redis_url, read_timeout=2, client_name=unique_name)
    yield storage
    storage.flush_all()
    storage.close()


def blocked_in_blmove(storage: RedisStorage, client_name: str) -> int:
    clients = storage.conn.client_list()
    return sum(
        1
        for c in clients
        if c.get("name") == client_name and c.get("cmd") == "blmove" and "b" in c.get("flags", "")
    )


def test_redis_idle_threads_block_on_the_server_one_at_a_time(
    redis_storage: RedisStorage, unique_name: str
) -> None:
    threads, found = take_in_threads(lambda: redis_storage.dequeue_leased_many(30, 2))
    assert most_seen(lambda: blocked_in_blmove(redis_storage, unique_name), 0.3) == 1
    for i in range(THREADS):
        redis_storage.enqueue(f"m{i}".encode())
    for thread in threads:
        thread.join(WAIT)
    assert sorted(d.data for d in found) == [f"m{i}".encode() for i in range(THREADS)]
    assert redis_storage.queue_size() == 0


def test_redis_waiting_take_recovers_from_a_lost_script(redis_storage: RedisStorage) -> None:
    # A script the server never saw stands for a script cache lost in a restart.
    body = _LUA_HELPERS + _TAKE_MANY_LUA + f"-- {uuid.uuid4().hex}\n"
    redis_storage._take_many_lua = redis_storage.conn.register_script(body)
    redis_storage.dequeue_leased_many(30, 1)  # empty: probes BLMOVE
    later(0.2, lambda: redis_storage.enqueue(b"m"))
    deadline = time.monotonic() + WAIT
    taken = []
    while not taken and time.monotonic() < deadline:
        taken = redis_storage.dequeue_leased_many(30, 1)
    assert [d.data for d in taken] == [b"m"]


def test_redis_wait_and_read_is_woken_and_pops(redis_storage: RedisStorage) -> None:
    writer = later(0.2, lambda: redis_storage.put_data("k", b"v", is_result=True))
    assert redis_storage.wait_and_read("k", timeout=WAIT) == b"v"
    writer.join(WAIT)
    assert redis_storage.peek_data("k") is EmptyData
    assert not redis_storage.conn.exists(f"huey.notify.{redis_storage.name}.k")


def test_redis_wait_and_read_peek_keeps_the_value(redis_storage: RedisStorage) -> None:
    writer = later(0.2, lambda: redis_storage.put_data("k", b"v", is_result=True))
    assert redis_storage.wait_and_read("k", timeout=WAIT, peek=True) == b"v"
    writer.join(WAIT)
    assert redis_storage.peek_data("k") == b"v"


def test_redis_wait_and_read_finds_unnotified_results(
    redis_storage: RedisStorage, redis_url: str
) -> None:
    quiet = RedisStorage(redis_storage.name, url=redis_url, notify_result=False)
    writer = later(0.2, lambda: quiet.put_data("k", b"v", is_result=True))
    assert redis_storage.wait_and_read("k", timeout=WAIT, max_delay=0.1) == b"v"
    writer.join(WAIT)
    quiet.close()


def test_redis_wait_and_read_times_out(redis_storage: RedisStorage) -> None:
    start = time.monotonic()
    assert redis_storage.wait_and_read("missing", timeout=0.2) is EmptyData
    assert redis_storage.wait_and_read("missing", timeout=0) is EmptyData
    assert time.monotonic() - start < WAIT


def test_redis_wait_and_read_recovers_from_a_lost_script(redis_storage: RedisStorage) -> None:
    body = f"return redis.call('GET', KEYS[1]) -- {uuid.uuid4().hex}"
    redis_storage._pop_lua = redis_storage.conn.register_script(body)
    writer = later(0.2, lambda: redis_storage.put_data("k", b"v", is_result=True))
    assert redis_storage.wait_and_read("k", timeout=WAIT) == b"v"
    writer.join(WAIT)
    assert redis_storage.peek_data("k") is EmptyData


def test_redis_expire_storage_reads_without_deleting(redis_url: str, unique_name: str) -> None:
    storage = RedisExpireStorage(unique_name, url=redis_url)
    try:
        writer = later(0.2, lambda: storage.put_data("k", b"v", is_result=True))
        assert storage.wait_and_read("k", timeout=WAIT) == b"v"
        writer.join(WAIT)
        assert storage.peek_data("k") == b"v"  # results expire instead
    finally:
        storage.flush_all()
        storage.close()


@pytest.mark.parametrize("backend", ["redis", "postgres"])
@pytest.mark.parametrize("preserve", [True, False])
def test_blocking_get_of_a_result(
    backend: str, preserve: bool, request: pytest.FixtureRequest, unique_name: str
) -> None:
    if backend == "redis":
        huey: Any = RedisHuey(unique_name, url=request.getfixturevalue("redis_url"))
    else:
        huey = PostgresHuey(unique_name, dsn=request.getfixturevalue("pg_dsn"))

    @huey.task()
    def add(a: int, b: int) -> int:
        return a + b

    try:
        result = add(1, 2)
        later(0.2, lambda: huey.put_result(result.id, 3))
        assert result.get(blocking=True, timeout=WAIT, preserve=preserve) == 3
        assert (huey.storage.peek_data(result.id) is not EmptyData) is preserve
        other = add(2, 2)
        with pytest.raises(ResultTimeout):
            other.get(blocking=True, timeout=0.2)
    finally:
        huey.storage.flush_all()
        huey.storage.close()


# -- PostgreSQL -------------------------------------------------------------------------------
@pytest.fixture
def pg_storage(pg_dsn: str, unique_name: str) -> Iterator[PostgresStorage]:
    storage = PostgresStorage(unique_name, dsn=pg_dsn, read_timeout=2)
    yield storage
    storage.flush_all()
    storage.close()


def listening_sessions(storage: PostgresStorage, channel: str) -> int:
    row = storage._fetchone(
        "select count(*) from pg_stat_activity where query ilike %s and state = 'idle'",
        (f'%LISTEN "{channel}"%',),
    )
    return int(row[0])


def test_postgres_idle_threads_listen_one_at_a_time(pg_storage: PostgresStorage) -> None:
    pg_storage.dequeue_leased_many(30, 1)  # creates the tables before the threads race
    threads, found = take_in_threads(lambda: pg_storage.dequeue_leased_many(30, 2))
    channel = pg_storage.queue_channel
    assert most_seen(lambda: listening_sessions(pg_storage, channel), 0.3) == 1
    for i in range(THREADS):
        pg_storage.enqueue(f"m{i}".encode())
    for thread in threads:
        thread.join(WAIT)
    # Threads that found nothing within read_timeout return empty; the rest is still queued.
    leftover = []
    while delivery := pg_storage.dequeue_leased(30):
        leftover.append(delivery)
    assert sorted(d.data for d in found + leftover) == [f"m{i}".encode() for i in range(THREADS)]


def listened(storage: PostgresStorage) -> list[str]:
    rows = storage._listener().execute("select pg_listening_channels()").fetchall()
    return [row[0] for row in rows]


def test_postgres_wait_and_read_is_woken_and_pops(pg_storage: PostgresStorage) -> None:
    writer = later(0.2, lambda: pg_storage.put_data("k", b"v", is_result=True))
    assert pg_storage.wait_and_read("k", timeout=WAIT) == b"v"
    writer.join(WAIT)
    assert pg_storage.peek_data("k") is EmptyData
    assert listened(pg_storage) == []  # nothing piles up on an idle listener


def test_postgres_wait_and_read_peek_keeps_the_value(pg_storage: PostgresStorage) -> None:
    writer = later(0.2, lambda: pg_storage.put_data("k", b"v", is_result=True))
    assert pg_storage.wait_and_read("k", timeout=WAIT, peek=True) == b"v"
    writer.join(WAIT)
    assert pg_storage.peek_data("k") == b"v"
    assert listened(pg_storage) == []


def test_postgres_wait_and_read_finds_unnotified_results(pg_storage: PostgresStorage) -> None:
    writer = later(0.2, lambda: pg_storage.put_data("k", b"v"))  # no NOTIFY
    assert pg_storage.wait_and_read("k", timeout=WAIT, max_delay=0.1) == b"v"
    writer.join(WAIT)
    assert listened(pg_storage) == []


def test_postgres_waits_time_out(pg_storage: PostgresStorage) -> None:
    start = time.monotonic()
    assert pg_storage.wait_and_read("missing", timeout=0.2) is EmptyData
    assert pg_storage.wait_and_read("missing", timeout=0) is EmptyData
    assert pg_storage.wait_result("missing", timeout=0.2) is False
    assert time.monotonic() - start < WAIT
    assert listened(pg_storage) == []


def test_postgres_wait_result_is_woken(pg_storage: PostgresStorage) -> None:
    writer = later(0.2, lambda: pg_storage.put_data("k", b"v", is_result=True))
    assert pg_storage.wait_result("k", timeout=WAIT) is True
    writer.join(WAIT)
    assert pg_storage.peek_data("k") == b"v"
    assert listened(pg_storage) == []
