"""Leased delivery on PostgreSQL: real processes, real kills, huey-ng's own tables.

The multi-process scenarios are the ones of ``test_redis_leases.py``. Tests that create
tables use a unique ``table_prefix`` and drop every table of it afterwards.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from huey.storage import PostgresStorage
from tests.storage.test_postgres import GOLDEN, normalise_dump
from tests.storage.test_redis_leases import WAIT, kill_scenario, reaper_scenario, wake_scenario

psycopg = pytest.importorskip("psycopg")

NG_TABLES = ["ng_lease", "ng_delivery", "ng_dead_letter", "ng_claim", "ng_named_lease"]


@pytest.fixture
def prefix(admin: Any, unique_name: str) -> Iterator[str]:
    """A table prefix no other test uses; all its tables are dropped afterwards."""
    yield unique_name
    for table in ["_kv", "_schedule", "_task", "_counter", "ng_kv_expiry", *NG_TABLES]:
        admin.execute(f"drop table if exists {unique_name}{table}")


@pytest.fixture
def storage(pg_dsn: str, unique_name: str) -> Iterator[PostgresStorage]:
    store = PostgresStorage(unique_name, dsn=pg_dsn)
    yield store
    store.flush_all()
    store.close()


def tables(admin: Any, prefix: str) -> list[str]:
    rows = admin.execute(
        "select tablename from pg_tables where tablename like %s",
        (prefix.lower() + "%",),
    ).fetchall()
    return sorted(name[len(prefix) :] for (name,) in rows)


# -- multi-process -------------------------------------------------------------------------
def test_killed_worker_loses_nothing(
    pg_dsn: str, unique_name: str, storage: PostgresStorage, admin: Any
) -> None:
    kill_scenario(lambda: PostgresStorage(unique_name, dsn=pg_dsn, read_timeout=0.5))
    for table in ("huey_task", "hueyng_lease"):
        count = admin.execute(f"select count(*) from {table} where queue = %s", (unique_name,))
        assert count.fetchone()[0] == 0


def test_concurrent_reapers_requeue_each_lease_once(
    pg_dsn: str, unique_name: str, storage: PostgresStorage
) -> None:
    reaper_scenario(lambda: PostgresStorage(unique_name, dsn=pg_dsn))


def test_blocking_leased_take_wakes_on_enqueue(
    pg_dsn: str, unique_name: str, storage: PostgresStorage
) -> None:
    waiter = PostgresStorage(unique_name, dsn=pg_dsn, read_timeout=20)
    try:
        wake_scenario(waiter, storage)
    finally:
        waiter.close()


@pytest.mark.parametrize("how", ["release", "requeue"])
def test_blocking_leased_take_wakes_when_a_lease_comes_back(
    how: str, pg_dsn: str, unique_name: str, storage: PostgresStorage
) -> None:
    storage.enqueue(b"m")
    first = storage.dequeue_leased(0.2)
    assert first is not None
    waiter = PostgresStorage(unique_name, dsn=pg_dsn, read_timeout=20)
    found: list[Any] = []
    started = time.monotonic()
    thread = threading.Thread(target=lambda: found.append(waiter.dequeue_leased(30)))
    thread.start()
    time.sleep(0.5)  # the waiter blocks in LISTEN (and the lease expires)
    if how == "release":
        storage.release(first.token)
    else:
        assert storage.requeue_expired() == 1
    thread.join(WAIT)
    waiter.close()
    assert found and found[0] is not None and found[0].data == b"m"
    assert found[0].count == (1 if how == "release" else 2)
    assert time.monotonic() - started < 10  # woken by NOTIFY, not by the 20 s timeout


def test_take_skips_rows_locked_by_another_transaction(
    pg_dsn: str, unique_name: str, storage: PostgresStorage
) -> None:
    storage.enqueue(b"first")
    storage.enqueue(b"second")
    with psycopg.connect(pg_dsn) as other:  # an open transaction holding the first row
        other.execute(
            "select id from huey_task where queue = %s order by id limit 1 for update",
            (unique_name,),
        )
        delivery = storage.dequeue_leased(30)
        assert delivery is not None and delivery.data == b"second"
        other.rollback()
    again = storage.dequeue_leased(30)
    assert again is not None and again.data == b"first"


# -- layout --------------------------------------------------------------------------------
def test_huey_ng_tables_are_created_on_first_use_beside_upstream(
    pg_dsn: str, prefix: str, admin: Any
) -> None:
    storage = PostgresStorage("demo", dsn=pg_dsn, table_prefix=prefix)
    storage.flush_all()  # works before huey-ng's tables exist, and does not create them
    assert tables(admin, prefix) == ["_counter", "_kv", "_schedule", "_task"]
    storage.enqueue(b"m", 3)
    delivery = storage.dequeue_leased(30)
    assert delivery is not None and delivery.count == 1
    storage.add_dead_letter(b"x", "why")
    assert storage.claim("tick", 30) and storage.acquire_lease("leader", "me", 30)
    assert tables(admin, prefix) == sorted(["_counter", "_kv", "_schedule", "_task", *NG_TABLES])
    lease = admin.execute(f"select queue, data, priority from {prefix}ng_lease").fetchall()
    assert [(q, bytes(d), p) for q, d, p in lease] == [("demo", b"m", 3.0)]
    # Upstream's tables are exactly upstream's schema, whatever huey-ng added beside them.
    dump = subprocess.run(
        ["pg_dump", "--schema-only", "--table", f"{prefix}_*", pg_dsn],
        check=True,
        capture_output=True,
        text=True,
        timeout=WAIT,
    ).stdout
    golden = [line.replace("huey_", f"{prefix}_") for line in normalise_dump(GOLDEN.read_text())]
    assert normalise_dump(dump) == golden
    assert storage.result_store_size() == 0 and storage.queue_size() == 0
    storage.flush_all()
    for table in NG_TABLES:
        assert admin.execute(f"select count(*) from {prefix}{table}").fetchone()[0] == 0
    storage.close()


def test_lease_expiry_uses_the_server_clock(
    unique_name: str, storage: PostgresStorage, admin: Any
) -> None:
    storage.enqueue(b"m")
    server_now = admin.execute("select extract(epoch from clock_timestamp())").fetchone()[0]
    delivery = storage.dequeue_leased(100)
    assert delivery is not None
    row = admin.execute("select expires_at from hueyng_lease where token = %s", (delivery.token,))
    expires_at = row.fetchone()[0]
    assert float(server_now) + 100 <= expires_at <= float(server_now) + 100 + WAIT


# -- behaviour -----------------------------------------------------------------------------
def test_heartbeat_of_many_tokens_in_one_statement(storage: PostgresStorage) -> None:
    for i in range(5):
        storage.enqueue(b"m%d" % i)
    taken = [storage.dequeue_leased(0.3) for _ in range(5)]
    tokens = [d.token for d in taken if d is not None and d.token]
    storage.ack(tokens[0])
    storage.extend_leases(tokens + ["no-such-token"], 30)
    time.sleep(0.6)
    assert storage.requeue_expired() == 0
    storage.extend_leases(tokens[1:3], 0.1)
    time.sleep(0.4)
    assert storage.requeue_expired() == 2
    assert sorted(storage.enqueued_items()) == [b"m1", b"m2"]


def test_release_keeps_priority_and_uncounts(storage: PostgresStorage) -> None:
    storage.enqueue(b"low", 1)
    storage.enqueue(b"high", 9)
    high = storage.dequeue_leased(30)
    assert high is not None and high.data == b"high"
    storage.release(high.token)
    storage.release(high.token)  # twice: the second is a no-op
    assert storage.enqueued_items() == [b"high", b"low"]
    again = storage.dequeue_leased(30)
    assert again is not None and again.data == b"high" and again.count == 1


def test_dead_letters_and_claims(storage: PostgresStorage, admin: Any, unique_name: str) -> None:
    storage.enqueue(b"poison")
    delivery = storage.dequeue_leased(30)
    assert delivery is not None
    letter_id = storage.add_dead_letter(delivery.data, "crashed")
    storage.ack(delivery.token)
    count = admin.execute("select count(*) from hueyng_delivery where queue = %s", (unique_name,))
    assert count.fetchone()[0] == 0
    for bad in ("abc", "-1", "9" * 40):
        assert storage.pop_dead_letter(bad) is None
    letter = storage.pop_dead_letter(letter_id)
    assert letter is not None and (letter.data, letter.reason) == (b"poison", "crashed")
    with pytest.raises(ValueError, match="ttl"):
        storage.claim("k", 0)
    with pytest.raises(ValueError, match="lease_seconds"):
        storage.dequeue_leased(-1)


def test_takes_commit_asynchronously_and_nothing_else_does(storage: PostgresStorage) -> None:
    """A take's transaction skips the WAL flush (safe: a lost take leaves the message
    queued); the setting is local to it, so results and acks on the same connection stay
    durable."""
    for i in range(3):
        storage.enqueue(b"m%d" % i)

    def take_reporting_commit_mode(conn: Any) -> tuple[Any, ...]:
        with conn.transaction():
            conn.execute(storage._sql["take"], {"q": storage.name, "t": "tok", "s": 30})
            during = conn.execute("show synchronous_commit").fetchone()[0]
        return during, conn.execute("show synchronous_commit").fetchone()[0]

    assert storage._run(take_reporting_commit_mode) == ("off", "on")
    assert len(storage.dequeue_leased_many(30, 5)) == 2
    assert storage._fetchone("show synchronous_commit")[0] == "on"
