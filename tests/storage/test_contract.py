"""The storage contract (spec §15.1), one suite run against every backend.

Every test takes the ``storage`` fixture (tests/storage/conftest.py), a fresh, empty storage
of each backend kind, so each test here runs once per backend.

Backend capabilities decide which variant of a behaviour is asserted, never the test id:

- ``storage.priority`` (spec §15.1): False means the storage has no priorities, so a
  truthy priority must raise ``NotImplementedError``; True means higher priorities are
  dequeued first (one test asserts whichever applies). Priorities used here are integers
  from 0 to 65535 so that FileStorage (which accepts only those) runs the same assertions.
- :func:`pop_is_peek`: the Redis*Expire storages never delete on read (their ``pop_data``
  is a peek; results expire instead). A storage declares this with a truthy
  ``pop_is_peek`` attribute; for storages that predate the attribute, a class name that
  contains ``Expire`` means the same.
- ``storage.blocking``: a blocking storage's ``dequeue()`` waits up to its read timeout on
  an empty queue, so tests call it on an empty queue only where that is the point.
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Callable

import pytest

from huey.constants import EmptyData
from huey.storage import BaseStorage, Delivery

ALL_BYTES = bytes(range(256))
WAIT = 30.0  # generous bound for anything that waits on another thread


def pop_is_peek(storage: BaseStorage) -> bool:
    """Whether ``pop_data`` leaves the key in place (the Redis*Expire storages)."""
    declared = getattr(storage, "pop_is_peek", None)
    if declared is not None:
        return bool(declared)
    return "Expire" in type(storage).__name__


def eventually(predicate: Callable[[], bool], timeout: float = WAIT) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def run_threads(count: int, target: Callable[[int], None]) -> None:
    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive(), "worker thread did not finish in time"


# -- queue ---------------------------------------------------------------------------------
def test_enqueue_dequeue_is_fifo(storage: BaseStorage) -> None:
    for i in range(5):
        storage.enqueue(b"msg-%d" % i)
    assert storage.queue_size() == 5
    taken = [storage.dequeue() for _ in range(5)]
    assert taken == [b"msg-%d" % i for i in range(5)]
    assert storage.queue_size() == 0
    assert storage.dequeue() is None


def test_fifo_holds_when_enqueue_and_dequeue_interleave(storage: BaseStorage) -> None:
    storage.enqueue(b"a")
    storage.enqueue(b"b")
    assert storage.dequeue() == b"a"
    storage.enqueue(b"c")
    storage.enqueue(b"d")
    assert [storage.dequeue() for _ in range(3)] == [b"b", b"c", b"d"]


def test_priority_order_or_refusal(storage: BaseStorage) -> None:
    if not storage.priority:
        # A storage without priorities refuses a truthy one and stays FIFO otherwise.
        with pytest.raises(NotImplementedError):
            storage.enqueue(b"x", priority=5)
        storage.enqueue(b"plain", priority=None)
        storage.enqueue(b"zero", priority=0)
        assert storage.enqueued_items() == [b"plain", b"zero"]
        return
    for data, priority in [
        (b"low", 0),
        (b"high", 10),
        (b"mid", 5),
        (b"high2", 10),
        (b"none", None),
        (b"top", 65535),
    ]:
        storage.enqueue(data, priority)
    # Higher first, FIFO among equals, None counts as 0.
    expected = [b"top", b"high", b"high2", b"mid", b"low", b"none"]
    assert storage.enqueued_items() == expected
    assert [storage.dequeue() for _ in expected] == expected


def test_enqueued_items_order_limit_and_not_destructive(storage: BaseStorage) -> None:
    for i in range(6):
        storage.enqueue(b"m%d" % i)
    assert storage.enqueued_items() == [b"m%d" % i for i in range(6)]
    assert storage.enqueued_items(limit=2) == [b"m0", b"m1"]
    assert storage.enqueued_items(limit=100) == [b"m%d" % i for i in range(6)]
    assert storage.queue_size() == 6


def test_flush_queue(storage: BaseStorage) -> None:
    for i in range(3):
        storage.enqueue(b"m%d" % i)
    storage.put_data("kept", b"v")
    storage.flush_queue()
    assert storage.queue_size() == 0
    assert storage.enqueued_items() == []
    assert storage.peek_data("kept") == b"v"


def test_concurrent_dequeue_takes_each_message_once(storage: BaseStorage) -> None:
    messages = {b"job-%03d" % i for i in range(60)}
    for data in sorted(messages):
        storage.enqueue(data)
    taken: list[bytes] = []
    lock = threading.Lock()

    def worker(_: int) -> None:
        while True:
            with lock:
                if len(taken) >= len(messages):
                    return
            data = storage.dequeue()
            if data is None:
                return
            with lock:
                taken.append(data)

    run_threads(4, worker)
    assert sorted(taken) == sorted(messages)
    assert storage.queue_size() == 0


# -- schedule ------------------------------------------------------------------------------
@pytest.fixture
def base_time() -> datetime.datetime:
    return datetime.datetime.now().replace(microsecond=0)


def test_read_schedule_returns_due_items_soonest_first(
    storage: BaseStorage, base_time: datetime.datetime
) -> None:
    def at(seconds: int) -> datetime.datetime:
        return base_time + datetime.timedelta(seconds=seconds)

    storage.add_to_schedule(b"third", at(30))
    storage.add_to_schedule(b"first", at(10))
    storage.add_to_schedule(b"later", at(3600))
    storage.add_to_schedule(b"second", at(20))
    assert storage.schedule_size() == 4
    assert storage.read_schedule(at(5)) == []
    assert storage.read_schedule(at(30)) == [b"first", b"second", b"third"]
    # Removed once read.
    assert storage.read_schedule(at(30)) == []
    assert storage.schedule_size() == 1
    assert storage.scheduled_items() == [b"later"]


def test_scheduled_items_order_limit_and_flush(
    storage: BaseStorage, base_time: datetime.datetime
) -> None:
    for i in (3, 1, 4, 2):
        storage.add_to_schedule(b"s%d" % i, base_time + datetime.timedelta(seconds=i))
    assert storage.scheduled_items() == [b"s1", b"s2", b"s3", b"s4"]
    assert storage.scheduled_items(limit=2) == [b"s1", b"s2"]
    assert storage.schedule_size() == 4
    storage.flush_schedule()
    assert storage.schedule_size() == 0
    assert storage.scheduled_items() == []


def test_schedule_items_with_the_same_time_are_all_kept(
    storage: BaseStorage, base_time: datetime.datetime
) -> None:
    for i in range(3):
        storage.add_to_schedule(b"same-%d" % i, base_time)
    assert storage.schedule_size() == 3
    assert sorted(storage.read_schedule(base_time)) == [b"same-0", b"same-1", b"same-2"]


def test_concurrent_read_schedule_hands_out_each_item_once(
    storage: BaseStorage, base_time: datetime.datetime
) -> None:
    items = {b"due-%02d" % i for i in range(40)}
    for i, data in enumerate(sorted(items)):
        storage.add_to_schedule(data, base_time - datetime.timedelta(seconds=i))
    got: list[bytes] = []
    lock = threading.Lock()

    def reader(_: int) -> None:
        for _round in range(3):
            batch = storage.read_schedule(base_time)
            with lock:
                got.extend(batch)

    run_threads(3, reader)
    assert sorted(got) == sorted(items)
    assert storage.schedule_size() == 0


# -- key / value ---------------------------------------------------------------------------
def test_put_peek_pop_delete(storage: BaseStorage) -> None:
    assert storage.peek_data("k") is EmptyData
    assert storage.pop_data("k") is EmptyData
    assert storage.has_data_for_key("k") is False
    storage.put_data("k", b"v1")
    assert storage.has_data_for_key("k") is True
    assert storage.peek_data("k") == b"v1"
    storage.put_data("k", b"v2", is_result=True)  # upsert
    assert storage.peek_data("k") == b"v2"
    assert storage.pop_data("k") == b"v2"
    if pop_is_peek(storage):
        assert storage.peek_data("k") == b"v2"
    else:
        assert storage.peek_data("k") is EmptyData
        assert storage.pop_data("k") is EmptyData
    storage.put_data("d", b"x")
    assert storage.delete_data("d") is True
    assert storage.has_data_for_key("d") is False
    assert storage.delete_data("d") is False


def test_peek_many_returns_only_existing_keys(storage: BaseStorage) -> None:
    storage.put_data("a", b"1")
    storage.put_data("c", b"3")
    assert storage.peek_many(["a", "b", "c"]) == {"a": b"1", "c": b"3"}
    assert storage.peek_many([]) == {}
    assert storage.peek_many(["missing"]) == {}
    # Reading does not remove anything.
    assert storage.result_store_size() == 2


def test_put_if_empty(storage: BaseStorage) -> None:
    assert storage.put_if_empty("lock", b"first") is True
    assert storage.put_if_empty("lock", b"second") is False
    assert storage.peek_data("lock") == b"first"
    assert storage.delete_data("lock") is True
    assert storage.put_if_empty("lock", b"third") is True
    assert storage.peek_data("lock") == b"third"


def test_put_if_empty_is_atomic_under_racing_threads(storage: BaseStorage) -> None:
    for round_ in range(3):
        key = f"race-{round_}"
        barrier = threading.Barrier(6)
        winners: list[int] = []

        def contender(
            i: int, key: str = key, barrier: threading.Barrier = barrier, won: list[int] = winners
        ) -> None:
            barrier.wait(WAIT)
            if storage.put_if_empty(key, b"%d" % i):
                won.append(i)

        run_threads(6, contender)
        assert len(winners) == 1, f"round {round_}: winners {winners}"
        assert storage.peek_data(key) == b"%d" % winners[0]


def test_put_if_empty_with_ttl_expires(storage: BaseStorage) -> None:
    assert storage.put_if_empty("ttl-lock", b"1", ttl=1) is True
    assert storage.put_if_empty("ttl-lock", b"2", ttl=1) is False
    assert storage.has_data_for_key("ttl-lock") is True
    assert storage.peek_data("ttl-lock") == b"1"
    # Once the ttl passes the key reads as absent and can be taken again.
    assert eventually(lambda: not storage.has_data_for_key("ttl-lock"), timeout=10)
    assert storage.peek_data("ttl-lock") is EmptyData
    assert storage.peek_many(["ttl-lock"]) == {}
    assert storage.put_if_empty("ttl-lock", b"3") is True
    assert storage.peek_data("ttl-lock") == b"3"


def test_put_data_over_a_ttl_key_makes_it_permanent(storage: BaseStorage) -> None:
    assert storage.put_if_empty("k", b"short", ttl=1) is True
    storage.put_data("k", b"long")
    time.sleep(1.3)
    assert storage.peek_data("k") == b"long"


def test_result_store_size_items_and_flush(storage: BaseStorage) -> None:
    assert storage.result_store_size() == 0
    assert storage.result_items() == {}
    storage.put_data("r1", b"a", is_result=True)
    storage.put_data("r:meta", b"b")
    storage.put_if_empty("demo.lock.x", b"c")
    assert storage.result_store_size() == 3
    items = storage.result_items()
    assert items == {"r1": b"a", "r:meta": b"b", "demo.lock.x": b"c"}
    assert all(isinstance(key, str) for key in items)
    storage.flush_results()
    assert storage.result_store_size() == 0
    assert storage.result_items() == {}
    assert storage.peek_data("r1") is EmptyData


def test_binary_safe_values(storage: BaseStorage, base_time: datetime.datetime) -> None:
    storage.put_data("bin", ALL_BYTES)
    storage.put_data("empty", b"")
    assert storage.peek_data("bin") == ALL_BYTES
    assert storage.peek_data("empty") == b""
    assert storage.has_data_for_key("empty") is True
    assert storage.result_items() == {"bin": ALL_BYTES, "empty": b""}
    storage.enqueue(ALL_BYTES)
    storage.enqueue(b"")
    assert storage.enqueued_items() == [ALL_BYTES, b""]
    assert storage.dequeue() == ALL_BYTES
    assert storage.dequeue() == b""
    storage.add_to_schedule(ALL_BYTES, base_time)
    assert storage.read_schedule(base_time) == [ALL_BYTES]


def test_unicode_keys(storage: BaseStorage) -> None:
    storage.put_data("clé-ключ-鍵", b"v")
    assert storage.peek_data("clé-ключ-鍵") == b"v"
    assert storage.result_items() == {"clé-ключ-鍵": b"v"}


# -- counters ------------------------------------------------------------------------------
def test_incr_and_delete_counter(storage: BaseStorage) -> None:
    assert storage.incr("c") == 1
    assert storage.incr("c") == 2
    assert storage.incr("c", 5) == 7
    assert storage.incr("c", -3) == 4
    assert storage.incr("other", 3) == 3
    storage.delete_counter("c")
    assert storage.incr("c") == 1  # a deleted counter restarts from 0
    assert storage.incr("other") == 4


def test_counters_are_separate_from_kv(storage: BaseStorage) -> None:
    storage.incr("shared-name", 3)
    assert storage.result_store_size() == 0
    assert storage.has_data_for_key("shared-name") is False
    storage.put_data("shared-name", b"kv")
    assert storage.incr("shared-name") == 4
    assert storage.peek_data("shared-name") == b"kv"
    storage.flush_counters()
    assert storage.peek_data("shared-name") == b"kv"
    assert storage.incr("shared-name") == 1


def test_incr_is_atomic_under_threads(storage: BaseStorage) -> None:
    def bump(_: int) -> None:
        for _i in range(20):
            storage.incr("hits")

    run_threads(4, bump)
    assert storage.incr("hits", 0) == 80


# -- flush_all and wait_result -------------------------------------------------------------
def test_flush_all(storage: BaseStorage, base_time: datetime.datetime) -> None:
    storage.enqueue(b"q")
    storage.add_to_schedule(b"s", base_time)
    storage.put_data("k", b"v")
    storage.incr("c", 5)
    storage.flush_all()
    assert storage.queue_size() == 0
    assert storage.schedule_size() == 0
    assert storage.result_store_size() == 0
    assert storage.incr("c") == 1


def put_later(storage: BaseStorage, key: str, value: bytes) -> threading.Thread:
    """Store a result 0.3 s from now, from another thread (join the thread returned)."""

    def write() -> None:
        time.sleep(0.3)
        storage.put_data(key, value, is_result=True)

    writer = threading.Thread(target=write)
    writer.start()
    return writer


def test_wait_result(storage: BaseStorage) -> None:
    storage.put_data("ready", b"1", is_result=True)
    assert storage.wait_result("ready", timeout=5) is True
    assert storage.wait_result("absent", timeout=0.2) is False
    assert storage.wait_result("absent", timeout=0) is False
    writer = put_later(storage, "later", b"done")
    try:
        assert storage.wait_result("later", timeout=WAIT) is True
    finally:
        writer.join(WAIT)
    assert storage.peek_data("later") == b"done"


def test_wait_and_read(storage: BaseStorage) -> None:
    storage.put_data("ready", b"1", is_result=True)
    assert storage.wait_and_read("ready", timeout=5, peek=True) == b"1"
    assert storage.wait_and_read("ready", timeout=5) == b"1"  # destructive by default
    assert (storage.peek_data("ready") is EmptyData) is not pop_is_peek(storage)
    assert storage.wait_and_read("absent", timeout=0.2) is EmptyData
    assert storage.wait_and_read("absent", timeout=0) is EmptyData
    writer = put_later(storage, "later", b"done")
    try:
        assert storage.wait_and_read("later", timeout=WAIT) == b"done"
    finally:
        writer.join(WAIT)
    assert (storage.peek_data("later") is EmptyData) is not pop_is_peek(storage)


# -- leased delivery -----------------------------------------------------------------------
def test_dequeue_leased_and_ack(storage: BaseStorage) -> None:
    storage.enqueue(b"leased")
    delivery = storage.dequeue_leased(30)
    assert isinstance(delivery, Delivery)
    assert delivery.data == b"leased"
    assert delivery.count >= 1
    storage.extend_leases([delivery.token] if delivery.token else [], 30)
    storage.ack(delivery.token)
    # Checked without another take: a blocking storage would wait its read timeout.
    assert storage.queue_size() == 0
    assert storage.enqueued_items() == []
    assert storage.requeue_expired() == 0


def test_release_gives_a_leased_message_back_or_is_a_no_op(storage: BaseStorage) -> None:
    storage.enqueue(b"unstarted")
    delivery = storage.dequeue_leased(30)
    assert delivery is not None and delivery.data == b"unstarted"
    storage.release(delivery.token)
    if delivery.token is None:
        # At-most-once delivery: the message left the queue when it was taken.
        assert storage.queue_size() == 0
        assert storage.enqueued_items() == []
    else:
        again = storage.dequeue_leased(30)
        assert again is not None and again.data == b"unstarted"
        storage.ack(again.token)
