"""In-process storages: :class:`MemoryStorage` (tests, immediate mode) and
:class:`BlackHoleStorage` (discards everything)."""

from __future__ import annotations

import datetime
import hashlib
import heapq
import itertools
import threading
import time
import uuid
from collections.abc import Iterable
from typing import Any

from huey.constants import EmptyData
from huey.storage._base import BaseStorage, DeadLetter, Delivery


class BlackHoleStorage(BaseStorage):
    """A storage where every write vanishes and every read comes back empty."""

    def enqueue(self, data: bytes, priority: float | None = None) -> None:
        pass

    def dequeue(self) -> bytes | None:
        return None

    def queue_size(self) -> int:
        return 0

    def enqueued_items(self, limit: int | None = None) -> list[bytes]:
        return []

    def flush_queue(self) -> None:
        pass

    def add_to_schedule(self, data: bytes, ts: datetime.datetime) -> None:
        pass

    def read_schedule(self, ts: datetime.datetime) -> list[bytes]:
        return []

    def schedule_size(self) -> int:
        return 0

    def scheduled_items(self, limit: int | None = None) -> list[bytes]:
        return []

    def flush_schedule(self) -> None:
        pass

    def put_data(self, key: str, value: bytes, is_result: bool = False) -> None:
        pass

    def peek_data(self, key: str) -> bytes | type[EmptyData]:
        return EmptyData

    def pop_data(self, key: str) -> bytes | type[EmptyData]:
        return EmptyData

    def has_data_for_key(self, key: str) -> bool:
        return False

    def put_if_empty(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        return True

    def result_store_size(self) -> int:
        return 0

    def result_items(self) -> dict[str, bytes]:
        return {}

    def flush_results(self) -> None:
        pass

    def incr(self, key: str, amount: int = 1) -> int:
        return amount

    def delete_counter(self, key: str) -> None:
        pass

    def flush_counters(self) -> None:
        pass


class MemoryStorage(BaseStorage):
    """Everything in this process, guarded by one lock; nothing is shared between processes.

    The queue is a heap on ``(-priority, insertion counter)``: higher priority first, FIFO
    among equals. ``put_if_empty`` is atomic; a key stored with a ``ttl`` reads as absent
    once the ttl has passed (huey-ng: ttl works on every storage).
    """

    supports_leases = True

    def __init__(self, name: str = "huey", **kwargs: Any) -> None:
        super().__init__(name)
        self._lock = threading.RLock()
        # token -> (data, priority, lease expiry, delivery count)
        self._leases: dict[str, tuple[bytes, float, float, int]] = {}
        self._deliveries: dict[bytes, int] = {}  # sha1(message) -> deliveries so far
        self._dead: dict[str, DeadLetter] = {}
        self._claims: dict[str, float] = {}
        self._named_leases: dict[str, tuple[str, float]] = {}
        self._queue: list[tuple[float, int, bytes]] = []
        self._schedule: list[tuple[datetime.datetime, int, bytes]] = []
        self._results: dict[str, bytes] = {}
        self._counters: dict[str, int] = {}
        self._expires: dict[str, float] = {}  # key -> time.monotonic() deadline
        self._seq = itertools.count()

    def enqueue(self, data: bytes, priority: float | None = None) -> None:
        with self._lock:
            heapq.heappush(self._queue, (-(priority or 0), next(self._seq), data))

    def dequeue(self) -> bytes | None:
        with self._lock:
            if not self._queue:
                return None
            return heapq.heappop(self._queue)[2]

    def queue_size(self) -> int:
        return len(self._queue)

    def enqueued_items(self, limit: int | None = None) -> list[bytes]:
        with self._lock:
            return [item[2] for item in sorted(self._queue)[:limit]]

    def flush_queue(self) -> None:
        with self._lock:
            self._queue = []

    def add_to_schedule(self, data: bytes, ts: datetime.datetime) -> None:
        with self._lock:
            heapq.heappush(self._schedule, (ts, next(self._seq), data))

    def read_schedule(self, ts: datetime.datetime) -> list[bytes]:
        with self._lock:
            due = []
            while self._schedule and self._schedule[0][0] <= ts:
                due.append(heapq.heappop(self._schedule)[2])
            return due

    def schedule_size(self) -> int:
        return len(self._schedule)

    def scheduled_items(self, limit: int | None = None) -> list[bytes]:
        with self._lock:
            return [item[2] for item in sorted(self._schedule)[:limit]]

    def flush_schedule(self) -> None:
        with self._lock:
            self._schedule = []

    def _purge(self) -> None:
        """Drop keys whose ttl has passed (call with the lock held)."""
        if self._expires:
            now = time.monotonic()
            for key in [k for k, deadline in self._expires.items() if deadline <= now]:
                del self._expires[key]
                self._results.pop(key, None)

    def put_data(self, key: str, value: bytes, is_result: bool = False) -> None:
        with self._lock:
            self._results[key] = value
            self._expires.pop(key, None)

    def peek_data(self, key: str) -> bytes | type[EmptyData]:
        with self._lock:
            self._purge()
            return self._results.get(key, EmptyData)

    def pop_data(self, key: str) -> bytes | type[EmptyData]:
        with self._lock:
            self._purge()
            self._expires.pop(key, None)
            return self._results.pop(key, EmptyData)

    def has_data_for_key(self, key: str) -> bool:
        with self._lock:
            self._purge()
            return key in self._results

    def put_if_empty(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        with self._lock:
            self._purge()
            if key in self._results:
                return False
            self._results[key] = value
            if ttl is not None:
                self._expires[key] = time.monotonic() + ttl
            return True

    def result_store_size(self) -> int:
        with self._lock:
            self._purge()
            return len(self._results)

    def result_items(self) -> dict[str, bytes]:
        with self._lock:
            self._purge()
            return dict(self._results)

    def flush_results(self) -> None:
        with self._lock:
            self._results = {}
            self._expires = {}

    def incr(self, key: str, amount: int = 1) -> int:
        with self._lock:
            value = self._counters.get(key, 0) + amount
            self._counters[key] = value
            return value

    def delete_counter(self, key: str) -> None:
        with self._lock:
            self._counters.pop(key, None)

    def flush_counters(self) -> None:
        with self._lock:
            self._counters = {}

    def flush_all(self) -> None:
        super().flush_all()
        with self._lock:
            self._leases.clear()
            self._deliveries.clear()
            self._dead.clear()
            self._claims.clear()
            self._named_leases.clear()

    # -- leased delivery -----------------------------------------------------------------
    def dequeue_leased(self, lease_seconds: float) -> Delivery | None:
        with self._lock:
            if not self._queue:
                return None
            neg_priority, _, data = heapq.heappop(self._queue)
            digest = hashlib.sha1(data).digest()
            count = self._deliveries.get(digest, 0) + 1
            self._deliveries[digest] = count
            token = uuid.uuid4().hex
            expiry = time.monotonic() + lease_seconds
            self._leases[token] = (data, -neg_priority, expiry, count)
            return Delivery(data, token, count)

    def read_schedule_leased(self, ts: datetime.datetime, lease_seconds: float) -> list[Delivery]:
        expiry = time.monotonic() + lease_seconds
        taken = []
        with self._lock:
            for data in self.read_schedule(ts):
                token = uuid.uuid4().hex
                self._leases[token] = (data, 0.0, expiry, 0)
                taken.append(Delivery(data, token, 0))
        return taken

    def ack(self, token: str | None) -> None:
        with self._lock:
            lease = self._leases.pop(token or "", None)
            if lease is not None:
                self._deliveries.pop(hashlib.sha1(lease[0]).digest(), None)

    def extend_leases(self, tokens: Iterable[str], lease_seconds: float) -> None:
        expiry = time.monotonic() + lease_seconds
        with self._lock:
            for token in tokens:
                lease = self._leases.get(token)
                if lease is not None:
                    self._leases[token] = (lease[0], lease[1], expiry, lease[3])

    def release(self, token: str | None) -> None:
        with self._lock:
            lease = self._leases.pop(token or "", None)
            if lease is None:
                return
            data, priority, _, count = lease
            # Never started, so this delivery does not count against the task.
            self._deliveries[hashlib.sha1(data).digest()] = count - 1
            heapq.heappush(self._queue, (-priority, next(self._seq), data))

    def requeue_expired(self) -> int:
        now = time.monotonic()
        with self._lock:
            expired = [token for token, lease in self._leases.items() if lease[2] <= now]
            for token in expired:
                data, priority, _, _ = self._leases.pop(token)
                heapq.heappush(self._queue, (-priority, next(self._seq), data))
            return len(expired)

    # -- dead letters, claims, named leases ----------------------------------------------
    def add_dead_letter(self, data: bytes, reason: str) -> str:
        letter = DeadLetter(uuid.uuid4().hex, data, reason, time.time())
        with self._lock:
            self._dead[letter.id] = letter
            self._deliveries.pop(hashlib.sha1(data).digest(), None)
        return letter.id

    def dead_letters(self, limit: int | None = None) -> list[DeadLetter]:
        with self._lock:
            return list(self._dead.values())[:limit]

    def dead_letter_count(self) -> int:
        return len(self._dead)

    def pop_dead_letter(self, id: str) -> DeadLetter | None:
        with self._lock:
            return self._dead.pop(id, None)

    def flush_dead_letters(self) -> None:
        with self._lock:
            self._dead.clear()

    def claim(self, key: str, ttl: float) -> bool:
        now = time.monotonic()
        with self._lock:
            if self._claims.get(key, 0) > now:
                return False
            # Each periodic tick claims a new key: drop lapsed ones so the dict stays small.
            for lapsed in [k for k, expiry in self._claims.items() if expiry <= now]:
                del self._claims[lapsed]
            self._claims[key] = now + ttl
            return True

    def acquire_lease(self, key: str, owner: str, ttl: float) -> bool:
        now = time.monotonic()
        with self._lock:
            holder = self._named_leases.get(key)
            if holder is not None and holder[0] != owner and holder[1] > now:
                return False
            self._named_leases[key] = (owner, now + ttl)
            return True

    def release_lease(self, key: str, owner: str) -> None:
        with self._lock:
            holder = self._named_leases.get(key)
            if holder is not None and holder[0] == owner:
                del self._named_leases[key]
