"""PostgreSQL-specific behaviour (spec §15.6): schema, LISTEN wake-ups, SKIP LOCKED sharing.

Runs against the real test database (``pg_dsn`` fixture). Tests that create tables use a
unique ``table_prefix`` and drop their tables afterwards; the others use the default tables
with a unique queue name, flushed at teardown.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from huey.constants import EmptyData
from huey.exceptions import ConfigurationError
from huey.storage import PostgresStorage
from tests.conftest import WIRE_SAMPLES

psycopg = pytest.importorskip("psycopg")

GOLDEN = WIRE_SAMPLES / "postgres-schema.sql"
WAIT = 30.0


@pytest.fixture
def prefix(admin: Any, unique_name: str) -> Iterator[str]:
    """A table prefix no other test uses; its tables are dropped afterwards."""
    yield unique_name
    for table in ("kv", "schedule", "task", "counter"):
        admin.execute(f"drop table if exists {unique_name}_{table}")
    admin.execute(f"drop table if exists {unique_name}ng_kv_expiry")


@pytest.fixture
def storage(pg_dsn: str, unique_name: str) -> Iterator[PostgresStorage]:
    store = PostgresStorage(unique_name, dsn=pg_dsn)
    yield store
    store.flush_all()
    store.close()


def normalise_dump(text: str) -> list[str]:
    """pg_dump -s output without comments, settings, ownership lines and blank lines."""
    lines = []
    for line in text.splitlines():
        if not line.strip() or line.startswith(("--", "SET ", "SELECT pg_catalog", "\\")):
            continue
        if re.match(r"ALTER (TABLE|SEQUENCE) \S+ OWNER TO", line):
            continue
        lines.append(line)
    return lines


# -- schema --------------------------------------------------------------------------------
def test_schema_matches_upstream(pg_dsn: str, prefix: str) -> None:
    PostgresStorage("demo", dsn=pg_dsn, table_prefix=prefix).close()
    dump = subprocess.run(
        ["pg_dump", "--schema-only", "--table", f"{prefix}_*", pg_dsn],
        check=True,
        capture_output=True,
        text=True,
        timeout=WAIT,
    ).stdout
    golden = [line.replace("huey_", f"{prefix}_") for line in normalise_dump(GOLDEN.read_text())]
    assert normalise_dump(dump) == golden


def test_schema_via_information_schema(pg_dsn: str, prefix: str, admin: Any) -> None:
    PostgresStorage("demo", dsn=pg_dsn, table_prefix=prefix).close()
    columns = admin.execute(
        "select table_name, column_name, data_type, is_nullable, column_default "
        "from information_schema.columns where table_name like %s "
        "order by table_name, ordinal_position",
        (f"{prefix}\\_%",),
    ).fetchall()
    shape = [(t[len(prefix) + 1 :], c, d, n) for t, c, d, n, _ in columns]
    assert shape == [
        ("counter", "queue", "text", "NO"),
        ("counter", "key", "text", "NO"),
        ("counter", "value", "bigint", "NO"),
        ("kv", "queue", "text", "NO"),
        ("kv", "key", "text", "NO"),
        ("kv", "value", "bytea", "NO"),
        ("schedule", "id", "bigint", "NO"),
        ("schedule", "queue", "text", "NO"),
        ("schedule", "data", "bytea", "NO"),
        ("schedule", "timestamp", "double precision", "NO"),
        ("task", "id", "bigint", "NO"),
        ("task", "queue", "text", "NO"),
        ("task", "data", "bytea", "NO"),
        ("task", "priority", "double precision", "NO"),
    ]
    indexes = admin.execute(
        "select indexname, indexdef from pg_indexes where tablename like %s order by 1",
        (f"{prefix}\\_%",),
    ).fetchall()
    assert [name[len(prefix) :] for name, _ in indexes] == [
        "_counter_pkey",
        "_kv_pkey",
        "_schedule_pkey",
        "_schedule_queue_timestamp",
        "_task_pkey",
        "_task_queue_priority_id",
    ]
    task_index = dict(indexes)[f"{prefix}_task_queue_priority_id"]
    assert task_index.endswith("(queue, priority DESC, id)")


def test_create_tables_false_and_initialize_schema(pg_dsn: str, prefix: str, admin: Any) -> None:
    storage = PostgresStorage("q", dsn=pg_dsn, table_prefix=prefix, create_tables=False)
    assert admin.execute("select to_regclass(%s)", (f"{prefix}_task",)).fetchone() == (None,)
    storage.initialize_schema()
    storage.initialize_schema()  # idempotent
    assert admin.execute("select to_regclass(%s)", (f"{prefix}_task",)).fetchone()[0]
    storage.enqueue(b"x")
    assert storage.dequeue() == b"x"
    storage.close()


def test_table_prefix_is_sanitised(pg_dsn: str, prefix: str, admin: Any) -> None:
    storage = PostgresStorage("q", dsn=pg_dsn, table_prefix=prefix + "; drop")
    assert storage.table_prefix == prefix + "drop"
    storage.close()
    for table in ("kv", "schedule", "task", "counter"):
        admin.execute(f"drop table if exists {prefix}drop_{table}")


# -- queue ---------------------------------------------------------------------------------
def test_dequeue_order_and_schedule_order(storage: PostgresStorage) -> None:
    for data, priority in [(b"a", None), (b"b", 2), (b"c", 2), (b"d", -1.5), (b"e", 0.5)]:
        storage.enqueue(data, priority)
    assert storage.enqueued_items(3) == [b"b", b"c", b"e"]
    assert [storage.dequeue() for _ in range(5)] == [b"b", b"c", b"e", b"a", b"d"]
    ts = datetime.datetime(2030, 5, 6, 7, 8, 9)
    storage.add_to_schedule(b"second-same-ts", ts)
    storage.add_to_schedule(b"first", ts - datetime.timedelta(seconds=1))
    storage.add_to_schedule(b"third-same-ts", ts)
    assert storage.scheduled_items(2) == [b"first", b"second-same-ts"]
    assert storage.read_schedule(ts) == [b"first", b"second-same-ts", b"third-same-ts"]


def dequeue_in_thread(storage: PostgresStorage) -> dict[str, Any]:
    outcome: dict[str, Any] = {}

    def target() -> None:
        outcome["data"] = storage.dequeue()
        outcome["done"] = time.monotonic()

    outcome["thread"] = thread = threading.Thread(target=target)
    thread.start()
    return outcome


def wait_for_listener(admin: Any, channel: str) -> None:
    """Wait until some session LISTENs (it shows as waiting on ``ClientRead``)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        rows = admin.execute(
            "select count(*) from pg_stat_activity where query ilike %s and state = 'idle'",
            (f'%LISTEN "{channel}"%',),
        ).fetchone()
        if rows[0]:
            return
        time.sleep(0.02)
    raise AssertionError(f"nobody listens on {channel}")


def test_listen_wakes_a_blocked_dequeue(pg_dsn: str, unique_name: str, admin: Any) -> None:
    consumer = PostgresStorage(unique_name, dsn=pg_dsn, read_timeout=30)
    producer = PostgresStorage(unique_name, dsn=pg_dsn)
    try:
        outcome = dequeue_in_thread(consumer)
        wait_for_listener(admin, consumer.queue_channel)
        sent = time.monotonic()
        producer.enqueue(b"wake-up")
        outcome["thread"].join(WAIT + 5)
        assert outcome["data"] == b"wake-up"
        assert outcome["done"] - sent < 10  # woken by NOTIFY, well before read_timeout
    finally:
        consumer.flush_all()
        consumer.close()
        producer.close()


def test_blocking_dequeue_times_out_empty(pg_dsn: str, unique_name: str) -> None:
    storage = PostgresStorage(unique_name, dsn=pg_dsn, read_timeout=0.2)
    assert storage.dequeue() is None
    storage.close()


def test_long_queue_name_uses_md5_channel(pg_dsn: str, admin: Any) -> None:
    name = "q" * 80
    consumer = PostgresStorage(name, dsn=pg_dsn, read_timeout=30)
    producer = PostgresStorage(name, dsn=pg_dsn)
    expected = "huey.q." + hashlib.md5(f"huey.q.{name}".encode()).hexdigest()
    assert consumer.queue_channel == expected and len(expected) <= 63
    assert len(consumer.result_channel.encode()) <= 63
    try:
        outcome = dequeue_in_thread(consumer)
        wait_for_listener(admin, expected)
        producer.enqueue(b"long")
        outcome["thread"].join(WAIT + 5)
        assert outcome["data"] == b"long"
    finally:
        consumer.flush_all()
        consumer.close()
        producer.close()


def test_short_channel_names(storage: PostgresStorage, unique_name: str) -> None:
    assert storage.queue_channel == f"huey.q.{unique_name}"
    assert storage.result_channel == f"huey.r.{unique_name}"


def test_several_consumers_never_take_a_message_twice(pg_dsn: str, unique_name: str) -> None:
    producer = PostgresStorage(unique_name, dsn=pg_dsn)
    total = 300
    for i in range(total):
        producer.enqueue(b"%d" % i)
    taken: list[list[bytes]] = [[] for _ in range(4)]

    def drain(index: int) -> None:
        store = PostgresStorage(unique_name, dsn=pg_dsn, blocking=False)
        while (data := store.dequeue()) is not None:
            taken[index].append(data)
        store.close()

    threads = [threading.Thread(target=drain, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    everything = [item for part in taken for item in part]
    assert len(everything) == total
    assert sorted(everything) == sorted(b"%d" % i for i in range(total))
    assert producer.queue_size() == 0
    producer.close()


DRAIN_SCRIPT = """
import sys
from huey.storage import PostgresStorage
store = PostgresStorage(sys.argv[1], dsn=sys.argv[2], blocking=False)
while (data := store.dequeue()) is not None:
    sys.stdout.write(data.decode() + "\\n")
store.close()
"""


def test_several_processes_share_one_queue(pg_dsn: str, unique_name: str) -> None:
    producer = PostgresStorage(unique_name, dsn=pg_dsn)
    total = 200
    for i in range(total):
        producer.enqueue(b"%d" % i)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", DRAIN_SCRIPT, unique_name, pg_dsn],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [proc.communicate(timeout=WAIT)[0].split() for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    everything = [item for out in outputs for item in out]
    assert sorted(everything, key=int) == [str(i) for i in range(total)]
    producer.close()


# -- results -------------------------------------------------------------------------------
def test_wait_result_is_woken_by_notify(pg_dsn: str, unique_name: str, admin: Any) -> None:
    waiter = PostgresStorage(unique_name, dsn=pg_dsn)
    writer = PostgresStorage(unique_name, dsn=pg_dsn)
    outcome: dict[str, Any] = {}

    def target() -> None:
        # max_delay=20: without the NOTIFY the key would be re-checked only after 20 s.
        outcome["ok"] = waiter.wait_result("res-1", timeout=WAIT, max_delay=20)
        outcome["done"] = time.monotonic()
        listener = waiter._local.listener  # this thread's LISTEN connection
        outcome["listening"] = listener.execute("select pg_listening_channels()").fetchall()

    thread = threading.Thread(target=target)
    thread.start()
    try:
        wait_for_listener(admin, waiter.result_channel)
        writer.put_data("other-key", b"x", is_result=True)  # not ours: keeps waiting
        sent = time.monotonic()
        writer.put_data("res-1", b"value", is_result=True)
        thread.join(WAIT + 5)
        assert outcome["ok"] is True and outcome["done"] - sent < 10
        assert waiter.peek_data("res-1") == b"value"
        # The waiter stopped listening, so notifications do not pile up for it.
        assert outcome["listening"] == []
    finally:
        waiter.flush_all()
        waiter.close()
        writer.close()


def test_wait_result_timeouts(storage: PostgresStorage) -> None:
    assert storage.wait_result("missing", timeout=0) is False
    assert getattr(storage._local, "listener", None) is None  # 0 checked once, no LISTEN
    assert storage.wait_result("missing", timeout=0.2) is False
    storage.put_data("present", b"1", is_result=True)
    assert storage.wait_result("present", timeout=0) is True


# -- ttl -----------------------------------------------------------------------------------
def test_ttl_uses_a_separate_huey_ng_table(pg_dsn: str, prefix: str, admin: Any) -> None:
    storage = PostgresStorage("q", dsn=pg_dsn, table_prefix=prefix)
    expiry_table = f"{prefix}ng_kv_expiry"
    assert storage.put_if_empty("plain", b"1") is True
    assert admin.execute("select to_regclass(%s)", (expiry_table,)).fetchone() == (None,)
    assert storage.put_if_empty("lock", b"1", ttl=0.3) is True
    assert admin.execute("select to_regclass(%s)", (expiry_table,)).fetchone()[0]
    # The value itself sits in upstream's kv table, so upstream readers see the lock.
    row = admin.execute(f"select value from {prefix}_kv where key = 'lock'").fetchone()
    assert bytes(row[0]) == b"1"
    assert storage.put_if_empty("lock", b"2") is False
    deadline = time.monotonic() + WAIT
    while storage.has_data_for_key("lock") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert storage.peek_data("lock") is EmptyData
    assert storage.result_items() == {"plain": b"1"} and storage.result_store_size() == 1
    assert storage.put_if_empty("lock", b"3") is True  # replaces the expired row
    # The old deadline belonged to the replaced row: the new value does not expire.
    time.sleep(0.4)
    assert storage.peek_data("lock") == b"3"
    assert storage.delete_data("lock") is True
    assert storage.put_if_empty("lock", b"4", ttl=30) is True
    storage.put_data("lock", b"5")  # an upsert makes a new row: the deadline stops applying
    assert storage.pop_data("lock") == b"5"
    storage.flush_all()
    assert admin.execute(f"select count(*) from {expiry_table}").fetchone() == (0,)
    with pytest.raises(ValueError, match="ttl"):
        storage.put_if_empty("x", b"1", ttl=-1)
    storage.close()


def test_ttl_lock_is_exclusive_across_threads(storage: PostgresStorage) -> None:
    wins: list[int] = []

    def grab(i: int) -> None:
        store = PostgresStorage(storage.name, dsn=storage.dsn)
        if store.put_if_empty("race", b"%d" % i, ttl=30):
            wins.append(i)
        store.close()

    threads = [threading.Thread(target=grab, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert len(wins) == 1


# -- connections ---------------------------------------------------------------------------
def test_connection_factory(pg_dsn: str, unique_name: str) -> None:
    made: list[Any] = []

    def factory() -> Any:
        conn = psycopg.connect(pg_dsn)
        made.append(conn)
        return conn

    storage = PostgresStorage(unique_name, connection=factory)
    storage.enqueue(b"x")
    assert storage.dequeue() == b"x"
    assert made and all(conn.autocommit for conn in made)
    storage.close()
    assert all(conn.closed for conn in made)


def test_configuration_errors(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        PostgresStorage("q", dsn=pg_dsn, connection=lambda: None)
    with pytest.raises(ConfigurationError, match="callable"):
        PostgresStorage("q", connection="dbname=test")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="read_timeout"):
        PostgresStorage("q", dsn=pg_dsn, read_timeout=0)
    with pytest.raises(ConfigurationError, match="table_prefix"):
        PostgresStorage("q", dsn=pg_dsn, table_prefix="---")
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'huey-ng\[postgres\]'"):
        PostgresStorage("q", dsn=pg_dsn)


def test_threads_get_their_own_connections(storage: PostgresStorage) -> None:
    # Keep the connection objects themselves: a finished thread's connection could be
    # freed and its id() reused by the next thread's, which would look like sharing.
    seen: list[Any] = []

    def work() -> None:
        storage.put_data("k", b"v")
        seen.append(storage._conn())

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert len(seen) == 3
    assert all(a is not b for i, a in enumerate(seen) for b in seen[i + 1 :])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_opens_its_own_connection(storage: PostgresStorage) -> None:
    storage.enqueue(b"parent")  # the parent now holds an open connection
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 1
        try:
            storage.enqueue(b"child")
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # The parent's own connection still works after the child used and left its copy.
    assert sorted(storage.enqueued_items()) == [b"child", b"parent"]
