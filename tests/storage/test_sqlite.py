"""SQLite-specific behaviour: upstream's exact schema, pragmas, strict FIFO, deferred DDL,
locking between connections and several processes sharing one database file."""

from __future__ import annotations

import datetime
import importlib.util
import multiprocessing
import os
import re
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from huey.constants import EmptyData
from huey.exceptions import ConfigurationError
from huey.storage import CySqliteStorage, SqliteStorage
from huey.storage._sqlite import EXPIRY_TABLE
from tests.conftest import WIRE_SAMPLES

GOLDEN = WIRE_SAMPLES / "sqlite-schema.sql"
UPSTREAM_NAMES = {
    "counter",
    "kv",
    "schedule",
    "task",
    "schedule_queue_timestamp",
    "task_queue_priority_id",
}


def golden_statements() -> set[str]:
    return {line for line in GOLDEN.read_text().splitlines() if line.startswith("CREATE ")}


def schema(filename: Path) -> dict[str, str]:
    with sqlite3.connect(filename) as conn:
        rows = conn.execute("select name, sql from sqlite_master where sql is not null")
        return {name: sql for name, sql in rows}


def pragma(storage: SqliteStorage, name: str) -> Any:
    return storage._read(f"pragma {name}")[0][0]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "huey.db"


def test_schema_is_exactly_upstreams(db: Path) -> None:
    storage = SqliteStorage("demo", filename=str(db))
    storage.put_if_empty("lock", b"1", ttl=60)  # creates huey-ng's extra table
    tables = schema(db)
    upstream = {name: sql for name, sql in tables.items() if name in UPSTREAM_NAMES}
    assert set(upstream) == UPSTREAM_NAMES
    assert {sql + ";" for sql in upstream.values()} == golden_statements()
    # huey-ng's own tables (and their automatic indexes) use a prefix of their own.
    extra = set(tables) - UPSTREAM_NAMES
    assert extra == {EXPIRY_TABLE}
    assert all(name.startswith("hueyng_") for name in extra)
    storage.close()


def test_default_pragmas(db: Path) -> None:
    storage = SqliteStorage("demo", filename=str(db))
    assert pragma(storage, "journal_mode") == "wal"
    assert pragma(storage, "cache_size") == -8000
    storage.close()
    fresh = sqlite3.connect(db)
    default_sync = fresh.execute("pragma synchronous").fetchone()[0]
    fresh.close()
    storage = SqliteStorage("demo", filename=str(db), fsync=None)
    assert pragma(storage, "synchronous") == default_sync
    storage.close()


@pytest.mark.parametrize(("fsync", "expected"), [(True, 2), (False, 0)])
def test_fsync_sets_synchronous(db: Path, fsync: bool, expected: int) -> None:
    storage = SqliteStorage("demo", filename=str(db), fsync=fsync, cache_mb=16)
    assert pragma(storage, "synchronous") == expected
    assert pragma(storage, "cache_size") == -16000
    storage.close()


def test_journal_mode_none_is_left_alone(db: Path) -> None:
    storage = SqliteStorage("demo", filename=str(db), journal_mode=None, cache_mb=0)
    assert pragma(storage, "journal_mode") == "delete"
    assert (
        pragma(storage, "cache_size")
        == sqlite3.connect(":memory:").execute("pragma cache_size").fetchone()[0]
    )
    storage.close()


def task_ids(db: Path) -> list[int]:
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("select id from task order by id")]


@pytest.mark.parametrize(("strict", "reused"), [(False, True), (True, False)])
def test_strict_fifo_never_reuses_ids(db: Path, strict: bool, reused: bool) -> None:
    storage = SqliteStorage("demo", filename=str(db), strict_fifo=strict)
    assert ("autoincrement" in schema(db)["task"]) is strict
    storage.enqueue(b"a")
    storage.enqueue(b"b")
    first_ids = task_ids(db)
    assert storage.dequeue() == b"a"
    assert storage.dequeue() == b"b"
    storage.enqueue(b"c")
    assert (task_ids(db)[0] in first_ids) is reused
    assert storage.dequeue() == b"c"
    storage.close()


def test_create_tables_false_then_initialize_schema(db: Path) -> None:
    storage = SqliteStorage("demo", filename=str(db), create_tables=False)
    assert not set(schema(db)) & UPSTREAM_NAMES
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        storage.enqueue(b"x")
    storage.initialize_schema()
    assert set(schema(db)) >= UPSTREAM_NAMES
    storage.enqueue(b"x")
    assert storage.dequeue() == b"x"
    storage.initialize_schema()  # idempotent
    storage.close()


def test_queues_are_kept_apart_by_name(db: Path) -> None:
    one = SqliteStorage("one", filename=str(db))
    two = SqliteStorage("two", filename=str(db))
    one.enqueue(b"for-one")
    one.put_data("k", b"1")
    one.incr("c")
    assert two.queue_size() == 0 and two.dequeue() is None
    assert two.peek_data("k") is EmptyData
    assert two.incr("c") == 1
    two.flush_all()
    assert one.dequeue() == b"for-one"
    assert one.peek_data("k") == b"1"
    one.close()
    two.close()


def test_read_schedule_in_order_across_delete_chunks(db: Path) -> None:
    storage = SqliteStorage("demo", filename=str(db))
    base = datetime.datetime(2030, 1, 1, 12, 0, 0)
    expected = []
    for i in range(1200):
        # Several items share each timestamp: ties are broken by insertion order (id).
        ts = base + datetime.timedelta(seconds=(1199 - i) // 3)
        storage.add_to_schedule(b"%04d" % i, ts)
    rows = storage._read("select data from schedule order by timestamp, id")
    expected = [bytes(row[0]) for row in rows]
    got = storage.read_schedule(base + datetime.timedelta(days=1))
    assert len(got) == 1200
    assert got == expected
    assert storage.schedule_size() == 0
    storage.close()


def test_ttl_lives_in_its_own_table_and_expired_keys_are_cleaned(db: Path) -> None:
    storage = SqliteStorage("demo", filename=str(db))
    assert storage.put_if_empty("demo.lock.x", b"1", ttl=1) is True
    with sqlite3.connect(db) as conn:
        # Upstream readers see a normal kv row (the lock is held for them too).
        assert conn.execute("select value from kv where key = 'demo.lock.x'").fetchone() == (b"1",)
        assert conn.execute(f"select count(*) from {EXPIRY_TABLE}").fetchone() == (1,)
    deadline = time.monotonic() + 10
    while storage.has_data_for_key("demo.lock.x") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert storage.result_store_size() == 0
    assert storage.put_if_empty("demo.lock.x", b"2") is True
    with sqlite3.connect(db) as conn:
        assert conn.execute("select value from kv where key = 'demo.lock.x'").fetchone() == (b"2",)
        assert conn.execute(f"select count(*) from {EXPIRY_TABLE}").fetchone() == (0,)
    storage.close()


def test_ttl_written_by_another_connection_is_honoured(db: Path) -> None:
    writer = SqliteStorage("demo", filename=str(db))
    reader = SqliteStorage("demo", filename=str(db))
    assert reader.put_if_empty("other", b"v") is True  # reader has seen no expiry table yet
    assert writer.put_if_empty("k", b"v", ttl=1) is True
    assert reader.has_data_for_key("k") is True
    deadline = time.monotonic() + 10
    while reader.has_data_for_key("k") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert reader.peek_data("k") is EmptyData
    assert reader.put_if_empty("k", b"mine") is True
    writer.close()
    reader.close()


def test_put_if_empty_rejects_a_non_positive_ttl(db: Path) -> None:
    storage = SqliteStorage("demo", filename=str(db))
    with pytest.raises(ValueError, match="ttl"):
        storage.put_if_empty("k", b"v", ttl=0)
    storage.close()


def test_close_reports_and_reopens(db: Path) -> None:
    storage = SqliteStorage("demo", filename=str(db))
    assert storage.close() is True
    assert storage.close() is False
    storage.enqueue(b"after-close")  # reopens lazily
    assert storage.dequeue() == b"after-close"
    assert storage.close() is True


def test_write_waits_for_another_connections_exclusive_lock(db: Path) -> None:
    storage = SqliteStorage("demo", filename=str(db), timeout=0.1)
    blocker = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    blocker.execute("begin exclusive")
    released = threading.Event()

    def release_later() -> None:
        time.sleep(0.4)
        blocker.execute("commit")
        released.set()

    thread = threading.Thread(target=release_later)
    thread.start()
    try:
        # The busy timeout (0.1 s) alone is too short: the retries carry it through.
        storage.enqueue(b"patient")
    finally:
        thread.join(30)
        blocker.close()
    assert released.is_set()
    assert storage.dequeue() == b"patient"
    storage.close()


def _worker(filename: str, role: str, index: int, out_dir: str) -> None:
    """Runs in a forked child, using the storage object inherited from the parent."""
    storage = _SHARED[filename]
    if role == "producer":
        for i in range(80):
            storage.enqueue(b"p%d-%03d" % (index, i), priority=i % 3)
        return
    taken: list[bytes] = []
    idle_since = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        data = storage.dequeue()
        if data is not None:
            taken.append(data)
            idle_since = None
            continue
        if os.path.exists(os.path.join(out_dir, "producers-done")):
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since > 0.5:
                break
        time.sleep(0.01)
    Path(out_dir, f"consumer-{index}.txt").write_bytes(b"\n".join(taken))


_SHARED: dict[str, SqliteStorage] = {}


def test_several_processes_share_one_file(db: Path, tmp_path: Path) -> None:
    storage = SqliteStorage("demo", filename=str(db))
    storage.enqueue(b"opened-in-parent")  # the children inherit an open connection
    _SHARED[str(db)] = storage
    ctx = multiprocessing.get_context("fork")
    try:
        consumers = [
            ctx.Process(target=_worker, args=(str(db), "consumer", i, str(tmp_path)))
            for i in range(2)
        ]
        producers = [
            ctx.Process(target=_worker, args=(str(db), "producer", i, str(tmp_path)))
            for i in range(3)
        ]
        for process in consumers + producers:
            process.start()
        for process in producers:
            process.join(60)
            assert process.exitcode == 0
        Path(tmp_path, "producers-done").touch()
        for process in consumers:
            process.join(90)
            assert process.exitcode == 0
    finally:
        _SHARED.pop(str(db), None)
    taken = []
    for i in range(2):
        content = Path(tmp_path, f"consumer-{i}.txt").read_bytes()
        taken.extend(content.split(b"\n") if content else [])
    expected = [b"opened-in-parent"] + [b"p%d-%03d" % (p, i) for p in range(3) for i in range(80)]
    assert len(taken) == len(expected), "an item was lost or taken twice"
    assert sorted(taken) == sorted(expected)
    assert storage.queue_size() == 0
    # The parent's connection still works after the children used theirs.
    storage.put_data("k", b"v")
    assert storage.peek_data("k") == b"v"
    storage.close()


def test_cysqlite_storage_needs_the_cysqlite_module(db: Path) -> None:
    if importlib.util.find_spec("cysqlite") is None:
        with pytest.raises(ConfigurationError, match="cysqlite"):
            CySqliteStorage("demo", filename=str(db))
        assert not db.exists()
        return
    storage = CySqliteStorage("demo", filename=str(db), pragmas={"cache_size": -2000})
    storage.enqueue(b"x")
    assert storage.dequeue() == b"x"
    assert pragma(storage, "journal_mode") == "wal"
    assert pragma(storage, "cache_size") == -2000
    storage.close()


def test_golden_file_is_present() -> None:
    statements = golden_statements()
    assert len(statements) == 6
    assert all(re.match(r"CREATE (TABLE|INDEX) ", sql) for sql in statements)
