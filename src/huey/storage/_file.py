"""File storage: a directory tree shared through one exclusive lock (spec §15.7).

The layout is upstream huey's, byte for byte, so upstream and huey-ng can share a store::

    <path>/.lock                           the global lock (fcntl flock)
    <path>/queue/ffff-01a20b9ced9a[.001]   '%04x-%012x' % (65535 - priority, epoch ms)
    <path>/schedule/01a20b9ced9a[.001]     '%012x' % epoch ms of the (local) naive time
    <path>/results/<c1>/<c2>/<md5(key)>    4-byte big-endian key length + key + value
    <path>/counters/<md5(key)>             the counter as decimal text

huey-ng's own state lives beside it in ``<path>/hueyng/``, each directory created when
first needed::

    kv-expiry/<md5(key)>        expiry (epoch seconds as text) of put_if_empty(ttl=...) keys
    leases/<token>/<sha1>-<pppp>-<n>
                                a taken, unacknowledged message (moved out of queue/ by one
                                rename): ``pppp`` is the priority prefix of its queue file
                                name, ``n`` its delivery count; the directory's mtime is the
                                lease expiry
    deliveries/<sha1>           the delivery count (decimal text) of a message given back to
                                the queue (expired or released), until it is acknowledged
    dead/<ns>-<rand>            a dead letter: '>dI' (timestamp, reason length), reason, data
    claims/<md5(key)>           an empty file whose mtime is the claim's expiry
    named-leases/<md5(key)>     the owner (utf-8); the mtime is the lease's expiry

An upstream consumer sharing the store sees only ``queue/``, so it never takes a message
that a huey-ng worker holds under a lease.
"""

from __future__ import annotations

import datetime
import os
import shutil
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

from huey.constants import EmptyData
from huey.storage._base import BaseStorage, Delivery
from huey.storage._file_leases import MAX_PRIORITY, TMP, FileLeasesMixin, _md5
from huey.utils import FileLock


def _epoch_ms(ts: datetime.datetime) -> int:
    # Upstream reads the naive datetime as local time (time.mktime), as Redis does.
    return int(time.mktime(ts.timetuple())) * 1000 + ts.microsecond // 1000


def _validate_priority(priority: Any) -> int:
    if priority is None:
        return 0
    try:
        value = int(priority)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(
            f"FileStorage priority must be an integer from 0 to 65535, got {priority!r}"
        )
    if not 0 <= value <= MAX_PRIORITY:
        raise ValueError(
            f"FileStorage priority must be from 0 to 65535 (floats are truncated), got {priority!r}"
        )
    return value


class FileStorage(FileLeasesMixin, BaseStorage):
    """Storage in a directory: every operation holds one global exclusive lock.

    :param name: queue name (the ``path`` is what keeps stores apart).
    :param path: the directory; created if missing, must not be a regular file.
    :param levels: number of one-hex-character directory levels above result files (0-4).
    :param use_thread_lock: lock with a ``threading.Lock`` instead of ``<path>/.lock``;
        only for thread or greenlet workers of a single process.
    :raises ValueError: when ``path`` is missing or not a directory, or ``levels`` is not
        an integer from 0 to 4.
    """

    def __init__(
        self,
        name: str = "huey",
        path: str | os.PathLike[str] | None = None,
        levels: int = 2,
        use_thread_lock: bool = False,
        **storage_kwargs: Any,
    ) -> None:
        super().__init__(name)
        if path is None:
            raise ValueError("FileStorage needs a directory: pass path='/some/dir'")
        self.path = os.fspath(path)
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise ValueError(f"FileStorage path {self.path!r} exists and is not a directory")
        if isinstance(levels, bool) or not isinstance(levels, int) or not 0 <= levels <= 4:
            raise ValueError(f"FileStorage levels must be an integer from 0 to 4, got {levels!r}")
        self.levels = levels
        self.queue_path = os.path.join(self.path, "queue")
        self.schedule_path = os.path.join(self.path, "schedule")
        self.result_path = os.path.join(self.path, "results")
        self.counter_path = os.path.join(self.path, "counters")
        ng_path = os.path.join(self.path, "hueyng")
        self.expiry_path = os.path.join(ng_path, "kv-expiry")
        # huey-ng's delivery state; each directory is created when first written.
        self.lease_path = os.path.join(ng_path, "leases")
        self.delivery_path = os.path.join(ng_path, "deliveries")
        self.dead_path = os.path.join(ng_path, "dead")
        self.claim_path = os.path.join(ng_path, "claims")
        self.named_lease_path = os.path.join(ng_path, "named-leases")
        self._ng_dirs = (
            self.lease_path,
            self.delivery_path,
            self.dead_path,
            self.claim_path,
            self.named_lease_path,
        )
        for directory in (self.queue_path, self.schedule_path, self.result_path):
            os.makedirs(directory, exist_ok=True)
        os.makedirs(self.counter_path, exist_ok=True)
        self.lock: AbstractContextManager[Any]
        if use_thread_lock:
            self.lock = threading.Lock()
        else:
            self.lock = FileLock(os.path.join(self.path, ".lock"))

    # -- file helpers (call with the lock held) -----------------------------------------
    @staticmethod
    def _write_file(filename: str, data: bytes) -> None:
        """Write via a temporary file and a rename, so readers never see half a file."""
        tmp = filename + TMP
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, filename)

    @staticmethod
    def _read_file(filename: str) -> bytes | None:
        try:
            with open(filename, "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            return None

    @staticmethod
    def _unlink(filename: str) -> bool:
        try:
            os.unlink(filename)
            return True
        except FileNotFoundError:
            return False

    @staticmethod
    def _names(directory: str) -> list[str]:
        """Sorted entry names of ``directory``, without files being written or taken."""
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return []
        return sorted(name for name in names if not name.endswith(TMP))

    @staticmethod
    def _free_name(directory: str, base: str) -> str:
        """``base``, or ``base.001``, ``base.002``... on a collision.

        Taking a name past every existing one keeps FIFO order even when the first names
        of the series were already dequeued.
        """

        def candidate(i: int) -> str:
            return os.path.join(directory, base if i == 0 else f"{base}.{i:03d}")

        i = 0
        while os.path.exists(candidate(i)) or os.path.exists(candidate(i + 1)):
            i += 1
        return candidate(i)

    def _clear_dir(self, directory: str) -> None:
        if os.path.isdir(directory):
            shutil.rmtree(directory)
        os.makedirs(directory, exist_ok=True)

    # -- queue ---------------------------------------------------------------------------
    def enqueue(self, data: bytes, priority: float | None = None) -> None:
        """Write a message file; ``priority`` must be an integer from 0 to 65535."""
        value = _validate_priority(priority)
        with self.lock:
            self._enqueue_locked(data, value)

    def _enqueue_locked(self, data: bytes, priority: int) -> None:
        base = f"{MAX_PRIORITY - priority:04x}-{int(time.time() * 1000):012x}"
        self._write_file(self._free_name(self.queue_path, base), data)

    def enqueue_once(
        self, key: str, ttl: float, data: bytes, priority: float | None = None
    ) -> bool:
        """Claim ``key`` and enqueue ``data`` under one hold of the lock."""
        value = _validate_priority(priority)
        with self.lock:
            if not self._claim_locked(key, ttl):
                return False
            self._enqueue_locked(data, value)
            return True

    def dequeue(self) -> bytes | None:
        """Take the first message file in name order (highest priority, oldest first)."""
        with self.lock:
            names = self._names(self.queue_path)
            if not names:
                return None
            filename = os.path.join(self.queue_path, names[0])
            taken = filename + TMP
            os.rename(filename, taken)
            with open(taken, "rb") as fh:
                data = fh.read()
            os.unlink(taken)
            return data

    def queue_size(self) -> int:
        """Number of message files."""
        with self.lock:
            return len(self._names(self.queue_path))

    def _read_items(self, directory: str, limit: int | None) -> list[bytes]:
        with self.lock:
            items = []
            for name in self._names(directory)[:limit]:
                data = self._read_file(os.path.join(directory, name))
                if data is not None:
                    items.append(data)
            return items

    def enqueued_items(self, limit: int | None = None) -> list[bytes]:
        """The first ``limit`` messages in dequeue order."""
        return self._read_items(self.queue_path, limit)

    def flush_queue(self) -> None:
        """Delete every message file."""
        with self.lock:
            self._clear_dir(self.queue_path)

    # -- schedule ------------------------------------------------------------------------
    def add_to_schedule(self, data: bytes, ts: datetime.datetime) -> None:
        """Write a schedule file named after ``ts`` (read as local time) in epoch ms."""
        base = f"{_epoch_ms(ts):012x}"
        with self.lock:
            self._write_file(self._free_name(self.schedule_path, base), data)

    def read_schedule(self, ts: datetime.datetime) -> list[bytes]:
        """Remove and return every message due at or before ``ts``, soonest first."""
        with self.lock:
            items = []
            for filename in self._due_files(ts):
                data = self._read_file(filename)
                self._unlink(filename)
                if data is not None:
                    items.append(data)
            return items

    def _due_files(self, ts: datetime.datetime) -> list[str]:
        """Paths of the schedule files due at ``ts``, soonest first (lock held)."""
        cutoff = f"{_epoch_ms(ts):012x}"
        names = self._names(self.schedule_path)
        return [os.path.join(self.schedule_path, n) for n in names if n[:12] <= cutoff]

    def read_schedule_leased(self, ts: datetime.datetime, lease_seconds: float) -> list[Delivery]:
        """Move each due schedule file into a lease directory (priority 0, count 0) with one
        rename; ``requeue_expired`` queues those never acknowledged."""
        taken = []
        with self.lock:
            expiry = time.time() + lease_seconds
            for filename in self._due_files(ts):
                data = self._read_file(filename)
                if data is not None:
                    taken.append(self._lease_file(filename, data, f"{MAX_PRIORITY:04x}", 0, expiry))
        return taken

    def schedule_size(self) -> int:
        """Number of scheduled messages."""
        with self.lock:
            return len(self._names(self.schedule_path))

    def scheduled_items(self, limit: int | None = None) -> list[bytes]:
        """The first ``limit`` scheduled messages, soonest first."""
        return self._read_items(self.schedule_path, limit)

    def flush_schedule(self) -> None:
        """Delete every schedule file."""
        with self.lock:
            self._clear_dir(self.schedule_path)

    # -- key/value -----------------------------------------------------------------------
    def _result_file(self, key: str) -> str:
        digest = _md5(key)
        return os.path.join(self.result_path, *digest[: self.levels], digest)

    def _result_files(self) -> Iterator[str]:
        for root, _dirs, files in os.walk(self.result_path):
            for name in files:
                if len(name) == 32 and not name.endswith(TMP):
                    yield os.path.join(root, name)

    @staticmethod
    def _decode(raw: bytes | None) -> tuple[str, bytes] | None:
        """Split a result file into (key, value); None when missing or corrupt."""
        if raw is None or len(raw) < 4:
            return None
        (size,) = struct.unpack(">I", raw[:4])
        if len(raw) < 4 + size:
            return None
        try:
            key = raw[4 : 4 + size].decode("utf-8")
        except UnicodeDecodeError:
            return None
        return key, raw[4 + size :]

    def _expired(self, digest: str) -> bool:
        """Whether the key with this md5 has a ttl that has passed; removes it if so."""
        expiry_file = os.path.join(self.expiry_path, digest)
        raw = self._read_file(expiry_file)
        if raw is None:
            return False
        try:
            expired = float(raw) <= time.time()
        except ValueError:
            expired = False  # an unreadable expiry never hides a value
        if expired:
            self._unlink(expiry_file)
            self._unlink(os.path.join(self.result_path, *digest[: self.levels], digest))
        return expired

    def _get(self, key: str) -> bytes | type[EmptyData]:
        digest = _md5(key)
        if self._expired(digest):
            return EmptyData
        item = self._decode(self._read_file(self._result_file(key)))
        if item is None or item[0] != key:
            return EmptyData
        return item[1]

    def _put(self, key: str, value: bytes) -> None:
        filename = self._result_file(key)
        os.makedirs(os.path.dirname(filename), exist_ok=True)
        encoded = key.encode("utf-8")
        self._write_file(filename, struct.pack(">I", len(encoded)) + encoded + value)
        self._unlink(os.path.join(self.expiry_path, _md5(key)))

    def _delete(self, key: str) -> None:
        self._unlink(self._result_file(key))
        self._unlink(os.path.join(self.expiry_path, _md5(key)))

    def put_data(self, key: str, value: bytes, is_result: bool = False) -> None:
        """Write (replace) the result file of ``key``; it never expires."""
        with self.lock:
            self._put(key, value)

    def peek_data(self, key: str) -> bytes | type[EmptyData]:
        """The value of ``key``, or ``EmptyData`` (also for a corrupt file)."""
        with self.lock:
            return self._get(key)

    def pop_data(self, key: str) -> bytes | type[EmptyData]:
        """Remove and return the value of ``key``, or ``EmptyData``."""
        with self.lock:
            value = self._get(key)
            if value is not EmptyData:
                self._delete(key)
            return value

    def has_data_for_key(self, key: str) -> bool:
        """Whether ``key`` holds a readable, unexpired value."""
        with self.lock:
            return self._get(key) is not EmptyData

    def put_if_empty(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        """Atomically store ``value`` if ``key`` is absent or expired; return whether stored.

        With ``ttl`` (seconds) the key reads as absent once the ttl has passed.
        """
        if ttl is not None and ttl <= 0:
            raise ValueError(
                f"put_if_empty() ttl must be a positive number of seconds, got {ttl!r}"
            )
        with self.lock:
            if self._get(key) is not EmptyData:
                return False
            self._put(key, value)
            if ttl is not None:
                os.makedirs(self.expiry_path, exist_ok=True)
                expiry = repr(time.time() + ttl).encode("ascii")
                self._write_file(os.path.join(self.expiry_path, _md5(key)), expiry)
            return True

    def _items(self) -> dict[str, bytes]:
        items: dict[str, bytes] = {}
        for filename in list(self._result_files()):
            if self._expired(os.path.basename(filename)):
                continue
            item = self._decode(self._read_file(filename))
            if item is not None:
                items[item[0]] = item[1]
        return items

    def result_store_size(self) -> int:
        """Number of readable, unexpired keys."""
        with self.lock:
            return len(self._items())

    def result_items(self) -> dict[str, bytes]:
        """Every readable, unexpired key (str) with its raw value."""
        with self.lock:
            return self._items()

    def flush_results(self) -> None:
        """Delete every result file and every expiry time."""
        with self.lock:
            self._clear_dir(self.result_path)
            if os.path.isdir(self.expiry_path):
                shutil.rmtree(self.expiry_path)

    # -- counters ------------------------------------------------------------------------
    def _counter_file(self, key: str) -> str:
        return os.path.join(self.counter_path, _md5(key))

    def incr(self, key: str, amount: int = 1) -> int:
        """Add ``amount`` to the counter ``key`` (missing counts as 0); return the new value."""
        filename = self._counter_file(key)
        with self.lock:
            raw = self._read_file(filename)
            try:
                current = int(raw) if raw else 0
            except ValueError:
                current = 0  # a corrupt counter restarts from zero
            value = current + amount
            self._write_file(filename, str(value).encode("ascii"))
            return value

    def delete_counter(self, key: str) -> None:
        """Delete the counter ``key``."""
        with self.lock:
            self._unlink(self._counter_file(key))

    def flush_counters(self) -> None:
        """Delete every counter."""
        with self.lock:
            self._clear_dir(self.counter_path)
