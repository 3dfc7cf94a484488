"""huey-ng's delivery state for :class:`~huey.storage._file.FileStorage`: leases, delivery
counts, dead letters, claims and named leases, in ``<path>/hueyng/`` beside upstream's layout
(described in :mod:`huey.storage._file`).

Mixed into ``FileStorage``, whose global lock, paths and file helpers (``_write_file``,
``_read_file``, ``_unlink``, ``_names``, ``_free_name``) it uses. ``TMP``, ``MAX_PRIORITY``
and ``_md5`` are defined here because both modules need them and ``_file.py`` imports this
one (not the other way round).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import struct
import time
import uuid
from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from huey.storage._base import DeadLetter, Delivery

#: Suffix of files being written or taken; every listing skips them.
TMP = ".tmp"
MAX_PRIORITY = 0xFFFF
#: A lease token (the name of its directory), a dead-letter id, a queue-name priority prefix.
_TOKEN = re.compile(r"[0-9a-f]{32}\Z")
_DEAD_ID = re.compile(r"[0-9a-f]{16}-[0-9a-f]{8}\Z")
_PRIORITY = re.compile(r"[0-9a-f]{4}\Z")


def _md5(key: str) -> str:
    return hashlib.md5(key.encode("utf-8")).hexdigest()


class FileLeasesMixin:
    """Leased delivery and huey-ng state for :class:`~huey.storage._file.FileStorage`."""

    lock: AbstractContextManager[Any]
    queue_path: str
    lease_path: str
    delivery_path: str
    dead_path: str
    claim_path: str
    named_lease_path: str
    _ng_dirs: tuple[str, ...]

    if TYPE_CHECKING:  # provided by FileStorage

        @staticmethod
        def _write_file(filename: str, data: bytes) -> None: ...

        @staticmethod
        def _read_file(filename: str) -> bytes | None: ...

        @staticmethod
        def _unlink(filename: str) -> bool: ...

        @staticmethod
        def _names(directory: str) -> list[str]: ...

        @staticmethod
        def _free_name(directory: str, base: str) -> str: ...

    # -- leased delivery -----------------------------------------------------------------
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
        """The delivery count in a leased message's name (``<sha1>-<pppp>-<n>``); 0 for a
        message leased out of the schedule (never delivered yet)."""
        try:
            return max(int(message[46:]), 0)
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
        with self.lock:
            names = self._names(self.queue_path)
            if not names:
                return None
            filename = os.path.join(self.queue_path, names[0])
            data = self._read_file(filename)
            if data is None:
                return None
            prefix = names[0][:4] if _PRIORITY.match(names[0][:4]) else f"{MAX_PRIORITY:04x}"
            count = self._get_count(hashlib.sha1(data).hexdigest()) + 1
            return self._lease_file(filename, data, prefix, count, time.time() + lease_seconds)

    def _lease_file(
        self, filename: str, data: bytes, prefix: str, count: int, expiry: float
    ) -> Delivery:
        """Move message file ``filename`` (holding ``data``) into a new lease directory
        expiring at ``expiry``; the name inside keeps its priority prefix and delivery
        count. Call with the lock held."""
        token = uuid.uuid4().hex
        lease_dir = os.path.join(self.lease_path, token)
        os.makedirs(lease_dir)
        digest = hashlib.sha1(data).hexdigest()
        os.rename(filename, os.path.join(lease_dir, f"{digest}-{prefix}-{count}"))
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
        with self.lock:
            return self._claim_locked(key, ttl)

    def _claim_locked(self, key: str, ttl: float) -> bool:
        """``claim`` with the lock already held."""
        filename = os.path.join(self.claim_path, _md5(key))
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
        super().flush_all()  # type: ignore[misc]
        with self.lock:
            for directory in self._ng_dirs:
                shutil.rmtree(directory, ignore_errors=True)
