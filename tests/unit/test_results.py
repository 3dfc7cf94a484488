"""Result, ResultGroup (spec §7)."""

from __future__ import annotations

import datetime
import threading
import time

import pytest

from huey import MemoryHuey
from huey.api import Result, ResultGroup, Task, TaskWrapper
from huey.constants import EmptyData
from huey.exceptions import ResultTimeout, TaskException
from huey.utils import Error
from tests.unit.conftest import Recorder, approx_now_plus, run_all, run_next


@pytest.fixture
def add(huey: MemoryHuey) -> TaskWrapper:
    @huey.task()
    def add(a: int, b: int) -> int:
        return a + b

    return add


def test_result_attributes(huey: MemoryHuey, add: TaskWrapper) -> None:
    res = add(1, 2)
    assert isinstance(res, Result)
    assert res.huey is huey
    assert isinstance(res.task, add.task_class)
    assert res.id == res.task.id
    assert res.revoke_id == "r:" + res.id
    assert res._result is EmptyData
    assert repr(res) == f"<Result: task {res.id}>"


def test_get_before_ready_returns_none(huey: MemoryHuey, add: TaskWrapper) -> None:
    res = add(1, 2)
    assert res.get() is None
    assert res() is None


def test_get_is_destructive_but_cached_on_handle(huey: MemoryHuey, add: TaskWrapper) -> None:
    res = add(1, 2)
    run_next(huey)
    assert res.get() == 3
    assert huey.get_raw(res.id, peek=True) is EmptyData  # consumed from storage
    assert res.get() == 3  # the handle keeps its local copy
    assert res() == 3
    assert Result(huey, res.task).get() is None  # a second handle finds nothing


def test_get_preserve_keeps_storage(huey: MemoryHuey, add: TaskWrapper) -> None:
    res = add(1, 2)
    run_next(huey)
    assert res.get(preserve=True) == 3
    assert huey.get_raw(res.id, peek=True) is not EmptyData
    assert Result(huey, res.task).get() == 3


def test_blocking_get_timeout(huey: MemoryHuey, add: TaskWrapper) -> None:
    res = add(1, 2)
    with pytest.raises(ResultTimeout, match="timed out waiting for result"):
        res.get(blocking=True, timeout=0.1)
    assert res.is_revoked() is False


def test_blocking_get_timeout_zero_gives_up_at_once(huey: MemoryHuey, add: TaskWrapper) -> None:
    res = add(1, 2)
    with pytest.raises(ResultTimeout):
        res.get(blocking=True, timeout=0)


def test_blocking_get_revoke_on_timeout(huey: MemoryHuey, add: TaskWrapper) -> None:
    res = add(1, 2)
    with pytest.raises(ResultTimeout):
        res.get(blocking=True, timeout=0.05, revoke_on_timeout=True)
    assert res.is_revoked() is True
    assert run_next(huey) is None  # the revocation skips the task


def test_blocking_get_returns_ready_value(huey: MemoryHuey, add: TaskWrapper) -> None:
    res = add(4, 5)
    run_next(huey)
    assert res.get(blocking=True, timeout=5) == 9


def test_blocking_get_waits_for_worker(huey: MemoryHuey, add: TaskWrapper) -> None:
    res = add(4, 5)

    def worker() -> None:
        time.sleep(0.1)
        run_next(huey)

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert res.get(blocking=True, timeout=30, backoff=1.1, max_delay=0.05) == 9
    finally:
        thread.join(30)


def test_is_ready_consumes_and_caches(huey: MemoryHuey, add: TaskWrapper) -> None:
    res = add(1, 1)
    assert res.is_ready() is False
    run_next(huey)
    assert res.is_ready() is True
    assert huey.get_raw(res.id, peek=True) is EmptyData
    assert res.get() == 2
    assert res.is_ready() is True


def test_error_raises_task_exception_until_reset(huey: MemoryHuey) -> None:
    attempts: list[int] = []

    @huey.task(retries=1)
    def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ValueError("first attempt")
        return "second"

    res = flaky()
    run_next(huey)
    with pytest.raises(TaskException) as info:
        res.get()
    meta = info.value.metadata
    assert meta["error"] == repr(ValueError("first attempt"))
    assert meta["task_id"] == res.id
    assert meta["retries"] == 1
    assert str(info.value) == meta["error"]
    run_next(huey)  # the retry succeeds
    with pytest.raises(TaskException):
        res.get()  # the cached Error keeps raising
    res.reset()
    assert res._result is EmptyData
    assert res.get() == "second"


def test_get_raw_result_returns_error(huey: MemoryHuey) -> None:
    @huey.task()
    def boom() -> None:
        raise ValueError("x")

    res = boom()
    run_next(huey)
    raw = res.get_raw_result()
    assert isinstance(raw, Error)
    assert raw.metadata["error"] == repr(ValueError("x"))
    assert res.get_raw_result() is raw or res.get_raw_result() == raw


def test_get_raw_result_blocking_timeout(huey: MemoryHuey, add: TaskWrapper) -> None:
    res = add(1, 2)
    with pytest.raises(ResultTimeout):
        res.get_raw_result(blocking=True, timeout=0.05)


def test_get_raw_result_value(huey: MemoryHuey, add: TaskWrapper) -> None:
    res = add(1, 2)
    run_next(huey)
    assert res.get_raw_result() == 3


def test_result_revoke_defaults_to_once(huey: MemoryHuey, add: TaskWrapper) -> None:
    res = add(1, 2)
    res.revoke()
    assert huey.get(res.revoke_id, peek=True) == (None, True)
    assert res.is_revoked() is True
    assert run_next(huey) is None
    assert res.is_revoked() is False  # the one-shot flag was consumed


def test_result_revoke_persistent(huey: MemoryHuey, add: TaskWrapper) -> None:
    res = add(1, 2)
    res.revoke(revoke_once=False)
    assert huey.get(res.revoke_id, peek=True) == (None, False)


def test_result_restore(huey: MemoryHuey, add: TaskWrapper) -> None:
    res = add(1, 2)
    assert res.restore() is False
    res.revoke()
    assert res.restore() is True
    assert res.is_revoked() is False
    assert run_next(huey) == 3


def test_result_is_revoked_sees_class_flag(huey: MemoryHuey, add: TaskWrapper) -> None:
    res = add(1, 2)
    add.revoke()
    assert res.is_revoked() is True


def test_reschedule(huey: MemoryHuey, recorder: Recorder) -> None:
    @huey.task(retries=2, retry_delay=3, retry_backoff=2, timeout=9)
    def add(a: int, b: int = 0) -> int:
        return a + b

    res = huey.enqueue(add.s(1, b=2, priority=4, expires=100))
    original = huey.dequeue()
    new = res.reschedule()
    assert isinstance(new, Result)
    assert new.id != res.id
    task = huey.dequeue()
    assert task.id == new.id
    assert type(task) is type(original)
    assert task.args == (1,) and task.kwargs == {"b": 2}
    assert (task.retries, task.retry_delay, task.retry_backoff, task.timeout) == (2, 3, 2, 9)
    assert (task.priority, task.expires) == (4, 100)
    assert task.eta is None
    # The old instance was revoked (one-shot); the new one runs.
    assert huey.execute(original) is None
    assert recorder.for_task(res.id)[-1] == "revoked"
    assert huey.execute(task) == 3
    assert new.get() == 3


def test_reschedule_with_delay_and_overrides(huey: MemoryHuey, add: TaskWrapper) -> None:
    res = huey.enqueue(add.s(1, 2, priority=1, expires=10))
    huey.dequeue()
    new = res.reschedule(delay=60, priority=7, expires=500)
    task = huey.pending()[0]
    assert task.id == new.id
    assert approx_now_plus(task.eta, 60)
    assert (task.priority, task.expires) == (7, 500)


def test_reschedule_with_eta(huey: MemoryHuey, add: TaskWrapper) -> None:
    res = add(1, 2)
    huey.dequeue()
    eta = datetime.datetime(2030, 5, 5, 5, 5)
    res.reschedule(eta=eta)
    assert huey.pending()[0].eta == eta


def test_reschedule_preserve_pipeline(huey: MemoryHuey, add: TaskWrapper) -> None:
    @huey.task()
    def handler(exc: Exception) -> None:
        return None

    group = huey.enqueue(add.s(1, 2).then(add, 10).error(handler))
    head = list(group)[0]
    huey.dequeue()
    kept = head.reschedule()
    task = huey.dequeue()
    assert task.on_complete is not None and task.on_error is not None
    assert isinstance(kept, ResultGroup)
    dropped = head.reschedule(preserve_pipeline=False)
    task2 = huey.dequeue()
    assert task2.id == dropped.id
    assert task2.on_complete is None and task2.on_error is None


def test_reschedule_copies_chord_config(huey: MemoryHuey, add: TaskWrapper) -> None:
    from huey.utils import ChordConfig

    task = add.s(1, 2)
    task.chord_config = ChordConfig("cid", 1, 0, add.s(0))
    res = huey.enqueue(task)
    huey.dequeue()
    res.reschedule()
    assert huey.dequeue().chord_config == task.chord_config


# --------------------------------------------------------------------------------------
# §7.2 ResultGroup
# --------------------------------------------------------------------------------------


def test_result_group_get_and_call(huey: MemoryHuey, add: TaskWrapper) -> None:
    group = add.map([(1, 1), (2, 2), (3, 3)])
    assert isinstance(group, ResultGroup)
    run_all(huey)
    assert group.get() == [2, 4, 6]
    assert group() == [2, 4, 6]  # cached on each handle


def test_result_group_get_forwards_arguments(huey: MemoryHuey, add: TaskWrapper) -> None:
    group = add.map([(1, 1), (2, 2)])
    with pytest.raises(ResultTimeout):
        group.get(blocking=True, timeout=0.05)
    run_all(huey)
    assert group.get(preserve=True) == [2, 4]
    assert ResultGroup([Result(huey, r.task) for r in group]).get() == [2, 4]


def test_result_group_getitem_returns_values(huey: MemoryHuey, add: TaskWrapper) -> None:
    group = add.map([(1, 1), (2, 2)])
    run_all(huey)
    assert group[0] == 2
    assert group[1] == 4


def test_result_group_getitem_blocks(huey: MemoryHuey, add: TaskWrapper) -> None:
    group = add.map([(1, 1)])

    def worker() -> None:
        time.sleep(0.1)
        run_next(huey)

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert group[0] == 2  # blocking read: waits for the worker thread
    finally:
        thread.join(30)


def test_result_group_iter_and_len(huey: MemoryHuey, add: TaskWrapper) -> None:
    group = add.map([(1, 1), (2, 2), (3, 3)])
    assert len(group) == 3
    items = list(group)
    assert all(isinstance(r, Result) for r in items)
    assert [r.task.args for r in items] == [(1, 1), (2, 2), (3, 3)]


def test_as_completed_yields_in_completion_order(huey: MemoryHuey, add: TaskWrapper) -> None:
    group = add.map([(1, 1), (2, 2)])
    first, second = huey.dequeue(), huey.dequeue()
    huey.execute(second)
    gen = group.as_completed(backoff=1.1, max_delay=0.05)
    assert next(gen) == 4
    huey.execute(first)
    assert next(gen) == 2
    with pytest.raises(StopIteration):
        next(gen)


def test_as_completed_waits_for_slow_members(huey: MemoryHuey, add: TaskWrapper) -> None:
    group = add.map([(5, 5), (6, 6)])

    def worker() -> None:
        time.sleep(0.1)
        run_all(huey)

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert sorted(group.as_completed(max_delay=0.05)) == [10, 12]
    finally:
        thread.join(30)


def test_as_completed_raises_for_errors(huey: MemoryHuey) -> None:
    @huey.task()
    def maybe(fail: bool) -> str:
        if fail:
            raise ValueError("nope")
        return "ok"

    group = maybe.map([True])
    run_all(huey)
    with pytest.raises(TaskException):
        list(group.as_completed(max_delay=0.05))


def test_result_for_unknown_task_id(huey: MemoryHuey) -> None:
    res = Result(huey, Task(id="nothing-here"))
    assert res.get() is None
    assert res.id == "nothing-here"
