"""Leased delivery in the engine: take / finish / release, crash-loop limits and dead letters.

A "crash" here is a take whose lease is never acknowledged; the reaper
(``storage.requeue_expired``) then makes the message available again, as it would after a
worker was killed. Storage-level lease behaviour is covered per backend in tests/storage.
"""

from __future__ import annotations

import time

import pytest

import huey
from huey import _delivery
from huey.exceptions import ConfigurationError
from huey.registry import Message

LEASE = 0.05


@pytest.fixture
def h() -> huey.MemoryHuey:
    return huey.MemoryHuey("leases", visibility_timeout=LEASE)


def crash(h: huey.Huey) -> _delivery.Taken:
    """Take a task and 'die' holding it: let its lease lapse and reap it."""
    taken = _delivery.take(h)
    assert taken is not None
    time.sleep(LEASE * 2)
    assert h.storage.requeue_expired() == 1
    return taken


def test_take_leases_and_ack_forgets(h: huey.MemoryHuey) -> None:
    @h.task()
    def add(a: int, b: int) -> int:
        return a + b

    result = add(1, 2)
    taken = _delivery.take(h)
    assert taken is not None and taken.delivery.token and taken.delivery.count == 1
    assert h.pending_count() == 0
    assert h.execute(taken.task) == 3
    h.storage.ack(taken.delivery.token)
    time.sleep(LEASE * 2)
    assert h.storage.requeue_expired() == 0  # acknowledged: never delivered again
    assert result.get() == 3


def test_unacknowledged_task_is_delivered_again(h: huey.MemoryHuey) -> None:
    @h.task()
    def work() -> str:
        return "done"

    result = work()
    first = crash(h)
    again = _delivery.take(h)
    assert again is not None
    assert again.task.id == first.task.id and again.delivery.count == 2
    h.execute(again.task)
    h.storage.ack(again.delivery.token)
    assert result.get() == "done"


def test_redelivery_uses_up_a_retry(h: huey.MemoryHuey) -> None:
    @h.task(retries=2)
    def flaky() -> None:
        pass

    flaky()
    crash(h)
    again = _delivery.take(h)
    assert again is not None and again.task.retries == 1


def test_crash_loop_without_retries_ends_in_dead_letters(h: huey.MemoryHuey) -> None:
    @h.task()
    def poison() -> None:
        pass

    poison()
    for _ in range(h.max_deliveries):
        crash(h)
    assert _delivery.take(h) is None  # the fourth delivery is set aside, not run
    letters = h.dead_letters()
    assert len(letters) == 1 and h.dead_letter_count() == 1
    assert "delivered 4 times" in letters[0].reason
    assert h.pending_count() == 0


def test_crash_loop_with_retries_allows_retries_plus_one(h: huey.MemoryHuey) -> None:
    @h.task(retries=4)
    def poison() -> None:
        pass

    poison()
    for _ in range(5):
        crash(h)
    assert _delivery.take(h) is None
    assert h.dead_letter_count() == 1


def test_undecodable_and_unknown_messages_are_set_aside(h: huey.MemoryHuey) -> None:
    h.storage.enqueue(b"\x00garbage")
    h.storage.enqueue(h.serialize(Message("id-9", "gone.task", args=(), kwargs={})))
    assert _delivery.take(h) is None
    assert _delivery.take(h) is None
    reasons = [letter.reason for letter in h.dead_letters()]
    assert len(reasons) == 2
    assert "undecodable" in reasons[0]
    assert "gone.task not found in TaskRegistry" in reasons[1]


def test_requeue_and_delete_dead_letters(h: huey.MemoryHuey) -> None:
    @h.task()
    def later() -> int:
        return 7

    later()
    h.storage.enqueue(b"junk")
    taken = _delivery.take(h)
    assert taken is not None
    _delivery.set_aside(h, taken.delivery, "set aside by hand")
    assert _delivery.take(h) is None  # the junk message goes to the dead letters too
    assert h.dead_letter_count() == 2
    ids = {letter.reason: letter.id for letter in h.dead_letters()}
    assert h.delete_dead_letter(next(v for k, v in ids.items() if "undecodable" in k))
    assert h.requeue_dead_letters() == 1
    taken = _delivery.take(h)
    assert taken is not None and h.execute(taken.task) == 7
    assert h.dead_letter_count() == 0
    assert not h.requeue_dead_letter("missing")


def test_release_gives_task_back_without_counting_a_delivery(h: huey.MemoryHuey) -> None:
    @h.task()
    def work() -> None:
        pass

    work()
    taken = _delivery.take(h)
    assert taken is not None
    _delivery.release(h, taken)
    again = _delivery.take(h)
    assert again is not None and again.delivery.count == 1


def test_at_most_once_removes_on_take() -> None:
    h = huey.MemoryHuey("amo", at_most_once=True)

    @h.task()
    def work() -> None:
        pass

    work()
    taken = _delivery.take(h)
    assert taken is not None and taken.delivery.token is None
    assert not _delivery.uses_leases(h)
    assert h.storage.requeue_expired() == 0


@pytest.mark.parametrize(
    "options",
    [{"visibility_timeout": 0}, {"visibility_timeout": "30"}, {"max_deliveries": 0}],
)
def test_delivery_options_are_validated(options: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        huey.MemoryHuey("x", **options)  # type: ignore[arg-type]


def test_lock_inside_a_task_records_its_owner_and_outside_keeps_upstreams_value(
    h: huey.MemoryHuey,
) -> None:
    lock = h.lock_task("report")
    seen: list[object] = []

    @h.task()
    def report() -> None:
        with lock:
            seen.append(h.get("leases.lock.report", peek=True))

    result = report()
    taken = _delivery.take(h)
    assert taken is not None
    h.execute(taken.task)
    assert seen == [result.id]  # the owner is the running task
    with lock:
        assert h.get("leases.lock.report", peek=True) == "1"  # outside a task: as upstream


def test_lock_of_a_task_whose_worker_died_is_released_on_redelivery(
    h: huey.MemoryHuey,
) -> None:
    lock = h.lock_task("report")

    @h.task()
    @lock
    def report() -> str:
        return "done"

    report()
    taken = crash_holding_lock(h, lock)
    assert h.is_locked("report")
    again = _delivery.take(h)
    assert again is not None and again.task.id == taken.task.id
    assert not h.is_locked("report")  # the dead run's lock is gone
    assert h.execute(again.task) == "done"


def test_a_lock_held_by_another_task_survives_a_redelivery(h: huey.MemoryHuey) -> None:
    lock = h.lock_task("shared")

    @h.task()
    def work() -> None:
        pass

    work()
    h._local.current_task = huey.api.Task(id="somebody-else")
    lock.acquire()
    h._local.current_task = None
    crash(h)
    assert _delivery.take(h) is not None
    assert h.is_locked("shared")


def crash_holding_lock(h: huey.Huey, lock: huey.api.TaskLock) -> _delivery.Taken:
    """Take a task, take ``lock`` as that task would, then die holding both."""
    taken = _delivery.take(h)
    assert taken is not None
    h._local.current_task = taken.task
    lock.acquire()
    h._local.current_task = None
    time.sleep(LEASE * 2)
    assert h.storage.requeue_expired() == 1
    return taken


def test_a_lock_created_in_the_task_body_is_taken_over_by_its_redelivery(
    h: huey.MemoryHuey,
) -> None:
    """The lock is unknown to the new process until the body runs: it heals there."""
    runs: list[str] = []

    @h.task()
    def report() -> str:
        with h.lock_task("body-lock"):
            runs.append("ran")
            return "done"

    report()
    taken = _delivery.take(h)
    assert taken is not None
    h._local.current_task = taken.task  # the dead run took the lock, then its worker died
    h.lock_task("body-lock").acquire()
    h._local.current_task = None
    h._locks.discard("leases.lock.body-lock")  # a new process has not seen the lock yet
    time.sleep(LEASE * 2)
    assert h.storage.requeue_expired() == 1
    again = _delivery.take(h)
    assert again is not None and h.is_locked("body-lock")  # not released by the take
    assert h.execute(again.task) == "done"  # ... but taken over by the run itself
    assert runs == ["ran"] and not h.is_locked("body-lock")


def test_takeover_is_only_for_the_same_task_and_only_once_per_run(h: huey.MemoryHuey) -> None:
    lock = h.lock_task("guarded")

    @h.task()
    def work() -> None:
        pass

    work()
    taken = crash_holding_lock(h, lock)
    h._locks.discard("leases.lock.guarded")
    again = _delivery.take(h)
    assert again is not None and again.task.id == taken.task.id
    h._local.current_task = again.task
    try:
        lock.acquire()  # its own dead run's lock: taken over
        with pytest.raises(huey.exceptions.TaskLockedException):
            lock.acquire()  # a nested acquire fails, as upstream's does
        other = huey.api.Task(id="another-task")
        other._healed_locks = set()  # type: ignore[attr-defined]
        h._local.current_task = other
        with pytest.raises(huey.exceptions.TaskLockedException):
            lock.acquire()  # held by another task: never taken over
    finally:
        h._local.current_task = None
