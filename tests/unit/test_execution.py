"""The execution algorithm: outcomes, signals, retries, expiry, priority (spec §5, §6, §11.3)."""

from __future__ import annotations

import datetime
import time
import uuid
from typing import Any

import pytest

from huey import MemoryHuey, RetryTask
from huey.api import Task
from huey.constants import EmptyData
from huey.exceptions import (
    CancelExecution,
    RateLimitExceeded,
    TaskException,
    TaskLockedException,
    TaskTimeout,
)
from huey.utils import Error
from tests.unit.conftest import Recorder, approx_now_plus, far_future, run_all, run_next


def _stored(huey: MemoryHuey, task_id: str) -> Any:
    """The deserialized value stored under ``task_id`` (peek), or EmptyData."""
    raw = huey.get_raw(task_id, peek=True)
    return raw if raw is EmptyData else huey.serializer.deserialize(raw)


# --------------------------------------------------------------------------------------
# Outcome table (§5 step 4) and the signal sequences of §11.3
# --------------------------------------------------------------------------------------


def test_success(huey: MemoryHuey, recorder: Recorder) -> None:
    @huey.task()
    def add(a: int, b: int) -> int:
        return a + b

    res = add(1, 2)
    assert run_next(huey) == 3
    assert _stored(huey, res.id) == 3
    assert recorder.names == ["enqueued", "executing", "complete"]
    assert huey._tasks_in_flight == set()


def test_task_is_in_flight_while_running(huey: MemoryHuey) -> None:
    seen: list[bool] = []

    @huey.task(context=True)
    def work(task: Task | None = None) -> None:
        seen.append(task in huey._tasks_in_flight)

    work()
    run_next(huey)
    assert seen == [True]
    assert len(huey._tasks_in_flight) == 0


def test_plain_exception(huey: MemoryHuey, recorder: Recorder) -> None:
    @huey.task()
    def boom() -> None:
        raise ValueError("bad value")

    res = boom()
    assert run_next(huey) is None
    assert recorder.names == ["enqueued", "executing", "error"]
    _, _, extra = recorder.calls[2]
    assert len(extra) == 1 and isinstance(extra[0], ValueError)
    error = _stored(huey, res.id)
    assert isinstance(error, Error)
    assert error.metadata["error"] == repr(ValueError("bad value"))
    assert error.metadata["retries"] == 0
    assert error.metadata["task_id"] == res.id
    assert "bad value" in error.metadata["traceback"]
    with pytest.raises(TaskException) as info:
        res.get()
    assert str(info.value) == repr(ValueError("bad value"))
    assert huey.pending_count() == 0 and huey.scheduled_count() == 0


def test_error_with_retries_no_delay(huey: MemoryHuey, recorder: Recorder) -> None:
    attempts: list[int] = []

    @huey.task(retries=2)
    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ValueError("not yet")
        return "ok"

    res = flaky()
    first = huey.dequeue()
    huey.execute(first)
    assert recorder.names == ["enqueued", "executing", "error", "retrying", "enqueued"]
    requeued = huey.pending()[0]
    assert requeued.id == res.id
    assert requeued.retries == 1
    run_all(huey)
    assert len(attempts) == 3
    assert res.get() == "ok"


def test_error_with_retries_and_delay(huey: MemoryHuey, recorder: Recorder) -> None:
    @huey.task(retries=1, retry_delay=30)
    def boom() -> None:
        raise ValueError("x")

    res = boom()
    run_next(huey)
    assert recorder.names == ["enqueued", "executing", "error", "retrying", "scheduled"]
    assert huey.pending_count() == 0
    scheduled = huey.scheduled()
    assert [t.id for t in scheduled] == [res.id]
    assert scheduled[0].retries == 0
    assert approx_now_plus(scheduled[0].eta, 30)


def test_error_without_retries_enqueues_on_error(huey: MemoryHuey, recorder: Recorder) -> None:
    @huey.task()
    def boom() -> None:
        raise ValueError("x")

    @huey.task()
    def handler(exc: Exception) -> None:
        return None

    res = huey.enqueue(boom.s().error(handler))
    run_next(huey)
    assert recorder.for_task(res.id) == ["enqueued", "executing", "error"]
    assert recorder.names[-1] == "enqueued"
    assert huey.pending()[0].args[0].args == ("x",)


def test_task_timeout_outcome(huey: MemoryHuey, recorder: Recorder) -> None:
    @huey.task()
    def slow() -> None:
        raise TaskTimeout("timeout 1s")

    res = slow()
    run_next(huey)
    assert recorder.names == ["enqueued", "executing", "timeout"]
    assert isinstance(_stored(huey, res.id), Error)


def test_task_timeout_with_retries(huey: MemoryHuey, recorder: Recorder) -> None:
    @huey.task(retries=1)
    def slow() -> None:
        raise TaskTimeout("timeout 1s")

    res = slow()
    run_next(huey)
    assert recorder.names == ["enqueued", "executing", "timeout", "retrying", "enqueued"]
    assert huey.pending()[0].retries == 0  # no adjustment: a normal decrement
    assert isinstance(_stored(huey, res.id), Error)  # intermediate error stored


def test_cooperative_timeout(huey: MemoryHuey, recorder: Recorder) -> None:
    remaining: list[float] = []

    @huey.task(timeout=0.05, context=True)
    def slow(task: Task | None = None) -> None:
        assert task is not None
        remaining.append(task.time_remaining)
        time.sleep(0.1)
        task.check_timeout()

    slow()
    run_next(huey)
    assert 0 < remaining[0] <= 0.05
    assert recorder.names == ["enqueued", "executing", "timeout"]


def test_deadline_not_set_without_timeout(huey: MemoryHuey) -> None:
    seen: list[Any] = []

    @huey.task(context=True)
    def work(task: Task | None = None) -> None:
        assert task is not None
        seen.append((task._deadline, task.time_remaining))

    work()
    run_next(huey)
    assert seen == [(None, float("inf"))]


def test_rate_limited_retry_true_no_retries(huey: MemoryHuey, recorder: Recorder) -> None:
    @huey.task()
    def limited() -> None:
        raise RateLimitExceeded("api", 100)

    res = limited()
    run_next(huey)
    assert recorder.names == ["enqueued", "executing", "rate-limited", "retrying", "scheduled"]
    (task,) = huey.scheduled()
    assert task.id == res.id
    assert task.retries == 0  # preserved: +1 then the requeue decrement
    assert approx_now_plus(task.eta, 100)
    assert _stored(huey, res.id) is EmptyData  # a pending retry is not an error


def test_rate_limited_retry_true_uses_retry_delay(huey: MemoryHuey) -> None:
    @huey.task(retry_delay=7)
    def limited() -> None:
        raise RateLimitExceeded("api", 100)

    limited()
    run_next(huey)
    (task,) = huey.scheduled()
    assert approx_now_plus(task.eta, 7, tolerance=5)


def test_rate_limited_retry_true_keeps_retry_count(huey: MemoryHuey) -> None:
    @huey.task(retries=2)
    def limited() -> None:
        raise RateLimitExceeded("api", 50)

    limited()
    run_next(huey)
    (task,) = huey.scheduled()
    assert task.retries == 2
    assert approx_now_plus(task.eta, 50)


def test_rate_limited_retry_false_no_retries_is_final(huey: MemoryHuey, recorder: Recorder) -> None:
    @huey.task()
    def limited() -> None:
        raise RateLimitExceeded("api", 100, retry=False)

    res = limited()
    run_next(huey)
    assert recorder.names == ["enqueued", "executing", "rate-limited"]
    assert huey.scheduled_count() == 0 and huey.pending_count() == 0
    assert isinstance(_stored(huey, res.id), Error)


def test_rate_limited_retry_false_with_retries_decrements(huey: MemoryHuey) -> None:
    @huey.task(retries=2)
    def limited() -> None:
        raise RateLimitExceeded("api", 100, retry=False)

    res = limited()
    run_next(huey)
    (task,) = huey.scheduled()
    assert task.retries == 1
    assert approx_now_plus(task.eta, 100)
    assert _stored(huey, res.id) is EmptyData


def test_locked_no_retries(huey: MemoryHuey, recorder: Recorder) -> None:
    @huey.task()
    def locked() -> None:
        raise TaskLockedException("unable to acquire lock x")

    res = locked()
    run_next(huey)
    assert recorder.names == ["enqueued", "executing", "locked"]
    assert isinstance(_stored(huey, res.id), Error)


def test_locked_with_retries_is_not_stored(huey: MemoryHuey, recorder: Recorder) -> None:
    @huey.task(retries=1)
    def locked() -> None:
        raise TaskLockedException("unable to acquire lock x")

    res = locked()
    run_next(huey)
    assert recorder.names == ["enqueued", "executing", "locked", "retrying", "enqueued"]
    assert huey.pending()[0].retries == 0
    assert _stored(huey, res.id) is EmptyData


def test_retry_task_bare_requeues_without_using_retries(
    huey: MemoryHuey, recorder: Recorder
) -> None:
    attempts: list[int] = []

    @huey.task()
    def again() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise RetryTask()
        return "done"

    res = again()
    run_next(huey)
    assert recorder.names == ["enqueued", "executing", "retrying", "enqueued"]
    assert huey.pending()[0].retries == 0
    assert _stored(huey, res.id) is EmptyData
    run_all(huey)
    assert res.get() == "done"


def test_retry_task_keeps_remaining_retries(huey: MemoryHuey) -> None:
    @huey.task(retries=3)
    def again() -> None:
        raise RetryTask()

    again()
    run_next(huey)
    assert huey.pending()[0].retries == 3


def test_retry_task_with_delay(huey: MemoryHuey, recorder: Recorder) -> None:
    @huey.task(retry_delay=5)
    def again() -> None:
        raise RetryTask(delay=120)

    again()
    run_next(huey)
    assert recorder.names == ["enqueued", "executing", "retrying", "scheduled"]
    (task,) = huey.scheduled()
    assert approx_now_plus(task.eta, 120)


def test_retry_task_with_eta(huey: MemoryHuey) -> None:
    eta = datetime.datetime.now() + datetime.timedelta(hours=2)

    @huey.task()
    def again() -> None:
        raise RetryTask(eta=eta)

    again()
    run_next(huey)
    (task,) = huey.scheduled()
    assert abs((task.eta - eta).total_seconds()) < 1


def test_retry_task_bare_follows_retry_delay_and_backoff(huey: MemoryHuey) -> None:
    @huey.task(retry_delay=10, retry_backoff=2)
    def again() -> None:
        raise RetryTask()

    again()
    run_next(huey)
    (task,) = huey.scheduled()
    assert approx_now_plus(task.eta, 10, tolerance=5)
    assert task.retry_delay == 20


def test_retry_task_explicit_delay_does_not_advance_backoff(huey: MemoryHuey) -> None:
    @huey.task(retry_delay=10, retry_backoff=2)
    def again() -> None:
        raise RetryTask(delay=60)

    again()
    run_next(huey)
    (task,) = huey.scheduled()
    assert task.retry_delay == 10


@pytest.mark.parametrize(
    ("retry", "retries", "expect_retry", "left_after"),
    [
        (True, 0, True, 0),  # forced retry: retries = max(0, 1), then decrement
        (True, 3, True, 2),
        (False, 3, False, None),  # retries = 0: final
        (None, 2, True, 1),  # default follows the remaining retries
        (None, 0, False, None),
    ],
)
def test_cancel_execution_in_body(
    huey: MemoryHuey,
    recorder: Recorder,
    retry: bool | None,
    retries: int,
    expect_retry: bool,
    left_after: int | None,
) -> None:
    @huey.task(retries=retries)
    def cancel() -> None:
        raise CancelExecution(retry=retry)

    res = cancel()
    run_next(huey)
    if expect_retry:
        assert recorder.names == ["enqueued", "executing", "canceled", "retrying", "enqueued"]
        (task,) = huey.pending()
        assert task.retries == left_after
    else:
        assert recorder.names == ["enqueued", "executing", "canceled"]
        assert huey.pending_count() == 0 and huey.scheduled_count() == 0
        assert isinstance(_stored(huey, res.id), Error)


def test_cancel_execution_final_error_reports_zero_retries(huey: MemoryHuey) -> None:
    @huey.task(retries=5)
    def cancel() -> None:
        raise CancelExecution(retry=False)

    res = cancel()
    run_next(huey)
    assert _stored(huey, res.id).metadata["retries"] == 0


def test_keyboard_interrupt(huey: MemoryHuey, recorder: Recorder) -> None:
    @huey.task(retries=3)
    def interrupted() -> None:
        raise KeyboardInterrupt

    res = interrupted()
    assert run_next(huey) is None
    assert recorder.names == ["enqueued", "executing", "interrupted"]
    assert _stored(huey, res.id) is EmptyData
    assert huey.pending_count() == 0 and huey.scheduled_count() == 0
    assert len(huey._tasks_in_flight) == 0


# --------------------------------------------------------------------------------------
# Retries and backoff (§6)
# --------------------------------------------------------------------------------------


def test_retries_decrement_until_final(huey: MemoryHuey) -> None:
    seen_retries: list[int] = []

    @huey.task(retries=2, context=True)
    def boom(task: Task | None = None) -> None:
        assert task is not None
        seen_retries.append(task.retries)
        raise ValueError("x")

    res = boom()
    assert run_all(huey) == 3
    assert seen_retries == [2, 1, 0]
    error = _stored(huey, res.id)
    assert isinstance(error, Error) and error.metadata["retries"] == 0


def test_retry_delay_with_backoff(huey: MemoryHuey) -> None:
    @huey.task(retries=3, retry_delay=10, retry_backoff=2)
    def boom() -> None:
        raise ValueError("x")

    boom()
    run_next(huey)
    for expected_delay, expected_next in ((10, 20), (20, 40), (40, 80)):
        (task,) = huey.scheduled()
        assert approx_now_plus(task.eta, expected_delay, tolerance=5)
        assert task.retry_delay == expected_next
        for due in huey.read_schedule(far_future()):
            huey.enqueue(due)
        run_next(huey, timestamp=far_future())
    assert huey.scheduled_count() == 0  # retries exhausted after 3 delayed retries


def test_retry_delay_without_backoff_is_constant(huey: MemoryHuey) -> None:
    @huey.task(retries=2, retry_delay=10)
    def boom() -> None:
        raise ValueError("x")

    boom()
    run_next(huey)
    (task,) = huey.scheduled()
    assert task.retry_delay == 10
    for due in huey.read_schedule(far_future()):
        huey.enqueue(due)
    run_next(huey, timestamp=far_future())
    (task,) = huey.scheduled()
    assert task.retry_delay == 10
    assert approx_now_plus(task.eta, 10, tolerance=5)


def test_float_backoff_below_one_shrinks(huey: MemoryHuey) -> None:
    @huey.task(retries=1, retry_delay=10, retry_backoff=0.5)
    def boom() -> None:
        raise ValueError("x")

    boom()
    run_next(huey)
    (task,) = huey.scheduled()
    assert task.retry_delay == 5


# --------------------------------------------------------------------------------------
# store_intermediate_errors and on_error (§3.1, §5 step 7)
# --------------------------------------------------------------------------------------


def test_store_intermediate_errors_true(huey: MemoryHuey) -> None:
    @huey.task(retries=1)
    def boom() -> None:
        raise ValueError("x")

    @huey.task()
    def handler(exc: Exception) -> None:
        return None

    res = huey.enqueue(boom.s().error(handler))
    run_next(huey)
    error = _stored(huey, res.id)
    assert isinstance(error, Error) and error.metadata["retries"] == 1
    names = sorted(type(t).__name__ for t in huey.pending())
    assert names == ["boom", "handler"]


def test_store_intermediate_errors_false() -> None:
    h = MemoryHuey("t" + uuid.uuid4().hex[:12], utc=False, store_intermediate_errors=False)
    seen: list[Any] = []

    @h.task(retries=1)
    def boom() -> None:
        raise ValueError("x")

    @h.task()
    def handler(exc: Exception) -> None:
        seen.append(exc)

    res = h.enqueue(boom.s().error(handler))
    run_next(h)
    assert h.get_raw(res.id, peek=True) is EmptyData
    assert [type(t).__name__ for t in h.pending()] == ["boom"]
    run_next(h)  # final attempt: now the error surfaces
    assert isinstance(h.get(res.id, peek=True), Error)
    assert [type(t).__name__ for t in h.pending()] == ["handler"]
    run_all(h)
    assert len(seen) == 1 and isinstance(seen[0], ValueError)


def test_on_error_gets_exception_appended(huey: MemoryHuey) -> None:
    seen: list[tuple[Any, ...]] = []

    @huey.task()
    def boom(n: int) -> None:
        raise ValueError(f"failed {n}")

    @huey.task()
    def handler(tag: str, exc: Exception, extra: str = "") -> None:
        seen.append((tag, type(exc), exc.args, extra))

    huey.enqueue(boom.s(1).error(handler, "tag", extra="e"))
    run_all(huey)
    assert seen == [("tag", ValueError, ("failed 1",), "e")]


def test_on_error_gets_only_current_attempt_exception(huey: MemoryHuey) -> None:
    seen: list[tuple[Any, ...]] = []
    attempt: list[int] = []

    @huey.task(retries=2)
    def boom() -> None:
        attempt.append(1)
        raise ValueError(len(attempt))

    @huey.task()
    def handler(*args: Any) -> None:
        seen.append(tuple(a.args for a in args))

    huey.enqueue(boom.s().error(handler))
    run_all(huey)
    assert sorted(seen) == [((1,),), ((2,),), ((3,),)]


def test_retrying_exceptions_do_not_fire_on_error_while_retry_pending(
    huey: MemoryHuey,
) -> None:
    @huey.task()
    def again() -> None:
        raise RetryTask()

    @huey.task()
    def handler(exc: Exception) -> None:
        return None

    huey.enqueue(again.s().error(handler))
    run_next(huey)
    assert [type(t).__name__ for t in huey.pending()] == ["again"]


def test_errors_propagate_to_downstream_stages(huey: MemoryHuey) -> None:
    ran: list[str] = []

    @huey.task()
    def first() -> int:
        raise ValueError("stage one")

    @huey.task()
    def second(x: int) -> int:
        ran.append("second")
        return x

    group = huey.enqueue(first.s().then(second).then(second))
    run_all(huey)
    assert ran == []
    for res in group:
        with pytest.raises(TaskException) as info:
            res.get()
        assert info.value.metadata["error"] == repr(ValueError("stage one"))


def test_intermediate_error_not_propagated_downstream(huey: MemoryHuey) -> None:
    @huey.task(retries=1)
    def first() -> int:
        raise ValueError("x")

    @huey.task()
    def second(x: int) -> int:
        return x

    group = huey.enqueue(first.s().then(second))
    run_next(huey)
    results = list(group)
    assert isinstance(_stored(huey, results[0].id), Error)
    assert _stored(huey, results[1].id) is EmptyData


# --------------------------------------------------------------------------------------
# eta, expiry, priority (§5 steps 1-3, §6)
# --------------------------------------------------------------------------------------


def test_eta_task_is_scheduled_then_runs(huey: MemoryHuey, recorder: Recorder) -> None:
    @huey.task()
    def add(a: int, b: int) -> int:
        return a + b

    eta = datetime.datetime.now() + datetime.timedelta(minutes=10)
    res = add.schedule((1, 2), eta=eta)
    assert run_next(huey) is None
    assert huey.scheduled_count() == 1
    assert huey.read_schedule(eta - datetime.timedelta(seconds=1)) == []
    due = huey.read_schedule(eta)
    assert [t.id for t in due] == [res.id]
    huey.enqueue(due[0])
    assert run_next(huey, timestamp=eta) == 3
    assert recorder.names == ["enqueued", "scheduled", "enqueued", "executing", "complete"]


def test_execute_not_ready_returns_none(huey: MemoryHuey) -> None:
    @huey.task()
    def work() -> int:
        return 1

    ts = datetime.datetime(2030, 1, 1)
    task = work.s(eta=ts + datetime.timedelta(seconds=1))
    assert huey.execute(task, timestamp=ts) is None
    assert huey.scheduled_count() == 1
    assert huey.execute(task, timestamp=ts + datetime.timedelta(seconds=1)) == 1


def test_expired_task_is_skipped(huey: MemoryHuey, recorder: Recorder) -> None:
    ran: list[int] = []

    @huey.task(expires=60)
    def work() -> int:
        ran.append(1)
        return 1

    res = work()
    task = huey.dequeue()
    assert approx_now_plus(task.expires_resolved, 60)
    later = task.expires_resolved + datetime.timedelta(seconds=1)
    assert huey.execute(task, timestamp=later) is None
    assert ran == []
    assert recorder.for_task(res.id) == ["enqueued", "expired"]
    assert huey.result_count() == 0


def test_expiry_boundary_is_strict(huey: MemoryHuey) -> None:
    @huey.task(expires=60)
    def work() -> int:
        return 1

    work()
    task = huey.dequeue()
    assert huey.execute(task, timestamp=task.expires_resolved) == 1


def test_relative_expiry_re_resolved_on_each_enqueue(huey: MemoryHuey) -> None:
    @huey.task()
    def work() -> int:
        return 1

    task = work.s(expires=30)
    huey.enqueue(task)
    queued = huey.dequeue()
    assert approx_now_plus(queued.expires_resolved, 30)
    queued.expires_resolved = datetime.datetime(2000, 1, 1)
    huey.enqueue(queued)  # e.g. a scheduler re-enqueue or a retry
    again = huey.dequeue()
    assert approx_now_plus(again.expires_resolved, 30)


def test_absolute_expiry(huey: MemoryHuey, recorder: Recorder) -> None:
    @huey.task()
    def work() -> int:
        return 1

    deadline = datetime.datetime(2030, 1, 1, 12, 0)
    huey.enqueue(work.s(expires=deadline))
    task = huey.dequeue()
    assert task.expires_resolved == deadline
    assert huey.execute(task, timestamp=deadline + datetime.timedelta(seconds=1)) is None
    assert recorder.names[-1] == "expired"
    assert huey.execute(task, timestamp=deadline - datetime.timedelta(seconds=1)) == 1


def test_expires_zero_means_never(huey: MemoryHuey) -> None:
    @huey.task(expires=60)
    def work() -> int:
        return 1

    huey.enqueue(work.s(expires=0))
    task = huey.dequeue()
    assert task.expires_resolved is None
    assert huey.execute(task, timestamp=datetime.datetime(2099, 1, 1)) == 1


def test_retry_re_resolves_relative_expiry(huey: MemoryHuey) -> None:
    attempts: list[int] = []

    @huey.task(retries=1, expires=60)
    def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ValueError("x")
        return "ok"

    res = flaky()
    task = huey.dequeue()
    task.expires_resolved = datetime.datetime(2000, 1, 1)
    # Force the first attempt to run although its stored window is in the past: execute
    # with a timestamp before the stale window ends.
    huey.execute(task, timestamp=datetime.datetime(1999, 12, 31))
    requeued = huey.pending()[0]
    assert approx_now_plus(requeued.expires_resolved, 60)
    run_all(huey)
    assert res.get() == "ok"


def test_priority_order(huey: MemoryHuey) -> None:
    @huey.task()
    def work(tag: str) -> str:
        return tag

    huey.enqueue(work.s("none-a"))
    huey.enqueue(work.s("p1", priority=1))
    huey.enqueue(work.s("p10-a", priority=10))
    huey.enqueue(work.s("neg", priority=-1))
    huey.enqueue(work.s("p5", priority=5))
    huey.enqueue(work.s("p10-b", priority=10))
    huey.enqueue(work.s("none-b"))
    huey.enqueue(work.s("zero", priority=0))
    order = []
    while (task := huey.dequeue()) is not None:
        order.append(task.args[0])
    assert order == ["p10-a", "p10-b", "p5", "p1", "none-a", "none-b", "zero", "neg"]


def test_default_priority_from_decorator(huey: MemoryHuey) -> None:
    @huey.task(priority=50)
    def urgent() -> str:
        return "urgent"

    @huey.task()
    def normal() -> str:
        return "normal"

    normal()
    urgent()
    assert run_next(huey) == "urgent"


# --------------------------------------------------------------------------------------
# Immediate mode (§3.8)
# --------------------------------------------------------------------------------------


def test_immediate_runs_inside_enqueue(immediate_huey: MemoryHuey) -> None:
    rec = Recorder()
    immediate_huey.signal()(rec)

    @immediate_huey.task()
    def add(a: int, b: int) -> int:
        return a + b

    res = add(1, 2)
    assert res.get() == 3
    assert immediate_huey.pending_count() == 0
    assert rec.names == ["enqueued", "executing", "complete"]


def test_immediate_errors_are_stored(immediate_huey: MemoryHuey) -> None:
    @immediate_huey.task()
    def boom() -> None:
        raise ValueError("x")

    res = boom()
    with pytest.raises(TaskException):
        res.get()


def test_immediate_eta_task_never_runs(immediate_huey: MemoryHuey) -> None:
    ran: list[int] = []

    @immediate_huey.task()
    def work() -> None:
        ran.append(1)

    res = work.schedule(delay=60)
    assert ran == []
    assert immediate_huey.scheduled_count() == 1
    assert res.get() is None


def test_immediate_retries_without_delay_run_recursively(immediate_huey: MemoryHuey) -> None:
    attempts: list[int] = []

    @immediate_huey.task(retries=3)
    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ValueError("x")
        return "ok"

    res = flaky()
    assert len(attempts) == 3
    assert res.get() == "ok"


def test_immediate_retries_with_delay_go_to_schedule(immediate_huey: MemoryHuey) -> None:
    attempts: list[int] = []

    @immediate_huey.task(retries=3, retry_delay=10)
    def flaky() -> None:
        attempts.append(1)
        raise ValueError("x")

    flaky()
    assert len(attempts) == 1
    assert immediate_huey.scheduled_count() == 1


def test_immediate_pipeline_runs_nested(immediate_huey: MemoryHuey) -> None:
    @immediate_huey.task()
    def add(a: int, b: int) -> int:
        return a + b

    results = immediate_huey.enqueue(add.s(1, 2).then(add, 10).then(add, 100))
    assert results.get() == [3, 13, 113]


def test_immediate_revocation_and_hooks_apply(immediate_huey: MemoryHuey) -> None:
    ran: list[str] = []

    @immediate_huey.pre_execute()
    def hook(task: Task) -> None:
        ran.append("hook")

    @immediate_huey.task()
    def work() -> None:
        ran.append("body")

    work.revoke()
    work()
    assert ran == []
    work.restore()
    work()
    assert ran == ["hook", "body"]


def test_immediate_has_no_hard_timeout_but_cooperative_works(
    immediate_huey: MemoryHuey,
) -> None:
    assert immediate_huey._timeout_handler is None

    @immediate_huey.task(timeout=0.01, context=True)
    def slow(task: Task | None = None) -> None:
        assert task is not None
        time.sleep(0.05)
        task.check_timeout()

    res = slow()
    with pytest.raises(TaskException) as info:
        res.get()
    assert "TaskTimeout" in info.value.metadata["error"]


def test_immediate_chord_callback_runs_nested(immediate_huey: MemoryHuey) -> None:
    from huey import chord

    @immediate_huey.task()
    def square(x: int) -> int:
        return x * x

    @immediate_huey.task()
    def total(values: list[int]) -> int:
        return sum(values)

    result = immediate_huey.enqueue(chord([square.s(2), square.s(3)], total.s()))
    assert result.get() == 13
    assert immediate_huey.pending_count() == 0


def test_immediate_signal_order_for_pipeline(immediate_huey: MemoryHuey) -> None:
    rec = Recorder()
    immediate_huey.signal()(rec)

    @immediate_huey.task()
    def inc(x: int) -> int:
        return x + 1

    results = immediate_huey.enqueue(inc.s(1).then(inc))
    first, second = list(results)
    assert rec.calls == [
        ("enqueued", first.id, ()),
        ("executing", first.id, ()),
        ("complete", first.id, ()),
        ("enqueued", second.id, ()),
        ("executing", second.id, ()),
        ("complete", second.id, ()),
    ]
    assert results.get() == [2, 3]


def test_failure_path_order(huey: MemoryHuey, recorder: Recorder) -> None:
    # §5 step 7: store the Error, run post hooks, enqueue on_error, then RETRYING/requeue.
    at_post: list[tuple[Any, ...]] = []

    @huey.task(retries=1)
    def boom() -> None:
        raise ValueError("x")

    @huey.task()
    def handler(exc: Exception) -> None:
        return None

    @huey.post_execute()
    def post(task: Task, value: Any, exc: Exception | None) -> None:
        if isinstance(task, boom.task_class):
            stored = huey.get_raw(task.id, peek=True) is not EmptyData
            at_post.append((list(recorder.names), huey.pending_count(), stored))

    huey.enqueue(boom.s().error(handler))
    recorder.clear()
    run_next(huey)
    assert at_post == [(["executing", "error"], 0, True)]
    assert recorder.names == ["executing", "error", "enqueued", "retrying", "enqueued"]
    assert sorted(type(t).__name__ for t in huey.pending()) == ["boom", "handler"]
    assert type(huey.pending()[0]).__name__ == "handler"
