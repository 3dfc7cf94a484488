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
import hashlib
import os
import re
import shutil
import struct
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Any

from huey.constants import EmptyData
from huey.storage._base import BaseStorage, DeadLetter, Delivery
from huey.utils import FileLock

#: Suffix of files being written or taken; every listing skips them.
TMP = ".tmp"
MAX_PRIORITY = 0xFFFF
#: A lease token (the name of its directory), a dead-letter id, a queue-name priority prefix.
_TOKEN = re.compile(r"[0-9a-f]{32}\Z")
_DEAD_ID = re.compile(r"[0-9a-f]{16}-[0-9a-f]{8}\Z")
_PRIORITY = re.compile(r"[0-9a-f]{4}\Z")


def _md5(key: str) -> str:
    return hashlib.md5(key.encode("utf-8")).hexdigest()


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


class FileStorage(BaseStorage):
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
        base = f"{MAX_PRIORITY - value:04x}-{int(time.time() * 1000):012x}"
        with self.lock:
            self._write_file(self._free_name(self.queue_path, base), data)

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
        cutoff = f"{_epoch_ms(ts):012x}"
        with self.lock:
            items = []
            for name in self._names(self.schedule_path):
                if name[:12] > cutoff:
                    break
                filename = os.path.join(self.schedule_path, name)
                data = self._read_file(filename)
                self._unlink(filename)
                if data is not None:
                    items.append(data)
            return items

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

    # -- leased delivery (huey-ng state under <path>/hueyng/) ----------------------------
    supports_leases = True

    @staticmethod
    def _write_stamped(filename: str, data: bytes, mtime: float) -> None:
        """Write ``data`` with ``mtime`` (an expiry) atomically: temp file, utime, rename."""
        tmp = filename + TMP
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.utime(tmp, (mtime, mtime))
        os.replace(tmp, filename)

    @staticmethod
    def _mtime(filename: str) -> float | None:
        try:
            return os.stat(filename).st_mtime
        except FileNotFoundError:
            return None

    def _lease_dir(self, token: str | None) -> str | None:
        """The directory of lease ``token``; None for a malformed token (never a path)."""
        if not isinstance(token, str) or not _TOKEN.match(token):
            return None
        return os.path.join(self.lease_path, token)

    def _leased_message(self, lease_dir: str) -> str | None:
        """Name of the message file inside a lease directory (None if there is none)."""
        names = self._names(lease_dir)
        return names[0] if names else None

    def _set_count(self, digest: str, count: int) -> None:
        filename = os.path.join(self.delivery_path, digest)
        if count <= 0:
            self._unlink(filename)
            return
        os.makedirs(self.delivery_path, exist_ok=True)
        self._write_file(filename, str(count).encode("ascii"))

    def _get_count(self, digest: str) -> int:
        raw = self._read_file(os.path.join(self.delivery_path, digest))
        try:
            return int(raw) if raw else 0
        except ValueError:
            return 0  # a corrupt count restarts from zero

    @staticmethod
    def _lease_count(message: str) -> int:
        """The delivery count in a leased message's name (``<sha1>-<pppp>-<n>``)."""
        try:
            return max(int(message[46:]), 1)
        except ValueError:
            return 1

    def _requeue(self, lease_dir: str, message: str, count: int) -> None:
        """Move a leased message back to the queue (same priority, behind its peers); its
        delivery count ``count`` is kept in ``deliveries/``."""
        self._set_count(message[:40], count)
        prefix = message[41:45]
        if not _PRIORITY.match(prefix):
            prefix = f"{MAX_PRIORITY:04x}"  # unknown priority: requeue at priority 0
        base = f"{prefix}-{int(time.time() * 1000):012x}"
        os.rename(os.path.join(lease_dir, message), self._free_name(self.queue_path, base))
        shutil.rmtree(lease_dir, ignore_errors=True)

    def dequeue_leased(self, lease_seconds: float) -> Delivery | None:
        """Move the first queue file into ``hueyng/leases/<token>/`` for ``lease_seconds``.

        One rename moves the message, so it is never both queued and leased, nor lost. The
        lease directory's mtime is the lease expiry (wall clock, shared by processes); the
        file inside is named ``<sha1>-<priority prefix of the queue name>-<delivery count>``,
        so the count moves with the message in the same rename.
        """
        token = uuid.uuid4().hex
        lease_dir = os.path.join(self.lease_path, token)
        with self.lock:
            names = self._names(self.queue_path)
            if not names:
                return None
            filename = os.path.join(self.queue_path, names[0])
            data = self._read_file(filename)
            if data is None:
                return None
            digest = hashlib.sha1(data).hexdigest()
            prefix = names[0][:4] if _PRIORITY.match(names[0][:4]) else f"{MAX_PRIORITY:04x}"
            count = self._get_count(digest) + 1
            os.makedirs(lease_dir)
            os.rename(filename, os.path.join(lease_dir, f"{digest}-{prefix}-{count}"))
            expiry = time.time() + lease_seconds
            os.utime(lease_dir, (expiry, expiry))
            return Delivery(data, token, count)

    def ack(self, token: str | None) -> None:
        """Forget a leased message and its delivery count (unknown tokens are ignored)."""
        lease_dir = self._lease_dir(token)
        if lease_dir is None:
            return
        with self.lock:
            message = self._leased_message(lease_dir)
            if message is None:
                return
            self._unlink(os.path.join(self.delivery_path, message[:40]))
            self._unlink(os.path.join(lease_dir, message))
            shutil.rmtree(lease_dir, ignore_errors=True)

    def extend_leases(self, tokens: Iterable[str], lease_seconds: float) -> None:
        """Push the expiry (the lease directory's mtime) of these leases."""
        dirs = [d for d in map(self._lease_dir, tokens) if d is not None]
        if not dirs:
            return
        with self.lock:
            expiry = time.time() + lease_seconds
            for lease_dir in dirs:
                try:
                    os.utime(lease_dir, (expiry, expiry))
                except FileNotFoundError:
                    pass  # acked or requeued meanwhile

    def release(self, token: str | None) -> None:
        """Put a leased, unstarted message back in the queue now; it does not count."""
        lease_dir = self._lease_dir(token)
        if lease_dir is None:
            return
        with self.lock:
            message = self._leased_message(lease_dir)
            if message is None:
                return
            self._requeue(lease_dir, message, self._lease_count(message) - 1)

    def requeue_expired(self) -> int:
        """Put every expired lease back in the queue; return how many.

        Runs under the global lock, so concurrent callers requeue each lease exactly once.
        """
        requeued = 0
        with self.lock:
            now = time.time()
            for token in self._names(self.lease_path):
                lease_dir = self._lease_dir(token)
                expiry = None if lease_dir is None else self._mtime(lease_dir)
                if lease_dir is None or expiry is None or expiry > now:
                    continue
                message = self._leased_message(lease_dir)
                if message is None:
                    # Left by a process killed between mkdir and rename: nothing to requeue.
                    shutil.rmtree(lease_dir, ignore_errors=True)
                    continue
                self._requeue(lease_dir, message, self._lease_count(message))
                requeued += 1
        return requeued

    # -- dead letters, claims, named leases ----------------------------------------------
    def add_dead_letter(self, data: bytes, reason: str) -> str:
        """Set ``data`` aside in ``hueyng/dead/<id>``; ids sort oldest first."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"add_dead_letter() data must be bytes, got {type(data).__name__}")
        if not isinstance(reason, str):
            raise TypeError(f"add_dead_letter() reason must be a str, got {type(reason).__name__}")
        message = bytes(data)
        encoded = reason.encode("utf-8")
        with self.lock:
            names = self._names(self.dead_path)
            stamp = time.time_ns()
            if names:  # keep ids increasing even if the clock stepped back
                stamp = max(stamp, int(names[-1][:16], 16) + 1)
            letter_id = f"{stamp:016x}-{uuid.uuid4().hex[:8]}"
            os.makedirs(self.dead_path, exist_ok=True)
            header = struct.pack(">dI", time.time(), len(encoded))
            self._write_file(os.path.join(self.dead_path, letter_id), header + encoded + message)
            self._unlink(os.path.join(self.delivery_path, hashlib.sha1(message).hexdigest()))
        return letter_id

    def _dead_letter(self, letter_id: str) -> DeadLetter | None:
        raw = self._read_file(os.path.join(self.dead_path, letter_id))
        if raw is None:
            return None
        try:
            timestamp, size = struct.unpack(">dI", raw[:12])
            if len(raw) < 12 + size:
                raise ValueError("truncated")
            reason = raw[12 : 12 + size].decode("utf-8")
        except (struct.error, UnicodeDecodeError, ValueError):
            # Never hide a record: report it whole, with the file's time.
            stamp = self._mtime(os.path.join(self.dead_path, letter_id)) or 0.0
            return DeadLetter(letter_id, raw, "unreadable dead-letter record", stamp)
        return DeadLetter(letter_id, raw[12 + size :], reason, timestamp)

    def dead_letters(self, limit: int | None = None) -> list[DeadLetter]:
        """The first ``limit`` dead letters, oldest first."""
        with self.lock:
            letters = map(self._dead_letter, self._names(self.dead_path)[:limit])
            return [letter for letter in letters if letter is not None]

    def dead_letter_count(self) -> int:
        """Number of dead letters."""
        with self.lock:
            return len(self._names(self.dead_path))

    def pop_dead_letter(self, id: str) -> DeadLetter | None:
        """Remove and return the dead letter ``id``; None when there is none."""
        if not isinstance(id, str) or not _DEAD_ID.match(id):
            return None
        with self.lock:
            letter = self._dead_letter(id)
            if letter is not None:
                self._unlink(os.path.join(self.dead_path, id))
            return letter

    def flush_dead_letters(self) -> None:
        """Delete every dead letter."""
        with self.lock:
            shutil.rmtree(self.dead_path, ignore_errors=True)

    def claim(self, key: str, ttl: float) -> bool:
        """Atomically take ``key`` for ``ttl`` seconds; False while it is taken.

        ``hueyng/claims/<md5(key)>`` is an empty file whose mtime is the expiry.
        """
        filename = os.path.join(self.claim_path, _md5(key))
        with self.lock:
            now = time.time()
            # Claim keys are usually one-off (a periodic tick each): sweep expired ones.
            for name in self._names(self.claim_path):
                path = os.path.join(self.claim_path, name)
                expiry = self._mtime(path)
                if expiry is not None and expiry <= now:
                    self._unlink(path)
            if os.path.exists(filename):
                return False
            os.makedirs(self.claim_path, exist_ok=True)
            self._write_stamped(filename, b"", now + ttl)
            return True

    def acquire_lease(self, key: str, owner: str, ttl: float) -> bool:
        """Take the named lease if it is free, expired or already ``owner``'s (renewal).

        ``hueyng/named-leases/<md5(key)>`` holds the owner; its mtime is the expiry.
        """
        filename = os.path.join(self.named_lease_path, _md5(key))
        mine = owner.encode("utf-8")
        with self.lock:
            now = time.time()
            expiry = self._mtime(filename)
            if expiry is not None and expiry > now and self._read_file(filename) != mine:
                return False
            os.makedirs(self.named_lease_path, exist_ok=True)
            self._write_stamped(filename, mine, now + ttl)
            return True

    def release_lease(self, key: str, owner: str) -> None:
        """Give up the named lease if ``owner`` holds it."""
        filename = os.path.join(self.named_lease_path, _md5(key))
        with self.lock:
            if self._read_file(filename) == owner.encode("utf-8"):
                self._unlink(filename)

    def flush_all(self) -> None:
        """Clear upstream's structures and huey-ng's state beside them."""
        super().flush_all()
        with self.lock:
            for directory in self._ng_dirs:
                shutil.rmtree(directory, ignore_errors=True)
