"""Redis-specific behaviour (spec §15.4): key layout, expiry, priorities, notifications.

Runs against the real test Redis (``redis_url`` fixture, db 15). Every test uses a unique
queue name and removes its keys at teardown.
"""

from __future__ import annotations

import datetime
import struct
import sys
import threading
import time
from typing import Any

import pytest

from huey.constants import EmptyData
from huey.exceptions import ConfigurationError
from huey.storage import (
    PriorityRedisExpireStorage,
    PriorityRedisStorage,
    RedisExpireStorage,
    RedisStorage,
)
from tests.conftest import WIRE_SAMPLES

redis = pytest.importorskip("redis")

GOLDEN = WIRE_SAMPLES / "redis-layout.txt"
WAIT = 30.0
ALL_CLASSES = [RedisStorage, RedisExpireStorage, PriorityRedisStorage, PriorityRedisExpireStorage]


def make(cls: type[RedisStorage], name: str, url: str, **kwargs: Any) -> Any:
    return cls(name, url=url, **kwargs)


# -- key layout ----------------------------------------------------------------------------
def golden_sections() -> dict[str, set[str]]:
    sections: dict[str, set[str]] = {}
    current: set[str] | None = None
    for line in GOLDEN.read_text().splitlines():
        if line.startswith("## "):
            current = sections.setdefault(line[3:].split("(")[0], set())
        elif line.strip() and not line.startswith("#") and current is not None:
            current.add(" ".join(line.split()))
    return sections


def sort_fields(line: str) -> str:
    """Sort a hash line's field list (renaming "demo" can change the order)."""
    head, sep, fields = line.partition(" fields: ")
    return head + sep + ", ".join(sorted(fields.split(", "))) if sep else line


def describe(conn: Any, name: str) -> set[str]:
    """Describe every key mentioning ``name`` in the golden file's format."""
    lines = set()
    for raw in conn.scan_iter(match=f"*{name}*"):
        key = raw.decode()
        kind = conn.type(key).decode()
        if kind == "hash":
            fields = sorted(f.decode() for f in conn.hkeys(key))
            desc = f"{conn.hlen(key)} entries; fields: {', '.join(fields)}"
        elif kind == "list":
            desc = str(conn.llen(key))
        elif kind == "zset":
            desc = str(conn.zcard(key))
        else:
            desc = str(conn.strlen(key))
        ttl = conn.ttl(key)
        # TTL is reported rounded to seconds: a key written a moment ago shows the full value.
        suffix = "" if ttl < 0 else f" ttl={86400 if 86390 <= ttl <= 86400 else ttl}"
        lines.add(f"{key} {kind} {desc}{suffix}")
    return lines


def fixed_scenario(storage: RedisStorage, name: str) -> None:
    """The golden scenario at storage level (3 queue entries: 2 tasks + 1 with an eta)."""
    for i in range(3):
        storage.enqueue(b"message-%d" % i)
    storage.put_data("user-key", b"u" * 30)
    storage.put_data("00000000-0000-0000-0000-0000000000aa", b"r" * 5, is_result=True)
    storage.put_data("r:00000000-0000-0000-0000-000000000002", b"v" * 16)
    storage.put_data("rt:__main__.add", b"v" * 16)
    storage.incr("a-counter", 3)
    assert storage.put_if_empty(f"{name}.lock.my-lock", b"l" * 16)


@pytest.mark.parametrize(
    "cls, section, queue_type",
    [
        (RedisStorage, "RedisHuey", "list"),
        (RedisExpireStorage, "RedisExpireHuey", "list"),
        (PriorityRedisStorage, "PriorityRedisHuey", "zset"),
        (PriorityRedisExpireStorage, "RedisExpireHuey", "zset"),
    ],
)
def test_key_layout_matches_upstream(
    cls: type[RedisStorage],
    section: str,
    queue_type: str,
    redis_url: str,
    unique_name: str,
    client: Any,
) -> None:
    storage = make(cls, unique_name, redis_url, notify_result=False)
    fixed_scenario(storage, unique_name)
    expected = {
        sort_fields(line.replace("demo", unique_name).replace(" list 3", f" {queue_type} 3"))
        for line in golden_sections()[section]
    }
    assert describe(client, unique_name) == expected


def test_notify_result_adds_only_the_notification_list(
    redis_url: str, unique_name: str, client: Any
) -> None:
    storage = make(RedisStorage, unique_name, redis_url)  # notify_result is on by default
    fixed_scenario(storage, unique_name)
    extra = describe(client, unique_name) - {
        sort_fields(line.replace("demo", unique_name)) for line in golden_sections()["RedisHuey"]
    }
    assert len(extra) == 1
    (line,) = extra
    key, kind, size, ttl = line.split()
    assert key == f"huey.notify.{unique_name}.00000000-0000-0000-0000-0000000000aa"
    assert (kind, size) == ("list", "1")
    assert 0 < int(ttl.split("=")[1]) <= 60


# -- expiry --------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [RedisExpireStorage, PriorityRedisExpireStorage])
def test_expire_storage_ttls(
    cls: type[RedisExpireStorage], redis_url: str, unique_name: str, client: Any
) -> None:
    storage = make(cls, unique_name, redis_url, expire_time=120)
    storage.put_data("res", b"1", is_result=True)
    storage.put_data("meta", b"2")
    assert storage.incr("ctr", 2) == 2
    assert 100 < client.ttl(f"huey.r.{unique_name}.res") <= 120
    assert client.ttl(f"huey.r.{unique_name}.meta") == -1  # metadata never expires
    assert 100 < client.ttl(f"huey.c.{unique_name}.ctr") <= 120
    client.persist(f"huey.c.{unique_name}.ctr")
    assert storage.incr("ctr", 1) == 3
    assert 100 < client.ttl(f"huey.c.{unique_name}.ctr") <= 120  # every incr re-arms it
    assert storage.pop_data("res") == b"1"
    assert storage.pop_data("res") == b"1"  # pop is a peek: results expire instead
    assert storage.put_if_empty("lock", b"1", ttl=50) is True
    assert 0 < client.pttl(f"huey.r.{unique_name}.lock") <= 50_000
    assert storage.put_if_empty("lock", b"1", ttl=50) is False
    storage.put_data("res", b"new")  # an upsert without is_result clears the expiry
    assert client.ttl(f"huey.r.{unique_name}.res") == -1


def test_expire_time_must_be_positive(redis_url: str, unique_name: str) -> None:
    with pytest.raises(ConfigurationError, match="expire_time"):
        RedisExpireStorage(unique_name, expire_time=0, url=redis_url)


def test_ttl_item_lives_in_a_separate_key_on_old_servers(
    redis_url: str, unique_name: str, client: Any
) -> None:
    storage = make(RedisStorage, unique_name, redis_url)
    if storage._has_hfe():
        pytest.skip("this server expires hash fields; the separate-key fallback is unused")
    results = f"huey.results.{unique_name}"
    side_key = f"hueyng.kvttl.{unique_name}.job.lock"
    assert storage.put_if_empty("job.lock", b"1", ttl=0.5) is True
    assert client.hexists(results, "job.lock") == 0  # upstream's hash is untouched
    assert client.get(side_key) == b"1" and 0 < client.pttl(side_key) <= 500
    assert storage.has_data_for_key("job.lock")
    assert storage.peek_data("job.lock") == b"1"
    assert storage.peek_many(["job.lock", "nope"]) == {"job.lock": b"1"}
    assert storage.result_items() == {"job.lock": b"1"} and storage.result_store_size() == 1
    assert storage.put_if_empty("job.lock", b"2") is False  # a live ttl item blocks
    assert storage.put_if_empty("plain", b"p") is True
    assert storage.put_if_empty("plain", b"p", ttl=5) is False  # and a hash entry blocks
    deadline = time.monotonic() + WAIT
    while storage.has_data_for_key("job.lock") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert storage.peek_data("job.lock") is EmptyData
    assert storage.put_if_empty("job.lock", b"3") is True
    assert client.hget(results, "job.lock") == b"3"
    assert storage.put_if_empty("other", b"x", ttl=30) is True
    assert storage.pop_data("other") == b"x" and client.exists(side_key[:-8] + "other") == 0
    assert storage.put_if_empty("other", b"y", ttl=30) is True
    storage.put_data("other", b"z")  # an upsert replaces the expiring item
    assert client.exists(f"hueyng.kvttl.{unique_name}.other") == 0
    assert storage.peek_data("other") == b"z"
    assert storage.put_if_empty("gone", b"x", ttl=30) is True
    storage.flush_results()
    assert not list(client.scan_iter(match=f"hueyng.kvttl.{unique_name}.*"))


def test_ttl_must_be_positive(redis_url: str, unique_name: str) -> None:
    storage = make(RedisStorage, unique_name, redis_url)
    with pytest.raises(ValueError, match="ttl"):
        storage.put_if_empty("k", b"1", ttl=0)


# -- queue and schedule ordering ---------------------------------------------------------
@pytest.mark.parametrize("cls", [RedisStorage, RedisExpireStorage])
def test_plain_redis_rejects_priorities(
    cls: type[RedisStorage], redis_url: str, unique_name: str, client: Any
) -> None:
    storage = make(cls, unique_name, redis_url, blocking=False)
    assert storage.priority is False
    with pytest.raises(NotImplementedError, match="PriorityRedis"):
        storage.enqueue(b"x", priority=1)
    storage.enqueue(b"a", priority=0)
    storage.enqueue(b"b", priority=None)
    storage.enqueue(b"c")
    assert storage.enqueued_items(2) == [b"a", b"b"]
    assert storage.enqueued_items() == [b"a", b"b", b"c"]
    assert [storage.dequeue() for _ in range(4)] == [b"a", b"b", b"c", None]


@pytest.mark.parametrize("cls", [PriorityRedisStorage, PriorityRedisExpireStorage])
def test_priority_order_and_member_format(
    cls: type[RedisStorage], redis_url: str, unique_name: str, client: Any
) -> None:
    storage = make(cls, unique_name, redis_url, blocking=False)
    sent = [(b"p0", None), (b"p5a", 5), (b"dup", 5), (b"dup", 5), (b"neg", -1), (b"mid", 2.5)]
    for data, priority in sent:
        storage.enqueue(data, priority)
    expected = [b"p5a", b"dup", b"dup", b"mid", b"p0", b"neg"]
    assert storage.queue_size() == 6
    assert storage.enqueued_items() == expected
    assert storage.enqueued_items(3) == expected[:3]
    members = client.zrange(f"huey.redis.{unique_name}", 0, -1, withscores=True)
    assert [score for _, score in members] == [-5, -5, -5, -2.5, 0, 1]
    stamps = [struct.unpack(">Q", member[:8])[0] for member, _ in members]
    assert all(abs(stamp / 1e6 - time.time()) < 600 for stamp in stamps)
    assert stamps[:3] == sorted(stamps[:3])  # FIFO among equal priorities
    assert [member[8:] for member, _ in members] == expected
    assert [storage.dequeue() for _ in range(7)] == expected + [None]


def test_blocking_priority_dequeue(redis_url: str, unique_name: str, client: Any) -> None:
    storage = make(PriorityRedisStorage, unique_name, redis_url, read_timeout=0.2)
    assert storage.dequeue() is None
    storage.enqueue(b"lo", 1)
    storage.enqueue(b"hi", 9)
    assert storage.dequeue() == b"hi"


def test_schedule_scores_are_local_epoch(redis_url: str, unique_name: str, client: Any) -> None:
    storage = make(RedisStorage, unique_name, redis_url)
    ts = datetime.datetime(2030, 1, 2, 3, 4, 5, 250000)
    storage.add_to_schedule(b"late", ts)
    storage.add_to_schedule(b"early", ts - datetime.timedelta(seconds=1))
    score = client.zscore(f"huey.schedule.{unique_name}", b"late")
    assert score == pytest.approx(time.mktime(ts.timetuple()) + 0.25, abs=1e-6)
    assert storage.scheduled_items(1) == [b"early"]
    assert storage.read_schedule(ts - datetime.timedelta(microseconds=1)) == [b"early"]
    assert storage.read_schedule(ts) == [b"late"]
    assert storage.schedule_size() == 0


# -- result notification ------------------------------------------------------------------
def wait_in_thread(storage: RedisStorage, key: str, **kwargs: Any) -> dict[str, Any]:
    outcome: dict[str, Any] = {}

    def target() -> None:
        outcome["ok"] = storage.wait_result(key, **kwargs)

    thread = threading.Thread(target=target)
    thread.start()
    outcome["thread"] = thread
    return outcome


@pytest.mark.parametrize("cls", [RedisStorage, RedisExpireStorage])
def test_notify_result_wakes_a_blpop_waiter(
    cls: type[RedisStorage], redis_url: str, unique_name: str, client: Any
) -> None:
    storage = make(cls, unique_name, redis_url)
    notify_key = f"huey.notify.{unique_name}.task-1"
    # max_delay=20: a waiter that polled would re-check only after 20 s.
    outcome = wait_in_thread(storage, "task-1", timeout=WAIT, max_delay=20)
    deadline = time.monotonic() + WAIT
    while not any(c.get("cmd") == "blpop" for c in client.client_list()):
        assert time.monotonic() < deadline, "the waiter never blocked in BLPOP"
        time.sleep(0.02)
    started = time.monotonic()
    writer = make(cls, unique_name, redis_url)
    writer.put_data("task-1", b"result", is_result=True)
    outcome["thread"].join(WAIT)
    assert outcome["ok"] is True
    assert time.monotonic() - started < 15  # woken by the push, not the 20 s re-check
    assert client.exists(notify_key) == 0  # the waiter consumed and removed the list
    assert storage.peek_data("task-1") == b"result"


def test_wait_result_timeouts(redis_url: str, unique_name: str, client: Any) -> None:
    storage = make(RedisStorage, unique_name, redis_url)
    outcome = wait_in_thread(storage, "never", timeout=0)
    outcome["thread"].join(WAIT)
    assert not outcome["thread"].is_alive() and outcome["ok"] is False  # 0 = check once
    outcome = wait_in_thread(storage, "never", timeout=0.3)
    outcome["thread"].join(WAIT)
    assert not outcome["thread"].is_alive() and outcome["ok"] is False
    storage.put_data("there", b"1", is_result=True)
    assert storage.wait_result("there", timeout=0) is True


def test_waiter_sees_a_result_written_without_notification(
    redis_url: str, unique_name: str, client: Any
) -> None:
    waiter = make(RedisStorage, unique_name, redis_url)
    silent = make(RedisStorage, unique_name, redis_url, notify_result=False)
    outcome = wait_in_thread(waiter, "quiet", timeout=WAIT, max_delay=0.1)
    time.sleep(0.3)
    silent.put_data("quiet", b"1", is_result=True)
    outcome["thread"].join(WAIT)
    assert outcome["ok"] is True
    assert client.exists(f"huey.notify.{unique_name}.quiet") == 0  # nothing was pushed


def test_notify_result_off_polls(redis_url: str, unique_name: str, client: Any) -> None:
    storage = make(RedisStorage, unique_name, redis_url, notify_result=False)
    outcome = wait_in_thread(storage, "k", timeout=WAIT)
    time.sleep(0.2)
    storage.put_data("k", b"1", is_result=True)
    outcome["thread"].join(WAIT)
    assert outcome["ok"] is True
    assert client.exists(f"huey.notify.{unique_name}.k") == 0


# -- configuration -------------------------------------------------------------------------
def test_clean_name(redis_url: str, unique_name: str, client: Any) -> None:
    cleaned = make(RedisStorage, f"{unique_name}-v1.x", redis_url)
    assert cleaned.name == f"{unique_name}v1x"
    cleaned.enqueue(b"a")
    assert client.llen(f"huey.redis.{unique_name}v1x") == 1
    raw = make(RedisStorage, f"{unique_name}-v1", redis_url, clean_name=False)
    assert raw.name == f"{unique_name}-v1"
    raw.enqueue(b"b")
    assert client.llen(f"huey.redis.{unique_name}-v1") == 1
    with pytest.raises(ConfigurationError, match="empty"):
        RedisStorage("-.-", url=redis_url)


def test_only_one_way_to_connect(redis_url: str) -> None:
    pool = redis.ConnectionPool.from_url(redis_url)
    with pytest.raises(ConfigurationError, match="only one of url, connection_pool"):
        RedisStorage("x", url=redis_url, connection_pool=pool)
    with pytest.raises(ConfigurationError, match=r"connection params \(host\)"):
        RedisStorage("x", url=redis_url, host="127.0.0.1")
    with pytest.raises(ConfigurationError, match="only one"):
        RedisStorage("x", connection_pool=pool, db=3)
    # None host / port / db are dropped, so they do not count as params.
    storage = RedisStorage("x", url=redis_url, host=None, port=None, db=None)
    assert storage.conn.ping()
    pooled = RedisStorage("x", connection_pool=pool)
    assert pooled.conn.connection_pool is pool and pooled.pool is pool


def test_connection_params_and_defaults(redis_url: str, unique_name: str) -> None:
    parsed = redis.ConnectionPool.from_url(redis_url).connection_kwargs
    storage = RedisStorage(
        unique_name,
        host=parsed["host"],
        port=parsed["port"],
        db=parsed["db"],
        health_check_interval=10,
    )
    kwargs = storage.pool.connection_kwargs
    assert kwargs["health_check_interval"] == 10
    assert kwargs["socket_connect_timeout"] == 5.0  # fail fast on a dead server
    assert kwargs["socket_timeout"] > storage.read_timeout
    storage.enqueue(b"x")
    assert storage.dequeue() == b"x"
    from_url = RedisStorage(unique_name, url=redis_url + "?socket_connect_timeout=2")
    assert from_url.pool.connection_kwargs["socket_connect_timeout"] == 2


def test_timeouts_are_validated(redis_url: str) -> None:
    with pytest.raises(ConfigurationError, match="read_timeout"):
        RedisStorage("x", url=redis_url, read_timeout=0)
    with pytest.raises(ConfigurationError, match="socket_timeout"):
        RedisStorage("x", host="127.0.0.1", read_timeout=3, socket_timeout=2)
    RedisStorage("x", url=redis_url, blocking=False, read_timeout=0)  # unused when polling


def test_client_name(redis_url: str, unique_name: str) -> None:
    storage = RedisStorage(unique_name, url=redis_url, client_name=f"hueyng-{unique_name}")
    assert storage.conn.client_getname() == f"hueyng-{unique_name}"
    pool = redis.ConnectionPool.from_url(redis_url)
    pooled = RedisStorage(unique_name, connection_pool=pool, client_name=f"p-{unique_name}")
    assert pooled.conn.client_getname() == f"p-{unique_name}"


def test_redis_client_class_attribute(redis_url: str, unique_name: str) -> None:
    assert RedisStorage.redis_client is redis.Redis

    class CustomRedis(redis.Redis):  # type: ignore[misc]
        pass

    class CustomStorage(RedisStorage):
        redis_client = CustomRedis

    storage = CustomStorage(unique_name, url=redis_url)
    assert type(storage.conn) is CustomRedis and storage.conn.ping()


def test_missing_redis_package_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # makes "import redis" fail
    with pytest.raises(ConfigurationError, match=r"pip install 'huey-ng\[redis\]'"):
        RedisStorage("x", url=redis_url)


def test_close_then_reuse(redis_url: str, unique_name: str, client: Any) -> None:
    storage = make(RedisStorage, unique_name, redis_url, blocking=False)
    storage.enqueue(b"a")
    storage.close()
    storage.enqueue(b"b")  # the pool reconnects lazily
    assert [storage.dequeue(), storage.dequeue()] == [b"a", b"b"]
