"""FileStorage-specific behaviour: upstream's byte-exact layout (file names, collision
suffixes, result file format, counters), validation and corrupt files."""

from __future__ import annotations

import datetime
import hashlib
import multiprocessing
import os
import struct
import time
from pathlib import Path
from typing import Any

import pytest

from huey.constants import EmptyData
from huey.storage import FileStorage
from huey.storage import _file as file_module

NOW = 1_757_000_000.123  # a fixed wall clock, so two enqueues share one millisecond
NOW_MS = 1_757_000_000_123


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def storage(root: Path) -> FileStorage:
    return FileStorage("demo", path=str(root))


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(file_module.time, "time", lambda: NOW)


def names(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def md5(key: str) -> str:
    return hashlib.md5(key.encode()).hexdigest()


def test_directories_and_lock_file(storage: FileStorage, root: Path) -> None:
    storage.enqueue(b"x")
    assert {"queue", "schedule", "results", "counters", ".lock"} <= set(os.listdir(root))
    assert (root / ".lock").stat().st_size == 0


def test_queue_file_names_and_collision_suffixes(
    storage: FileStorage, root: Path, frozen_clock: None
) -> None:
    storage.enqueue(b"a")
    storage.enqueue(b"b")
    storage.enqueue(b"c", priority=10)
    storage.enqueue(b"d", priority=3.9)  # floats are truncated
    stamp = f"{NOW_MS:012x}"
    assert names(root / "queue") == [
        f"fff5-{stamp}",
        f"fffc-{stamp}",
        f"ffff-{stamp}",
        f"ffff-{stamp}.001",
    ]
    assert (root / "queue" / f"ffff-{stamp}.001").read_bytes() == b"b"
    assert [storage.dequeue() for _ in range(4)] == [b"c", b"d", b"a", b"b"]


def test_fifo_within_one_millisecond_after_the_head_was_taken(
    storage: FileStorage, root: Path, frozen_clock: None
) -> None:
    storage.enqueue(b"a")
    storage.enqueue(b"b")
    assert storage.dequeue() == b"a"
    storage.enqueue(b"c")  # must not take the freed name ahead of "b"
    stamp = f"{NOW_MS:012x}"
    assert names(root / "queue") == [f"ffff-{stamp}.001", f"ffff-{stamp}.002"]
    assert [storage.dequeue(), storage.dequeue()] == [b"b", b"c"]


def test_queue_files_are_named_after_the_current_time(storage: FileStorage, root: Path) -> None:
    before = int(time.time() * 1000)
    storage.enqueue(b"x", priority=65535)
    after = int(time.time() * 1000)
    (name,) = names(root / "queue")
    prefix, stamp = name.split("-")
    assert prefix == "0000"
    assert before <= int(stamp, 16) <= after


@pytest.mark.parametrize("priority", [-1, 65536, "high", float("nan"), [1]])
def test_invalid_priority_is_a_value_error(storage: FileStorage, priority: Any) -> None:
    with pytest.raises(ValueError, match="0 to 65535"):
        storage.enqueue(b"x", priority=priority)
    assert storage.queue_size() == 0


def test_schedule_file_names_use_local_time(storage: FileStorage, root: Path) -> None:
    ts = datetime.datetime(2030, 1, 2, 3, 4, 5, 678900)
    storage.add_to_schedule(b"one", ts)
    storage.add_to_schedule(b"two", ts)
    expected = int(time.mktime(ts.timetuple())) * 1000 + 678
    assert names(root / "schedule") == [f"{expected:012x}", f"{expected:012x}.001"]
    assert storage.read_schedule(ts - datetime.timedelta(milliseconds=1)) == []
    assert storage.read_schedule(ts) == [b"one", b"two"]
    assert names(root / "schedule") == []


@pytest.mark.parametrize("levels", [0, 1, 2, 4])
def test_result_file_path_and_format(root: Path, levels: int) -> None:
    storage = FileStorage("demo", path=str(root), levels=levels)
    key = "demo.lock.my-lock"
    storage.put_data(key, b"\x00value\xff")
    digest = md5(key)
    path = root.joinpath("results", *digest[:levels], digest)
    raw = path.read_bytes()
    assert raw == struct.pack(">I", len(key)) + key.encode() + b"\x00value\xff"
    assert storage.peek_data(key) == b"\x00value\xff"
    # Atomic writes leave no temporary file behind.
    assert not [p for p in root.rglob("*.tmp")]


def test_counters_are_decimal_text(storage: FileStorage, root: Path) -> None:
    assert storage.incr("a-counter", 3) == 3
    path = root / "counters" / md5("a-counter")
    assert path.read_bytes() == b"3"
    assert storage.incr("a-counter", -13) == -10
    assert path.read_bytes() == b"-10"
    storage.delete_counter("a-counter")
    assert not path.exists()


@pytest.mark.parametrize("levels", [-1, 5, "2", 2.0, True])
def test_levels_must_be_an_integer_from_0_to_4(root: Path, levels: Any) -> None:
    with pytest.raises(ValueError, match="levels"):
        FileStorage("demo", path=str(root), levels=levels)


def test_path_must_be_a_directory(tmp_path: Path) -> None:
    a_file = tmp_path / "not-a-dir"
    a_file.write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        FileStorage("demo", path=str(a_file))
    with pytest.raises(ValueError, match="path"):
        FileStorage("demo")


@pytest.mark.parametrize(
    "content",
    [b"", b"\x00\x01", struct.pack(">I", 99) + b"short", struct.pack(">I", 1) + b"\xff" + b"v"],
)
def test_corrupt_result_file_reads_as_empty(
    storage: FileStorage, root: Path, content: bytes
) -> None:
    storage.put_data("good", b"kept")
    storage.put_data("bad", b"value")
    digest = md5("bad")
    root.joinpath("results", digest[0], digest[1], digest).write_bytes(content)
    assert storage.peek_data("bad") is EmptyData
    assert storage.has_data_for_key("bad") is False
    assert storage.pop_data("bad") is EmptyData
    assert storage.result_items() == {"good": b"kept"}


def test_result_file_of_another_key_reads_as_empty(storage: FileStorage, root: Path) -> None:
    # A file whose embedded key differs (an md5 collision or a misplaced file) is not ours.
    digest = md5("mine")
    target = root.joinpath("results", digest[0], digest[1], digest)
    target.parent.mkdir(parents=True)
    target.write_bytes(struct.pack(">I", 5) + b"other" + b"v")
    assert storage.peek_data("mine") is EmptyData


def test_temporary_files_are_ignored(storage: FileStorage, root: Path) -> None:
    (root / "queue" / "0000-000000000000.tmp").write_bytes(b"being written")
    (root / "schedule" / "000000000000.tmp").write_bytes(b"being written")
    assert storage.queue_size() == 0
    assert storage.dequeue() is None
    assert storage.schedule_size() == 0
    assert storage.read_schedule(datetime.datetime.now()) == []


def test_ttl_is_kept_beside_the_result_file(storage: FileStorage, root: Path) -> None:
    key = "demo.lock.ttl"
    assert storage.put_if_empty(key, b"1", ttl=1) is True
    digest = md5(key)
    result = root.joinpath("results", digest[0], digest[1], digest)
    assert result.read_bytes() == struct.pack(">I", len(key)) + key.encode() + b"1"
    expiry = root / "hueyng" / "kv-expiry" / digest
    assert float(expiry.read_text()) > time.time()
    deadline = time.monotonic() + 10
    while storage.has_data_for_key(key) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not result.exists() and not expiry.exists()
    assert storage.put_if_empty(key, b"2") is True
    assert not expiry.exists()
    with pytest.raises(ValueError, match="ttl"):
        storage.put_if_empty("k", b"v", ttl=-1)


def test_thread_lock_mode_uses_no_lock_file(root: Path) -> None:
    storage = FileStorage("demo", path=str(root), use_thread_lock=True)
    storage.enqueue(b"x")
    storage.put_data("k", b"v")
    assert storage.dequeue() == b"x"
    assert storage.pop_data("k") == b"v"
    assert not (root / ".lock").exists()


def _produce_and_consume(path: str, index: int, out: str) -> None:
    storage = FileStorage("demo", path=path)
    for i in range(40):
        storage.enqueue(b"w%d-%02d" % (index, i))
    taken = []
    for _ in range(40):
        data = storage.dequeue()
        if data is not None:
            taken.append(data)
    Path(out).write_bytes(b"\n".join(taken))


def test_processes_share_one_store_through_the_lock_file(root: Path, tmp_path: Path) -> None:
    storage = FileStorage("demo", path=str(root))
    ctx = multiprocessing.get_context("fork")
    outs = [str(tmp_path / f"out-{i}") for i in range(3)]
    processes = [
        ctx.Process(target=_produce_and_consume, args=(str(root), i, outs[i])) for i in range(3)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    taken = [item for out in outs for item in Path(out).read_bytes().split(b"\n") if item]
    while (data := storage.dequeue()) is not None:
        taken.append(data)
    expected = [b"w%d-%02d" % (p, i) for p in range(3) for i in range(40)]
    assert len(taken) == len(expected), "an item was lost or taken twice"
    assert sorted(taken) == sorted(expected)
