"""In-process storages: :class:`MemoryStorage` (tests, immediate mode) and
:class:`BlackHoleStorage` (discards everything)."""

from __future__ import annotations

import datetime
import heapq
import itertools
import threading
from typing import Any

from huey.constants import EmptyData
from huey.storage._base import BaseStorage


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
    among equals. ``put_if_empty`` is atomic; its ``ttl`` is ignored.
    """

    def __init__(self, name: str = "huey", **kwargs: Any) -> None:
        super().__init__(name)
        self._lock = threading.RLock()
        self._queue: list[tuple[float, int, bytes]] = []
        self._schedule: list[tuple[datetime.datetime, int, bytes]] = []
        self._results: dict[str, bytes] = {}
        self._counters: dict[str, int] = {}
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

    def put_data(self, key: str, value: bytes, is_result: bool = False) -> None:
        with self._lock:
            self._results[key] = value

    def peek_data(self, key: str) -> bytes | type[EmptyData]:
        with self._lock:
            return self._results.get(key, EmptyData)

    def pop_data(self, key: str) -> bytes | type[EmptyData]:
        with self._lock:
            return self._results.pop(key, EmptyData)

    def has_data_for_key(self, key: str) -> bool:
        return key in self._results

    def put_if_empty(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        with self._lock:
            if key in self._results:
                return False
            self._results[key] = value
            return True

    def result_store_size(self) -> int:
        return len(self._results)

    def result_items(self) -> dict[str, bytes]:
        with self._lock:
            return dict(self._results)

    def flush_results(self) -> None:
        with self._lock:
            self._results = {}

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
