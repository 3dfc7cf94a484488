"""Contract of leased delivery, dead letters, claims and named leases (no task is ever lost).

Runs on every backend through the ``storage`` fixture. Lease expiry uses short leases
(0.2 s) and waits of a few times that, never timing assertions.
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Callable

import pytest

from huey.storage import BaseStorage, Delivery

LEASE = 0.2


def expire() -> None:
    time.sleep(LEASE * 3)


def run_concurrently(functions: list[Callable[[], object]]) -> None:
    """Run each function in a thread of its own and wait for them all (30 s at most)."""
    threads = [threading.Thread(target=fn) for fn in functions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)


def test_backend_supports_leases(storage: BaseStorage) -> None:
    assert storage.supports_leases


def test_take_is_a_lease_not_a_removal(storage: BaseStorage) -> None:
    storage.enqueue(b"m1")
    delivery = storage.dequeue_leased(LEASE)
    assert isinstance(delivery, Delivery)
    assert delivery.data == b"m1" and delivery.token and delivery.count == 1
    assert storage.queue_size() == 0  # not visible to others while leased
    assert storage.dequeue_leased(LEASE) is None
    expire()
    assert storage.requeue_expired() == 1
    again = storage.dequeue_leased(LEASE)
    assert again is not None and again.data == b"m1" and again.count == 2
    assert again.token != delivery.token


def test_ack_forgets_the_message(storage: BaseStorage) -> None:
    storage.enqueue(b"m1")
    delivery = storage.dequeue_leased(LEASE)
    assert delivery is not None
    storage.ack(delivery.token)
    expire()
    assert storage.requeue_expired() == 0
    assert storage.queue_size() == 0
    storage.enqueue(b"m1")  # the same bytes later count as a new message
    fresh = storage.dequeue_leased(LEASE)
    assert fresh is not None and fresh.count == 1


def test_heartbeat_keeps_a_long_task_leased(storage: BaseStorage) -> None:
    storage.enqueue(b"long")
    delivery = storage.dequeue_leased(LEASE)
    assert delivery is not None and delivery.token
    for _ in range(4):
        time.sleep(LEASE / 2)
        storage.extend_leases([delivery.token], LEASE)
        assert storage.requeue_expired() == 0
    assert storage.queue_size() == 0


def test_release_returns_message_at_once_without_counting(storage: BaseStorage) -> None:
    storage.enqueue(b"m1")
    delivery = storage.dequeue_leased(LEASE)
    assert delivery is not None
    storage.release(delivery.token)
    assert storage.queue_size() == 1
    again = storage.dequeue_leased(LEASE)
    assert again is not None and again.data == b"m1" and again.count == 1


def test_leased_take_keeps_priority_order(storage: BaseStorage) -> None:
    if not storage.priority:  # no priorities on this backend: plain FIFO
        for data in (b"first", b"second", b"third"):
            storage.enqueue(data)
        taken = storage.dequeue_leased_many(LEASE, 3)
        assert [d.data for d in taken] == [b"first", b"second", b"third"]
        return
    storage.enqueue(b"low", 1)
    storage.enqueue(b"high", 10)
    storage.enqueue(b"low2", 1)
    taken = [storage.dequeue_leased(LEASE) for _ in range(3)]
    assert [d.data for d in taken if d] == [b"high", b"low", b"low2"]


def test_concurrent_takers_never_share_a_message(storage: BaseStorage) -> None:
    for i in range(60):
        storage.enqueue(b"m%d" % i)
    seen: list[bytes] = []
    lock = threading.Lock()

    def taker() -> None:
        while True:
            delivery = storage.dequeue_leased(30)
            if delivery is None:
                return
            with lock:
                seen.append(delivery.data)
            storage.ack(delivery.token)

    run_concurrently([taker] * 4)
    assert sorted(seen) == sorted(b"m%d" % i for i in range(60))


def test_enqueue_many_keeps_order_and_priorities(storage: BaseStorage) -> None:
    if storage.priority:
        storage.enqueue_many([(b"a", None), (b"b", 5), (b"c", None), (b"d", 5)])
        assert [storage.dequeue() for _ in range(4)] == [b"b", b"d", b"a", b"c"]
    else:
        storage.enqueue_many([(b"a", None), (b"b", None), (b"c", 0)])
        assert [storage.dequeue() for _ in range(3)] == [b"a", b"b", b"c"]
        with pytest.raises(NotImplementedError, match="priority"):
            storage.enqueue_many([(b"x", 3)])
    storage.enqueue_many([])
    assert storage.queue_size() == 0


def test_batch_take_leases_each_message(storage: BaseStorage) -> None:
    for i in range(5):
        storage.enqueue(b"m%d" % i)
    batch = storage.dequeue_leased_many(LEASE, 3)
    assert [d.data for d in batch] == [b"m0", b"m1", b"m2"]
    assert len({d.token for d in batch}) == 3 and all(d.count == 1 for d in batch)
    rest = storage.dequeue_leased_many(LEASE, 10)
    assert [d.data for d in rest] == [b"m3", b"m4"]
    assert storage.dequeue_leased_many(LEASE, 10) == []
    expire()
    assert storage.requeue_expired() == 5


def test_apply_writes_stores_then_acknowledges(storage: BaseStorage) -> None:
    storage.put_data("r:old", b"flag")
    storage.enqueue(b"m1")
    storage.enqueue(b"m2")
    batch = storage.dequeue_leased_many(LEASE, 2)
    storage.apply_writes(
        [
            ("put", "result-1", b"one", True),
            ("put", "result-2", b"two", True),
            ("delete", "r:old"),
            *[("ack", d.token) for d in batch],
        ]
    )
    assert storage.peek_data("result-1") == b"one"
    assert storage.peek_data("result-2") == b"two"
    assert not storage.has_data_for_key("r:old")
    expire()
    assert storage.requeue_expired() == 0  # both acknowledged
    with pytest.raises(ValueError, match="unknown write operation"):
        storage.apply_writes([("truncate", "everything")])


def test_binary_messages_survive_a_lease(storage: BaseStorage) -> None:
    payload = bytes(range(256))
    storage.enqueue(payload)
    first = storage.dequeue_leased(LEASE)
    assert first is not None and first.data == payload
    expire()
    storage.requeue_expired()
    again = storage.dequeue_leased(LEASE)
    assert again is not None and again.data == payload


def test_dead_letters(storage: BaseStorage) -> None:
    first = storage.add_dead_letter(b"\x00bad", "undecodable")
    second = storage.add_dead_letter(b"poison", "crashed 4 times")
    assert storage.dead_letter_count() == 2
    letters = storage.dead_letters()
    assert [(d.id, d.data, d.reason) for d in letters] == [
        (first, b"\x00bad", "undecodable"),
        (second, b"poison", "crashed 4 times"),
    ]
    assert letters[0].timestamp <= letters[1].timestamp <= time.time() + 1
    assert [d.id for d in storage.dead_letters(limit=1)] == [first]
    popped = storage.pop_dead_letter(first)
    assert popped is not None and popped.data == b"\x00bad"
    assert storage.pop_dead_letter(first) is None
    storage.flush_dead_letters()
    assert storage.dead_letter_count() == 0


def test_extra_state_is_not_in_the_result_store(storage: BaseStorage) -> None:
    storage.enqueue(b"m")
    delivery = storage.dequeue_leased(LEASE)
    storage.add_dead_letter(b"x", "reason")
    assert storage.claim("tick:a", 5)
    assert storage.acquire_lease("scheduler", "me", 5)
    assert delivery is not None
    assert storage.result_store_size() == 0
    assert storage.result_items() == {}
    storage.flush_all()  # flush clears huey-ng's extra state too
    assert storage.dead_letter_count() == 0
    assert storage.claim("tick:a", 5)
    assert storage.acquire_lease("scheduler", "other", 5)
    expire()
    assert storage.requeue_expired() == 0


def test_claim_is_once_per_key_until_it_expires(storage: BaseStorage) -> None:
    assert storage.claim("periodic:job:2026-01-01T00:00", 1)
    assert not storage.claim("periodic:job:2026-01-01T00:00", 1)
    assert storage.claim("periodic:job:2026-01-01T00:01", 1)
    time.sleep(1.5)
    assert storage.claim("periodic:job:2026-01-01T00:00", 1)


def test_concurrent_claims_have_one_winner(storage: BaseStorage) -> None:
    wins: list[bool] = []
    barrier = threading.Barrier(6)

    def claimer() -> None:
        barrier.wait()
        wins.append(storage.claim("race", 30))

    run_concurrently([claimer] * 6)
    assert sorted(wins) == [False] * 5 + [True]


def test_named_lease_has_one_holder_and_can_be_taken_over(storage: BaseStorage) -> None:
    assert storage.acquire_lease("scheduler", "a", 1)
    assert not storage.acquire_lease("scheduler", "b", 1)
    assert storage.acquire_lease("scheduler", "a", 1)  # renewal
    time.sleep(1.5)
    assert storage.acquire_lease("scheduler", "b", 1)  # a died: b takes over
    assert not storage.acquire_lease("scheduler", "a", 1)
    storage.release_lease("scheduler", "a")  # not the holder: no effect
    assert not storage.acquire_lease("scheduler", "a", 1)
    storage.release_lease("scheduler", "b")
    assert storage.acquire_lease("scheduler", "a", 1)


# -- the schedule -> queue move and periodic ticks (issue: nothing lost in a crash) --------
DUE = datetime.datetime(2026, 1, 1, 12, 0, 0)


def test_schedule_move_is_a_lease_and_acks_with_the_enqueue(storage: BaseStorage) -> None:
    storage.add_to_schedule(b"s1", DUE - datetime.timedelta(seconds=2))
    storage.add_to_schedule(b"s2", DUE - datetime.timedelta(seconds=1))
    storage.add_to_schedule(b"later", DUE + datetime.timedelta(hours=1))
    taken = storage.read_schedule_leased(DUE, LEASE)
    assert [d.data for d in taken] == [b"s1", b"s2"]  # soonest first
    assert all(d.token for d in taken) and all(d.count == 0 for d in taken)
    assert storage.schedule_size() == 1 and storage.queue_size() == 0
    assert storage.read_schedule_leased(DUE, LEASE) == []  # each due message taken once
    storage.apply_writes(
        [("enqueue", d.data, None) for d in taken] + [("ack", d.token) for d in taken]
    )
    assert storage.enqueued_items() == [b"s1", b"s2"]
    expire()
    assert storage.requeue_expired() == 0  # acknowledged: never queued twice
    assert storage.queue_size() == 2


def test_schedule_move_interrupted_is_queued_by_the_reaper(storage: BaseStorage) -> None:
    """The scheduler died after taking due messages and before enqueueing them."""
    storage.add_to_schedule(b"orphan", DUE)
    taken = storage.read_schedule_leased(DUE, LEASE)
    assert [d.data for d in taken] == [b"orphan"]
    assert storage.requeue_expired() == 0  # the lease still runs
    expire()
    assert storage.requeue_expired() == 1
    assert storage.schedule_size() == 0
    delivery = storage.dequeue_leased(LEASE)
    # Leaving the schedule was not a delivery: the first run counts as the first.
    assert delivery is not None and delivery.data == b"orphan" and delivery.count == 1
    storage.ack(delivery.token)
    expire()
    assert storage.requeue_expired() == 0 and storage.queue_size() == 0


def test_concurrent_schedule_moves_hand_out_each_message_once(storage: BaseStorage) -> None:
    for i in range(40):
        storage.add_to_schedule(b"s%d" % i, DUE - datetime.timedelta(seconds=i))
    seen: list[bytes] = []
    lock = threading.Lock()
    barrier = threading.Barrier(4)

    def mover() -> None:
        barrier.wait()
        for _ in range(3):
            taken = storage.read_schedule_leased(DUE, 30)
            with lock:
                seen.extend(d.data for d in taken)

    run_concurrently([mover] * 4)
    assert sorted(seen) == sorted(b"s%d" % i for i in range(40))


def test_apply_writes_enqueue_keeps_priority(storage: BaseStorage) -> None:
    if not storage.priority:
        storage.apply_writes([("enqueue", b"a", None), ("enqueue", b"b", 0)])
        assert [storage.dequeue() for _ in range(2)] == [b"a", b"b"]
        with pytest.raises(NotImplementedError, match="priority"):
            storage.apply_writes([("enqueue", b"x", 3)])
        return
    storage.apply_writes([("enqueue", b"low", None), ("enqueue", b"high", 5)])
    assert [storage.dequeue() for _ in range(2)] == [b"high", b"low"]


def test_enqueue_once_enqueues_once_per_key(storage: BaseStorage) -> None:
    assert storage.enqueue_once("periodic:job:1", 1, b"tick-1")
    assert not storage.enqueue_once("periodic:job:1", 1, b"tick-1-again")
    assert storage.enqueue_once("periodic:job:2", 1, b"tick-2")
    assert storage.enqueued_items() == [b"tick-1", b"tick-2"]
    assert not storage.claim("periodic:job:1", 1)  # the same claims as claim()
    time.sleep(1.5)
    assert storage.enqueue_once("periodic:job:1", 1, b"tick-1-later")
    assert storage.queue_size() == 3


def test_concurrent_enqueue_once_enqueues_one(storage: BaseStorage) -> None:
    barrier = threading.Barrier(6)

    def ticker(i: int) -> None:
        barrier.wait()
        storage.enqueue_once("periodic:race", 30, b"from-%d" % i)

    run_concurrently([lambda i=i: ticker(i) for i in range(6)])
    assert storage.queue_size() == 1
