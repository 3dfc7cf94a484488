"""The storage layouts of the wire-samples' fixed scenario, replayed at the storage level.

Upstream 3.5.4 ran one scenario against each storage (2 tasks enqueued, 1 scheduled - which
huey enqueues and the consumer's scheduler later moves -, a value put, a result stored, a
task class and a task id revoked, a counter +3, lock "my-lock" held) and recorded what it
left behind. Replaying the same storage calls on huey-ng's SqliteStorage and FileStorage
must leave the same tables and row counts, and the same file names and sizes.
"""

from __future__ import annotations

import ast
import re
import sqlite3
from pathlib import Path

import pytest

from huey.serializer import Serializer
from huey.storage import BaseStorage, FileStorage, SqliteStorage
from huey.storage import _file as file_module
from tests.conftest import WIRE_SAMPLES

SAMPLES = WIRE_SAMPLES
RESULT_KEY = "00000000-0000-0000-0000-0000000000aa"
SERIALIZER = Serializer()


def redis_value_sizes() -> dict[str, int]:
    """Value sizes per key, from RedisExpireHuey's string keys ``huey.r.demo.<key>``."""
    sizes = {}
    for line in (SAMPLES / "redis-layout.txt").read_text().splitlines():
        match = re.match(r"huey\.r\.demo\.(\S+)\s+string\s+(\d+)", line)
        if match:
            sizes[match.group(1)] = int(match.group(2))
    return sizes


def run_scenario(storage: BaseStorage, messages: list[bytes]) -> None:
    """The storage calls huey makes for the recorded scenario, with same-sized values."""
    sizes = redis_value_sizes()
    for message in messages:  # two tasks, then the scheduled one (enqueued with its eta)
        storage.enqueue(message)
    storage.put_data("user-key", b"u" * sizes["user-key"])
    storage.put_data(RESULT_KEY, SERIALIZER.serialize(3), is_result=True)
    storage.put_data("rt:__main__.add", SERIALIZER.serialize((None, False)))
    storage.put_data("r:00000000-0000-0000-0000-000000000002", SERIALIZER.serialize((None, False)))
    storage.incr("a-counter", 3)
    assert storage.put_if_empty("demo.lock.my-lock", SERIALIZER.serialize("1")) is True


def test_values_have_the_recorded_sizes() -> None:
    sizes = redis_value_sizes()
    assert len(SERIALIZER.serialize(3)) == sizes[RESULT_KEY]
    assert len(SERIALIZER.serialize("1")) == sizes["demo.lock.my-lock"]
    assert len(SERIALIZER.serialize((None, False))) == sizes["rt:__main__.add"]


def golden_sqlite_counts() -> dict[str, tuple[int, list[str]]]:
    counts = {}
    for line in (SAMPLES / "sqlite-schema.sql").read_text().splitlines():
        match = re.match(r"-- (\w+): (\d+) rows; columns (\[.*\])", line)
        if match:
            counts[match.group(1)] = (int(match.group(2)), ast.literal_eval(match.group(3)))
    return counts


def test_sqlite_tables_and_row_counts(tmp_path: Path) -> None:
    db = tmp_path / "huey.db"
    storage = SqliteStorage("demo", filename=str(db))
    run_scenario(storage, [b"m1", b"m2", b"m3"])
    storage.close()
    golden = golden_sqlite_counts()
    assert set(golden) == {"counter", "kv", "schedule", "task"}
    with sqlite3.connect(db) as conn:
        for table, (rows, columns) in golden.items():
            assert conn.execute(f"select count(*) from {table}").fetchone()[0] == rows, table
            info = conn.execute(f"pragma table_info({table})").fetchall()
            assert [column[1] for column in info] == columns
        assert conn.execute("pragma journal_mode").fetchone()[0] == "wal"
        assert conn.execute("select value from counter where key = 'a-counter'").fetchone() == (3,)


def golden_files() -> dict[str, int]:
    files = {}
    for line in (SAMPLES / "file-layout.txt").read_text().splitlines():
        match = re.match(r"store/(\S+)\s+\((\d+) bytes\)", line)
        if match:
            files[match.group(1)] = int(match.group(2))
    return files


def test_file_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    golden = golden_files()
    queue_golden = sorted(name for name in golden if name.startswith("queue/"))
    stamps = sorted({int(name.split("-")[1][:12], 16) for name in queue_golden})
    # The recorded run enqueued the first two messages within one millisecond.
    clock = iter([(stamps[0] + 0.1) / 1000, (stamps[0] + 0.5) / 1000, (stamps[1] + 0.1) / 1000])
    messages = [b"q" * golden[name] for name in queue_golden]
    root = tmp_path / "store"
    storage = FileStorage("demo", path=str(root))
    with monkeypatch.context() as patch:
        patch.setattr(file_module.time, "time", lambda: next(clock))
        for message in messages:
            storage.enqueue(message)
    run_scenario(storage, [])
    found = {
        str(path.relative_to(root)): path.stat().st_size
        for path in root.rglob("*")
        if path.is_file()
    }
    assert found == golden
