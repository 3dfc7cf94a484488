"""Leased delivery on SQLite: several processes, a worker killed with SIGKILL, concurrent
requeues, and huey-ng's ``hueyng_*`` tables kept beside upstream's untouched schema.

``run_kill_scenario`` and ``run_concurrent_requeue`` are shared with ``test_file_leases.py``.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from huey.storage import BaseStorage, SqliteStorage
from huey.storage._sqlite_leases import NG_TABLES
from tests.conftest import WIRE_SAMPLES

Factory = Callable[[], BaseStorage]
GOLDEN = WIRE_SAMPLES / "sqlite-schema.sql"
UPSTREAM_TABLES = ("counter", "kv", "schedule", "task")
#: Lease of the worker that gets killed: short, so the survivors requeue its messages soon.
VICTIM_LEASE = 0.5
VICTIM_TAKES = 5
CTX = multiprocessing.get_context("fork")


# -- multi-process scenarios (shared with the file storage) ---------------------------------
def _victim(factory: Factory, conn: Any) -> None:
    """Take a few messages under short leases and report them; then keep taking (never
    acking) until killed, so the kill may land in the middle of a take."""
    storage = factory()
    taken = [storage.dequeue_leased(VICTIM_LEASE) for _ in range(VICTIM_TAKES)]
    conn.send([delivery.data for delivery in taken if delivery is not None])
    # Stop taking before any of its own leases can expire, so no message passes through
    # the victim twice (every delivery count stays <= 2), then hang until killed.
    stop_taking = time.monotonic() + VICTIM_LEASE / 2
    while time.monotonic() < stop_taking:
        storage.dequeue_leased(VICTIM_LEASE)
        time.sleep(0.002)
    time.sleep(60)


def _survivor(factory: Factory, out: str, stop: str) -> None:
    """Requeue expired leases, take and ack until told to stop; log '<count> <data>' lines."""
    storage = factory()
    deadline = time.monotonic() + 30
    with open(out, "ab") as log:
        while time.monotonic() < deadline:
            storage.requeue_expired()
            delivery = storage.dequeue_leased(30)
            if delivery is None:
                if os.path.exists(stop):
                    return
                time.sleep(0.01)
                continue
            storage.ack(delivery.token)
            log.write(b"%d %s\n" % (delivery.count, delivery.data))
            log.flush()
    raise SystemExit(3)  # the parent never said stop: fail visibly


def _logged(outs: list[Path]) -> list[tuple[int, bytes]]:
    records = []
    for out in outs:
        if out.exists():
            for line in out.read_bytes().splitlines():
                count, data = line.split(b" ", 1)
                records.append((int(count), data))
    return records


def run_kill_scenario(factory: Factory, tmp_path: Path, total: int = 60) -> None:
    """A worker holding leases is SIGKILLed; two survivors must ack every message once."""
    storage = factory()
    messages = [b"msg-%03d" % i for i in range(total)]
    for message in messages:
        storage.enqueue(message)
    receiver, sender = CTX.Pipe(duplex=False)
    victim = CTX.Process(target=_victim, args=(factory, sender))
    victim.start()
    assert receiver.poll(30), "the victim never reported its leases"
    held = receiver.recv()
    assert len(held) == VICTIM_TAKES
    stop = tmp_path / "stop"
    outs = [tmp_path / f"survivor-{i}.log" for i in range(2)]
    survivors = [CTX.Process(target=_survivor, args=(factory, str(out), str(stop))) for out in outs]
    for process in survivors:
        process.start()
    time.sleep(0.05)  # let the survivors and the victim compete for a moment
    os.kill(victim.pid, signal.SIGKILL)  # type: ignore[arg-type]
    victim.join(30)
    assert victim.exitcode == -signal.SIGKILL
    deadline = time.monotonic() + 30
    while len(_logged(outs)) < total and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.touch()
    for process in survivors:
        process.join(30)
        assert process.exitcode == 0
    records = _logged(outs)
    acked = sorted(data for _, data in records)
    assert acked == sorted(messages), "a message was lost or acknowledged twice"
    counts = dict((data, count) for count, data in records)
    # The killed worker's reported messages were delivered a second time; the others once,
    # or twice if it took them after reporting (a kill mid-take may also roll a take back).
    assert {counts[data] for data in held} == {2}
    assert {counts[data] for data in messages} <= {1, 2}
    assert storage.queue_size() == 0
    assert storage.requeue_expired() == 0
    storage.close()


def _requeuer(factory: Factory, barrier: Any, results: Any) -> None:
    storage = factory()
    barrier.wait(30)
    results.put(storage.requeue_expired())


def run_concurrent_requeue(factory: Factory, rounds: int = 3, total: int = 30) -> None:
    """Two processes call requeue_expired() at once: each expired lease comes back once."""
    storage = factory()
    for round_ in range(rounds):
        messages = [b"r%d-%03d" % (round_, i) for i in range(total)]
        for message in messages:
            storage.enqueue(message)
        taken = [storage.dequeue_leased(0.2) for _ in range(total)]
        assert all(taken) and storage.queue_size() == 0
        time.sleep(0.4)  # every lease has expired
        barrier = CTX.Barrier(2)
        results = CTX.Queue()
        processes = [
            CTX.Process(target=_requeuer, args=(factory, barrier, results)) for _ in range(2)
        ]
        for process in processes:
            process.start()
        counts = [results.get(timeout=30) for _ in processes]
        for process in processes:
            process.join(30)
            assert process.exitcode == 0
        assert sum(counts) == total
        assert sorted(storage.enqueued_items()) == sorted(messages)
        while (delivery := storage.dequeue_leased(30)) is not None:
            assert delivery.count == 2
            storage.ack(delivery.token)
    storage.close()


# -- SQLite ---------------------------------------------------------------------------------
@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "huey.db"


@pytest.fixture
def storage(db: Path) -> SqliteStorage:
    return SqliteStorage("demo", filename=str(db))


def tables(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("select name, sql from sqlite_master where sql is not null")
        return {name: sql for name, sql in rows}


def rows(db: Path, sql: str, *params: Any) -> list[Any]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchall()


def test_killed_worker_leases_are_redelivered_once(db: Path, tmp_path: Path) -> None:
    run_kill_scenario(lambda: SqliteStorage("demo", filename=str(db)), tmp_path)
    assert rows(db, "select count(*) from hueyng_lease") == [(0,)]
    assert rows(db, "select count(*) from hueyng_delivery") == [(0,)]


def test_concurrent_requeue_from_two_processes(db: Path) -> None:
    run_concurrent_requeue(lambda: SqliteStorage("demo", filename=str(db)))


def test_upstream_schema_is_untouched_and_extras_are_prefixed(
    storage: SqliteStorage, db: Path
) -> None:
    storage.enqueue(b"m")
    storage.dequeue_leased(5)
    storage.add_dead_letter(b"x", "why")
    assert storage.claim("tick", 5)
    assert storage.acquire_lease("scheduler", "me", 5)
    found = tables(db)
    golden = {line for line in GOLDEN.read_text().splitlines() if line.startswith("CREATE ")}
    # sqlite_sequence is SQLite's own (AUTOINCREMENT keeps dead-letter ids unique).
    upstream = {
        sql + ";" for name, sql in found.items() if not name.startswith(("hueyng_", "sqlite_"))
    }
    assert upstream == golden
    assert set(NG_TABLES) <= set(found)
    assert "hueyng_lease_queue_expires" in found  # what requeue_expired scans


def test_tables_are_created_only_when_needed(storage: SqliteStorage, db: Path) -> None:
    storage.enqueue(b"m")
    assert storage.dequeue() == b"m"
    assert storage.dequeue_leased(5) is None  # empty queue: no write at all
    assert storage.requeue_expired() == 0
    assert storage.dead_letters() == [] and storage.dead_letter_count() == 0
    assert storage.pop_dead_letter("1") is None
    storage.flush_dead_letters()
    storage.release_lease("scheduler", "me")
    storage.flush_all()
    assert not [name for name in tables(db) if name.startswith("hueyng_")]
    storage.enqueue(b"m")
    assert storage.dequeue_leased(5) is not None
    assert set(NG_TABLES) <= set(tables(db))


def test_a_leased_message_is_invisible_to_upstream_readers(
    storage: SqliteStorage, db: Path
) -> None:
    with sqlite3.connect(db) as conn:  # enqueued as upstream huey does
        conn.executemany(
            "insert into task (queue, data, priority) values ('demo', ?, ?)",
            [(b"first", 5.0), (b"second", 0.0)],
        )
    delivery = storage.dequeue_leased(30)
    assert delivery is not None and delivery.data == b"first"
    assert rows(db, "select data from task") == [(b"second",)]
    assert storage.dequeue() == b"second"  # an upstream consumer takes only the queued one
    assert rows(db, "select data, priority from hueyng_lease") == [(b"first", 5.0)]


def test_requeue_and_release_keep_a_fractional_priority(storage: SqliteStorage, db: Path) -> None:
    storage.enqueue(b"a", 2.5)
    first = storage.dequeue_leased(0.1)
    assert first is not None
    time.sleep(0.3)
    assert storage.requeue_expired() == 1
    assert rows(db, "select data, priority from task") == [(b"a", 2.5)]
    second = storage.dequeue_leased(30)
    assert second is not None and second.count == 2
    storage.release(second.token)
    assert rows(db, "select data, priority from task") == [(b"a", 2.5)]
    assert rows(db, "select count from hueyng_delivery") == [(1,)]


def test_ack_and_dead_letter_drop_the_delivery_count(storage: SqliteStorage, db: Path) -> None:
    storage.enqueue(b"a")
    storage.enqueue(b"b")
    for _ in range(2):  # first deliveries keep their count in the lease row only
        assert storage.dequeue_leased(0.05) is not None
    assert rows(db, "select count(*) from hueyng_delivery") == [(0,)]
    time.sleep(0.2)
    assert storage.requeue_expired() == 2  # the counts now outlive the leases
    assert sorted(rows(db, "select count from hueyng_delivery")) == [(1,), (1,)]
    first, second = storage.dequeue_leased(30), storage.dequeue_leased(30)
    assert first is not None and second is not None
    assert (first.count, second.count) == (2, 2)
    storage.ack(first.token)
    storage.add_dead_letter(second.data, "poison")
    assert rows(db, "select count(*) from hueyng_delivery") == [(0,)]
    storage.ack(second.token)
    assert rows(db, "select count(*) from hueyng_lease") == [(0,)]
    assert [letter.data for letter in storage.dead_letters()] == [b"b"]


def test_flush_all_clears_only_this_queues_state(db: Path) -> None:
    mine, other = (SqliteStorage(name, filename=str(db)) for name in ("mine", "other"))
    for store in (mine, other):
        store.enqueue(b"m")
        assert store.dequeue_leased(0.1) is not None
        store.add_dead_letter(b"x", "why")
        assert store.claim("tick", 30)
        assert store.acquire_lease("scheduler", "me", 30)
    mine.flush_all()
    for table in NG_TABLES:
        assert rows(db, f"select count(*) from {table} where queue = 'mine'") == [(0,)]
    assert other.dead_letter_count() == 1
    assert not other.claim("tick", 30)
    assert not other.acquire_lease("scheduler", "you", 30)
    time.sleep(0.3)
    assert mine.requeue_expired() == 0
    assert other.requeue_expired() == 1


def test_flush_queue_leaves_leases_alone(storage: SqliteStorage) -> None:
    storage.enqueue(b"m")
    assert storage.dequeue_leased(0.1) is not None
    storage.flush_queue()
    time.sleep(0.3)
    assert storage.requeue_expired() == 1


def test_expired_claims_are_swept(storage: SqliteStorage, db: Path) -> None:
    for minute in range(20):
        assert storage.claim(f"periodic:job:{minute}", 0.05)
    time.sleep(0.2)
    assert storage.claim("periodic:job:next", 30)
    assert rows(db, "select key from hueyng_claim") == [("periodic:job:next",)]


def test_named_leases_and_claims_are_per_queue(db: Path) -> None:
    first, second = (SqliteStorage(name, filename=str(db)) for name in ("q1", "q2"))
    assert first.acquire_lease("scheduler", "a", 30)
    assert second.acquire_lease("scheduler", "b", 30)
    assert first.claim("tick", 30) and second.claim("tick", 30)
    first.release_lease("scheduler", "a")
    assert not second.acquire_lease("scheduler", "a", 30)


def test_unknown_tokens_and_ids_are_ignored(storage: SqliteStorage) -> None:
    storage.enqueue(b"m")
    delivery = storage.dequeue_leased(30)
    assert delivery is not None
    for token in (None, "", "nope"):
        storage.ack(token)
        storage.release(token)
    storage.extend_leases([], 30)
    storage.extend_leases(["nope"], 30)
    letter = storage.add_dead_letter(b"x", "why")
    assert letter.isdigit()
    for bad in ("x", "", "-1", "0" + letter):
        assert storage.pop_dead_letter(bad) is None
    assert storage.dead_letter_count() == 1
    storage.ack(delivery.token)
    storage.ack(delivery.token)  # twice is harmless


def test_dead_letter_input_is_checked(storage: SqliteStorage) -> None:
    with pytest.raises(TypeError, match="data must be bytes"):
        storage.add_dead_letter("text", "why")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="reason must be a str"):
        storage.add_dead_letter(b"x", 3)  # type: ignore[arg-type]
    assert storage.dead_letter_count() == 0


def test_memory_database_tables_come_back_after_close() -> None:
    storage = SqliteStorage("demo", filename=":memory:")
    storage.enqueue(b"m")
    assert storage.dequeue_leased(30) is not None
    assert storage.close()
    storage.initialize_schema()  # a new, empty in-memory database
    storage.enqueue(b"n")
    delivery = storage.dequeue_leased(30)
    assert delivery is not None and delivery.count == 1
    assert storage.add_dead_letter(b"x", "why") == "1"
    storage.close()
