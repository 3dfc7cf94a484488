"""SQLite's hot path: the batched take, ``apply_writes`` in one transaction, and the waits
(a blocking take and ``wait_result``) woken by commits of other processes and threads.

No timing assertions: waits are bounded generously, and "woken" is asserted as "returned
long before the read timeout it would otherwise have waited".
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from huey.constants import EmptyData
from huey.exceptions import ConfigurationError
from huey.storage import SqliteStorage
from huey.storage._sqlite import EXPIRY_TABLE

CTX = multiprocessing.get_context("fork")
#: A waiting take that is never woken would sleep this long; being woken returns far sooner.
LONG_WAIT = 30.0
WOKEN_WITHIN = 10.0


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "huey.db"


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute(sql))


def _later(filename: str, action: str, delay: float) -> None:
    """Runs in another process: after ``delay`` seconds, enqueue or store a result."""
    storage = SqliteStorage("demo", filename=filename, blocking=False)
    time.sleep(delay)
    if action == "enqueue":
        storage.enqueue(b"from-another-process", 3)
    else:
        storage.put_data("result-key", b"value", is_result=True)


def start_later(db: Path, action: str, delay: float = 0.3) -> Any:
    process = CTX.Process(target=_later, args=(str(db), action, delay))
    process.start()
    return process


# -- batch take -------------------------------------------------------------------------
def _history(storage: SqliteStorage) -> None:
    """Messages of mixed priorities, two of them delivered once before (count 2 next)."""
    for data, priority in [(b"low-1", 0), (b"high", 9), (b"mid-1", 5), (b"low-2", 0)]:
        storage.enqueue(data, priority)
    storage.enqueue(b"crashed", 5)
    storage.enqueue(b"released", 1)
    crashed = storage.dequeue_leased(0.05)  # "high"
    assert crashed is not None and crashed.data == b"high"
    for _ in range(2):  # mid-1 then crashed: released without a count, then taken again
        taken = storage.dequeue_leased(30)
        assert taken is not None
        storage.release(taken.token)
    time.sleep(0.2)
    assert storage.requeue_expired() == 1  # "high" comes back with count 1 remembered


def test_batch_take_matches_single_takes_in_order_and_counts(tmp_path: Path) -> None:
    single = SqliteStorage("demo", filename=str(tmp_path / "one.db"), blocking=False)
    batch = SqliteStorage("demo", filename=str(tmp_path / "many.db"), blocking=False)
    _history(single)
    _history(batch)
    one_by_one = []
    while (delivery := single.dequeue_leased(30)) is not None:
        one_by_one.append((delivery.data, delivery.count))
    taken = batch.dequeue_leased_many(30, 32)
    assert [(d.data, d.count) for d in taken] == one_by_one
    assert one_by_one[0] == (b"high", 2) and [c for _, c in one_by_one[1:]] == [1] * 5
    assert len({d.token for d in taken}) == len(taken)
    assert batch.queue_size() == 0
    assert rows(tmp_path / "many.db", "select count(*) from hueyng_lease") == [(6,)]


def test_batch_take_respects_the_limit_and_leaves_the_rest(db: Path) -> None:
    storage = SqliteStorage("demo", filename=str(db), blocking=False)
    for i in range(10):
        storage.enqueue(b"m%d" % i, i % 2)
    first = storage.dequeue_leased_many(30, 4)
    assert [d.data for d in first] == [b"m1", b"m3", b"m5", b"m7"]
    assert storage.queue_size() == 6
    rest = storage.dequeue_leased_many(30, 100)
    assert [d.data for d in rest] == [b"m9", b"m0", b"m2", b"m4", b"m6", b"m8"]
    assert storage.dequeue_leased_many(30, 5) == []


def test_batch_leases_expire_and_are_acknowledged_like_single_ones(db: Path) -> None:
    storage = SqliteStorage("demo", filename=str(db), blocking=False)
    storage.enqueue(b"a")
    storage.enqueue(b"b")
    first = storage.dequeue_leased_many(0.05, 2)
    time.sleep(0.2)
    assert storage.requeue_expired() == 2
    again = storage.dequeue_leased_many(30, 2)
    assert sorted((d.data, d.count) for d in again) == [(b"a", 2), (b"b", 2)]
    storage.apply_writes([("ack", d.token) for d in again + first])
    assert rows(db, "select count(*) from hueyng_lease") == [(0,)]
    assert rows(db, "select count(*) from hueyng_delivery") == [(0,)]


# -- apply_writes ------------------------------------------------------------------------
def test_apply_writes_stores_deletes_and_acks_together(db: Path) -> None:
    storage = SqliteStorage("demo", filename=str(db), blocking=False)
    storage.put_data("revoked", b"1")
    storage.enqueue(b"task")
    delivery = storage.dequeue_leased(30)
    assert delivery is not None and delivery.token
    storage.apply_writes(
        [("put", "r1", b"one", True), ("delete", "revoked"), ("ack", delivery.token)]
    )
    assert storage.result_items() == {"r1": b"one"}
    assert rows(db, "select count(*) from hueyng_lease") == [(0,)]
    storage.apply_writes([])  # nothing to do


def test_apply_writes_is_all_or_nothing(db: Path) -> None:
    storage = SqliteStorage("demo", filename=str(db), blocking=False)
    storage.enqueue(b"task")
    delivery = storage.dequeue_leased(30)
    assert delivery is not None
    unbindable = object()  # sqlite3 cannot store it: the statement fails mid-transaction
    with pytest.raises(sqlite3.Error):
        storage.apply_writes(
            [("put", "r1", b"one", True), ("put", "r2", unbindable, True), ("ack", delivery.token)]
        )
    assert storage.result_items() == {}
    assert rows(db, "select count(*) from hueyng_lease") == [(1,)]  # not acknowledged
    with pytest.raises(ValueError, match="unknown write operation"):
        storage.apply_writes([("put", "r1", b"one", True), ("frobnicate", "x")])
    assert storage.result_items() == {}


def test_apply_writes_put_and_delete_keep_the_ttl_semantics(db: Path) -> None:
    storage = SqliteStorage("demo", filename=str(db), blocking=False)
    assert storage.put_if_empty("lock", b"held", ttl=60)
    assert storage.put_if_empty("gone", b"old", ttl=0.05)
    time.sleep(0.2)
    storage.apply_writes([("put", "lock", b"permanent", False), ("delete", "gone")])
    assert rows(db, f"select key from {EXPIRY_TABLE}") == []  # "lock" no longer expires
    assert storage.peek_data("lock") == b"permanent"
    assert storage.peek_data("gone") is EmptyData
    assert storage.put_if_empty("gone", b"new", ttl=60)


# -- waiting -----------------------------------------------------------------------------
def test_options_are_validated() -> None:
    with pytest.raises(ConfigurationError, match="read_timeout"):
        SqliteStorage("demo", filename=":memory:", read_timeout=0)
    with pytest.raises(ConfigurationError, match="poll_interval"):
        SqliteStorage("demo", filename=":memory:", poll_interval=0)
    storage = SqliteStorage("demo", filename=":memory:", blocking=False, read_timeout=0)
    assert storage.blocking is False
    assert SqliteStorage("demo", filename=":memory:").blocking is True


def test_non_blocking_take_returns_at_once(db: Path) -> None:
    storage = SqliteStorage("demo", filename=str(db), blocking=False, read_timeout=LONG_WAIT)
    started = time.monotonic()
    assert storage.dequeue() is None
    assert storage.dequeue_leased(30) is None
    assert storage.dequeue_leased_many(30, 8) == []
    assert time.monotonic() - started < WOKEN_WITHIN


def test_blocking_take_on_an_empty_queue_times_out(db: Path) -> None:
    storage = SqliteStorage("demo", filename=str(db), read_timeout=0.2)
    assert storage.dequeue_leased_many(30, 8) == []
    assert storage.dequeue() is None


@pytest.mark.parametrize("method", ["dequeue", "dequeue_leased", "dequeue_leased_many"])
def test_waiting_take_returns_what_another_process_enqueues(db: Path, method: str) -> None:
    storage = SqliteStorage("demo", filename=str(db), read_timeout=LONG_WAIT)
    process = start_later(db, "enqueue")
    try:
        started = time.monotonic()
        if method == "dequeue":
            got: Any = storage.dequeue()
        elif method == "dequeue_leased":
            got = storage.dequeue_leased(30)
            got = got.data if got is not None else None
        else:
            got = [d.data for d in storage.dequeue_leased_many(30, 8)]
        elapsed = time.monotonic() - started
    finally:
        process.join(30)
    assert got in (b"from-another-process", [b"from-another-process"])
    assert elapsed < WOKEN_WITHIN  # woken by the commit, not by the 30 s read timeout


def test_waiting_threads_share_one_poller_and_all_get_work(db: Path) -> None:
    storage = SqliteStorage("demo", filename=str(db), read_timeout=LONG_WAIT)
    got: list[bytes] = []
    lock = threading.Lock()

    def take() -> None:
        delivery = storage.dequeue_leased(30)
        with lock:
            got.append(delivery.data if delivery is not None else b"<timeout>")

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)  # let them all wait (one polls, three sleep on the condition)
    producer = SqliteStorage("demo", filename=str(db), blocking=False)
    started = time.monotonic()
    for i in range(4):
        producer.enqueue(b"job-%d" % i)
        time.sleep(0.05)
    for thread in threads:
        thread.join(LONG_WAIT + 10)
    assert sorted(got) == [b"job-0", b"job-1", b"job-2", b"job-3"]
    assert time.monotonic() - started < WOKEN_WITHIN


def test_a_commit_through_the_same_storage_wakes_its_waiters(db: Path) -> None:
    # data_version ignores the connection's own commits: the in-process bump must wake.
    storage = SqliteStorage("demo", filename=str(db), read_timeout=LONG_WAIT)
    timer = threading.Timer(0.3, storage.enqueue, (b"same-object",))
    timer.start()
    started = time.monotonic()
    assert storage.dequeue() == b"same-object"
    assert time.monotonic() - started < WOKEN_WITHIN
    timer.join()


def _inherited_take(storage: SqliteStorage, conn: Any) -> None:
    delivery = storage.dequeue_leased(30)
    conn.send(None if delivery is None else delivery.data)


def test_a_forked_child_waits_with_the_inherited_storage(db: Path) -> None:
    storage = SqliteStorage("demo", filename=str(db), read_timeout=LONG_WAIT)
    storage.enqueue(b"warm-up")  # the parent's connection and watch are in use
    assert storage.dequeue() == b"warm-up"
    parent, child = CTX.Pipe()
    process = CTX.Process(target=_inherited_take, args=(storage, child))
    process.start()
    time.sleep(0.3)
    storage.enqueue(b"for-the-child")
    assert parent.poll(WOKEN_WITHIN)
    assert parent.recv() == b"for-the-child"
    process.join(30)


def test_wait_result_wakes_when_another_process_writes(db: Path) -> None:
    storage = SqliteStorage("demo", filename=str(db))
    assert storage.wait_result("result-key", timeout=0) is False  # checks once
    process = start_later(db, "result")
    try:
        assert storage.wait_result("result-key", timeout=5) is True
    finally:
        process.join(30)
    assert storage.pop_data("result-key") == b"value"


def test_wait_result_sees_a_write_through_the_same_storage(db: Path) -> None:
    storage = SqliteStorage("demo", filename=str(db))
    timer = threading.Timer(0.2, storage.put_data, ("mine", b"v"))
    timer.start()
    assert storage.wait_result("mine", timeout=5, max_delay=5) is True
    timer.join()
    assert storage.wait_result("mine", timeout=0) is True


def test_wait_result_times_out(db: Path) -> None:
    storage = SqliteStorage("demo", filename=str(db))
    assert storage.wait_result("never", timeout=0.2) is False
    assert storage.wait_result("never", timeout=-1) is False


def _traced(storage: SqliteStorage) -> list[str]:
    statements: list[str] = []
    storage._read("select 1")  # opens the connection
    storage._conn.set_trace_callback(statements.append)
    return statements


def test_only_a_take_skips_the_fsync_wait_and_only_in_wal_mode(tmp_path: Path) -> None:
    wal = SqliteStorage("demo", filename=str(tmp_path / "w.db"), fsync=True, blocking=False)
    statements = _traced(wal)
    wal.enqueue(b"m")
    delivery = wal.dequeue_leased(30)
    assert delivery is not None
    wal.apply_writes([("put", "r", b"v", True), ("ack", delivery.token)])
    relaxed = [s for s in statements if s.startswith("pragma synchronous")]
    assert relaxed == ["pragma synchronous = normal", "pragma synchronous = 2"]  # the take
    assert wal._read("pragma synchronous")[0][0] == 2
    assert rows(tmp_path / "w.db", "select key from kv") == [("r",)]
    journal = SqliteStorage(
        "demo", filename=str(tmp_path / "j.db"), journal_mode="delete", blocking=False
    )
    statements = _traced(journal)
    journal.enqueue(b"m")
    assert journal.dequeue_leased(30) is not None
    assert not [s for s in statements if s.startswith("pragma synchronous")]
