"""Leased delivery on the file storage: several processes, a worker killed with SIGKILL,
concurrent requeues, and huey-ng's ``hueyng/`` directory kept beside upstream's layout."""

from __future__ import annotations

import hashlib
import os
import struct
import time
from pathlib import Path

import pytest

from huey.storage import FileStorage
from tests.storage.test_sqlite_leases import run_concurrent_requeue, run_kill_scenario

UPSTREAM_DIRS = {"queue", "schedule", "results", "counters"}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def storage(root: Path) -> FileStorage:
    return FileStorage("demo", path=str(root))


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def only(directory: Path) -> Path:
    entries = list(directory.iterdir())
    assert len(entries) == 1, entries
    return entries[0]


def test_killed_worker_leases_are_redelivered_once(root: Path, tmp_path: Path) -> None:
    run_kill_scenario(lambda: FileStorage("demo", path=str(root)), tmp_path)
    assert list((root / "hueyng" / "leases").iterdir()) == []
    assert list((root / "hueyng" / "deliveries").iterdir()) == []


def test_concurrent_requeue_from_two_processes(root: Path) -> None:
    run_concurrent_requeue(lambda: FileStorage("demo", path=str(root)))


def test_no_hueyng_directory_until_needed(storage: FileStorage, root: Path) -> None:
    storage.enqueue(b"m")
    assert storage.dequeue() == b"m"
    assert storage.dequeue_leased(5) is None
    assert storage.requeue_expired() == 0
    assert storage.dead_letters() == [] and storage.dead_letter_count() == 0
    storage.release_lease("scheduler", "me")
    storage.flush_all()
    assert set(os.listdir(root)) == UPSTREAM_DIRS | {".lock"}


def test_lease_layout_extend_and_release(storage: FileStorage, root: Path) -> None:
    storage.enqueue(b"payload", priority=10)
    before = time.time()
    delivery = storage.dequeue_leased(60)
    assert delivery is not None and delivery.token and delivery.count == 1
    assert list((root / "queue").iterdir()) == []
    lease_dir = root / "hueyng" / "leases" / delivery.token
    message = only(lease_dir)
    # 65535 - 10 as in the queue name, then the delivery count
    assert message.name == f"{sha1(b'payload')}-fff5-1"
    assert message.read_bytes() == b"payload"
    assert before + 60 <= lease_dir.stat().st_mtime <= time.time() + 60  # mtime = expiry
    assert not (root / "hueyng" / "deliveries").exists()  # a first delivery needs no file
    storage.extend_leases([delivery.token], 600)
    assert lease_dir.stat().st_mtime >= before + 600
    storage.release(delivery.token)
    assert not lease_dir.exists()
    requeued = only(root / "queue")
    assert requeued.name.startswith("fff5-") and requeued.read_bytes() == b"payload"
    assert not (root / "hueyng" / "deliveries" / sha1(b"payload")).exists()
    again = storage.dequeue_leased(60)
    assert again is not None and again.count == 1


def test_expired_lease_goes_back_to_upstreams_queue(storage: FileStorage, root: Path) -> None:
    storage.enqueue(b"low", priority=1)
    storage.enqueue(b"high", priority=7)
    first = storage.dequeue_leased(0.1)
    assert first is not None and first.data == b"high"
    time.sleep(0.3)
    assert storage.requeue_expired() == 1
    assert sorted(path.name[:4] for path in (root / "queue").iterdir()) == ["fff8", "fffe"]
    count_file = root / "hueyng" / "deliveries" / sha1(b"high")
    assert count_file.read_text() == "1"  # the count outlives the lease
    second = storage.dequeue_leased(30)
    assert second is not None and second.data == b"high" and second.count == 2
    assert only(root / "hueyng" / "leases" / str(second.token)).name.endswith("-fff8-2")
    storage.release(second.token)  # never started: back to 1
    assert count_file.read_text() == "1"
    upstream_reader = FileStorage("demo", path=str(root))
    assert upstream_reader.dequeue() == b"high"  # plain dequeue, as an upstream consumer


def test_hostile_tokens_never_touch_other_files(storage: FileStorage, root: Path) -> None:
    storage.enqueue(b"m")
    delivery = storage.dequeue_leased(30)
    assert delivery is not None and delivery.token
    victim = root / "hueyng" / "precious"
    victim.write_bytes(b"keep")
    hostile = ("..", "../precious", "../../queue", "/etc", delivery.token + "/..", None, "")
    for token in hostile:
        storage.ack(token)
        storage.release(token)
        storage.extend_leases([token] if token else [], 0.001)
    assert victim.read_bytes() == b"keep"
    assert (root / "hueyng" / "leases" / delivery.token).is_dir()
    assert storage.requeue_expired() == 0


def test_lease_dir_left_by_a_crash_is_cleaned(storage: FileStorage, root: Path) -> None:
    # A process killed between creating its lease directory and moving the message in.
    leftover = root / "hueyng" / "leases" / ("ab" * 16)
    leftover.mkdir(parents=True)
    os.utime(leftover, (time.time() - 10, time.time() - 10))
    (root / "hueyng" / "leases" / "not-a-token").mkdir()
    assert storage.requeue_expired() == 0
    assert not leftover.exists()
    assert storage.queue_size() == 0


def test_dead_letter_files(storage: FileStorage, root: Path) -> None:
    letter_id = storage.add_dead_letter(b"\x00data", "crashed: \u2603\nthrice")
    raw = (root / "hueyng" / "dead" / letter_id).read_bytes()
    timestamp, size = struct.unpack(">dI", raw[:12])
    assert raw[12 : 12 + size].decode() == "crashed: \u2603\nthrice"
    assert raw[12 + size :] == b"\x00data"
    assert abs(timestamp - time.time()) < 60
    [letter] = storage.dead_letters()
    assert letter == (letter_id, b"\x00data", "crashed: \u2603\nthrice", timestamp)
    for bad in ("../dead", "x", letter_id + "/", ""):
        assert storage.pop_dead_letter(bad) is None
    assert storage.pop_dead_letter(letter_id) == letter
    assert storage.dead_letter_count() == 0


def test_corrupt_dead_letter_is_reported_not_hidden(storage: FileStorage, root: Path) -> None:
    storage.add_dead_letter(b"ok", "fine")
    corrupt_id = "f" * 16 + "-" + "0" * 8  # sorts last
    (root / "hueyng" / "dead" / corrupt_id).write_bytes(b"\x01\x02")
    letters = storage.dead_letters()
    assert [letter.reason for letter in letters] == ["fine", "unreadable dead-letter record"]
    assert letters[1].id == corrupt_id and letters[1].data == b"\x01\x02"
    assert storage.pop_dead_letter(corrupt_id) is not None
    assert storage.dead_letter_count() == 1


def test_dead_letter_ids_keep_order_when_the_clock_steps_back(
    storage: FileStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = storage.add_dead_letter(b"1", "a")
    monkeypatch.setattr(time, "time_ns", lambda: 1_000)  # the clock steps back
    second = storage.add_dead_letter(b"2", "b")
    third = storage.add_dead_letter(b"3", "c")
    assert [letter.id for letter in storage.dead_letters()] == [first, second, third]
    assert len({first, second, third}) == 3


def test_dead_letter_drops_the_delivery_count(storage: FileStorage, root: Path) -> None:
    storage.enqueue(b"poison")
    assert storage.dequeue_leased(0.05) is not None
    time.sleep(0.2)
    assert storage.requeue_expired() == 1
    delivery = storage.dequeue_leased(30)
    assert delivery is not None and delivery.count == 2
    assert (root / "hueyng" / "deliveries" / sha1(b"poison")).exists()
    storage.add_dead_letter(delivery.data, "poison")
    storage.ack(delivery.token)
    assert list((root / "hueyng" / "deliveries").iterdir()) == []
    assert list((root / "hueyng" / "leases").iterdir()) == []


def test_claims_and_named_leases_on_disk(storage: FileStorage, root: Path) -> None:
    for minute in range(10):
        assert storage.claim(f"periodic:job:{minute}", 0.05)
    time.sleep(0.2)
    assert storage.claim("periodic:job:next", 30)
    claim = only(root / "hueyng" / "claims")  # expired claims were swept
    assert claim.name == hashlib.md5(b"periodic:job:next").hexdigest()
    assert claim.stat().st_mtime > time.time() + 20
    assert storage.acquire_lease("scheduler", "owner-\u00e9", 30)
    lease = only(root / "hueyng" / "named-leases")
    assert lease.read_bytes() == "owner-\u00e9".encode()
    storage.release_lease("scheduler", "owner-\u00e9")
    assert not lease.exists()


def test_flush_all_removes_hueyng_state_only(storage: FileStorage, root: Path) -> None:
    storage.enqueue(b"m")
    storage.enqueue(b"n")
    assert storage.dequeue_leased(30) is not None
    storage.add_dead_letter(b"x", "why")
    storage.claim("tick", 30)
    storage.acquire_lease("scheduler", "me", 30)
    storage.flush_queue()  # a leased message is not in the queue: it stays leased
    assert len(list((root / "hueyng" / "leases").iterdir())) == 1
    storage.flush_all()
    assert not any((root / "hueyng").iterdir())
    assert UPSTREAM_DIRS <= set(os.listdir(root))
    assert storage.claim("tick", 30)


def test_dead_letter_input_is_checked(storage: FileStorage) -> None:
    with pytest.raises(TypeError, match="data must be bytes"):
        storage.add_dead_letter("text", "why")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="reason must be a str"):
        storage.add_dead_letter(b"x", None)  # type: ignore[arg-type]
    assert storage.dead_letter_count() == 0
