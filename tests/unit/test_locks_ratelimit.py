"""TaskLock (spec §12) and RateLimit (spec §13), standalone and inside tasks."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from huey import MemoryHuey
from huey.api import RateLimit, TaskLock
from huey.constants import EmptyData
from huey.exceptions import RateLimitExceeded, TaskException, TaskLockedException
from huey.utils import Error
from tests.unit.conftest import Recorder, approx_now_plus, run_all, run_next

# --------------------------------------------------------------------------------------
# §12 TaskLock
# --------------------------------------------------------------------------------------


def _lock_key(huey: MemoryHuey, name: str) -> str:
    return f"{huey.name}.lock.{name}"


def test_lock_registered_at_construction(huey: MemoryHuey) -> None:
    lock = TaskLock(huey, "reg")
    assert isinstance(lock, TaskLock)
    assert _lock_key(huey, "reg") in huey._locks
    assert huey.get_raw(_lock_key(huey, "reg"), peek=True) is EmptyData  # not acquired


def test_lock_task_registers_too(huey: MemoryHuey) -> None:
    huey.lock_task("via-factory")
    assert _lock_key(huey, "via-factory") in huey._locks


def test_acquire_stores_key_with_value_one(huey: MemoryHuey) -> None:
    lock = huey.lock_task("k")
    assert lock.acquire() is True
    assert huey.storage.has_data_for_key(_lock_key(huey, "k"))
    assert huey.get(_lock_key(huey, "k"), peek=True) == "1"


def test_second_acquire_raises(huey: MemoryHuey) -> None:
    lock = huey.lock_task("busy")
    lock.acquire()
    with pytest.raises(TaskLockedException) as info:
        lock.acquire()
    assert str(info.value) == "unable to acquire lock busy"
    with pytest.raises(TaskLockedException):
        huey.lock_task("busy").acquire()  # a second object, same key


def test_context_manager(huey: MemoryHuey) -> None:
    lock = huey.lock_task("ctx")
    with lock as entered:
        assert entered is lock
        assert lock.is_locked() is True
        assert huey.is_locked("ctx") is True
    assert lock.is_locked() is False
    assert huey.get_raw(_lock_key(huey, "ctx"), peek=True) is EmptyData


def test_context_manager_releases_on_error(huey: MemoryHuey) -> None:
    lock = huey.lock_task("ctx-err")
    with pytest.raises(RuntimeError):
        with lock:
            raise RuntimeError("inside")
    assert lock.is_locked() is False


def test_failed_enter_keeps_other_holders_lock(huey: MemoryHuey) -> None:
    lock = huey.lock_task("held")
    lock.acquire()
    ran: list[int] = []
    with pytest.raises(TaskLockedException):
        with huey.lock_task("held"):
            ran.append(1)
    assert ran == []
    assert lock.is_locked() is True


def test_decorator(huey: MemoryHuey) -> None:
    lock = huey.lock_task("deco")
    seen: list[bool] = []

    @lock
    def work(x: int) -> int:
        seen.append(lock.is_locked())
        return x * 2

    assert work(4) == 8
    assert seen == [True]
    assert lock.is_locked() is False
    lock.acquire()
    with pytest.raises(TaskLockedException):
        work(1)
    assert lock.is_locked() is True


def test_is_locked_and_locked_alias(huey: MemoryHuey) -> None:
    lock = huey.lock_task("alias")
    assert lock.is_locked() is False
    assert lock.locked() is False
    lock.acquire()
    assert lock.is_locked() is True
    assert lock.locked() is True


def test_clear_and_release(huey: MemoryHuey) -> None:
    lock = huey.lock_task("clr")
    assert lock.clear() is False
    lock.acquire()
    assert lock.clear() is True
    assert lock.is_locked() is False
    lock.acquire()
    assert lock.release() is True
    assert lock.release() is False
    assert lock.acquire() is True


def test_ttl_accepted_on_memory_storage(huey: MemoryHuey) -> None:
    lock = huey.lock_task("ttl", ttl=30)
    assert lock.acquire() is True
    with pytest.raises(TaskLockedException):
        lock.acquire()
    assert lock.clear() is True


def test_lock_inside_task_no_retries(huey: MemoryHuey, recorder: Recorder) -> None:
    lock = huey.lock_task("job")

    @huey.task()
    @lock
    def job() -> str:
        return "ran"

    lock.acquire()
    res = job()
    assert run_next(huey) is None
    assert recorder.names == ["enqueued", "executing", "locked"]
    raw = huey.get(res.id, peek=True)
    assert isinstance(raw, Error)
    with pytest.raises(TaskException):
        res.get()
    assert lock.is_locked() is True  # the holder's lock is untouched


def test_lock_inside_task_with_retries(huey: MemoryHuey, recorder: Recorder) -> None:
    lock = huey.lock_task("job2")

    @huey.task(retries=1)
    @lock
    def job() -> str:
        return "ran"

    lock.acquire()
    res = job()
    run_next(huey)
    assert recorder.names == ["enqueued", "executing", "locked", "retrying", "enqueued"]
    assert huey.get_raw(res.id, peek=True) is EmptyData  # pending retry: no Error stored
    lock.release()
    run_all(huey)
    assert res.get() == "ran"
    assert lock.is_locked() is False


def test_lock_inside_task_logs_warning(huey: MemoryHuey, caplog: pytest.LogCaptureFixture) -> None:
    lock = huey.lock_task("warned")

    @huey.task()
    @lock
    def job() -> None:
        return None

    lock.acquire()
    job()
    with caplog.at_level("DEBUG"):
        run_next(huey)
    assert any(r.levelname == "WARNING" and r.name.startswith("huey") for r in caplog.records)


# --------------------------------------------------------------------------------------
# §13 RateLimit
# --------------------------------------------------------------------------------------


def _window(per: int) -> int:
    return int(time.time()) // per


def test_rate_limit_keys_and_counting(huey: MemoryHuey) -> None:
    rl = huey.rate_limit("api", 3, 3600)
    assert isinstance(rl, RateLimit)
    before = _window(3600)
    rl.acquire()
    after = _window(3600)
    counter = f"{huey.name}.rl.api"
    marker = f"{huey.name}.rl.api.w"
    assert huey.storage.incr(counter, 0) == 1
    assert huey.get(marker, peek=True) in (before, after)
    rl.acquire()
    assert rl.current_usage() == 2
    assert huey.storage.incr(counter, 0) == 2


def test_rate_limit_exceeded(huey: MemoryHuey) -> None:
    rl = RateLimit(huey, "api", 2, 3600)
    rl.acquire()
    rl.acquire()
    with pytest.raises(RateLimitExceeded) as info:
        rl.acquire()
    err = info.value
    assert err.key == "api"
    assert err.retry is True
    assert 0 < err.delay <= 3600
    assert re.fullmatch(r'Rate limit exceeded on "api", retry in \d+(\.\d+)?s', str(err))
    assert rl.current_usage() == 3  # rejected calls still count
    with pytest.raises(RateLimitExceeded):
        rl.acquire()
    assert rl.current_usage() == 4


def test_rate_limit_exceeded_without_retry(huey: MemoryHuey) -> None:
    rl = huey.rate_limit("noretry", 1, 3600, retry=False)
    rl.acquire()
    with pytest.raises(RateLimitExceeded) as info:
        rl.acquire()
    assert info.value.retry is False
    assert str(info.value) == 'Rate limit exceeded on "noretry"'


def test_rate_limit_new_window_resets_counter(huey: MemoryHuey) -> None:
    rl = huey.rate_limit("win", 1, 3600)
    rl.acquire()
    with pytest.raises(RateLimitExceeded):
        rl.acquire()
    huey.put(f"{huey.name}.rl.win.w", _window(3600) - 1)  # pretend the window is old
    rl.acquire()
    assert rl.current_usage() == 1


def test_rate_limit_reset(huey: MemoryHuey) -> None:
    rl = huey.rate_limit("rst", 1, 3600)
    rl.acquire()
    rl.reset()
    assert rl.current_usage() == 0
    assert huey.get_raw(f"{huey.name}.rl.rst.w", peek=True) is EmptyData
    rl.acquire()
    assert rl.current_usage() == 1


def test_rate_limit_current_usage_starts_at_zero(huey: MemoryHuey) -> None:
    assert huey.rate_limit("fresh", 1, 60).current_usage() == 0


def test_rate_limit_decorator(huey: MemoryHuey) -> None:
    rl = huey.rate_limit("deco", 2, 3600)

    @rl
    def call(x: int) -> int:
        return x + 1

    assert call(1) == 2
    assert call(2) == 3
    with pytest.raises(RateLimitExceeded):
        call(3)
    assert rl.current_usage() == 3


def test_rate_limit_context_manager(huey: MemoryHuey) -> None:
    rl = huey.rate_limit("cm", 1, 3600)
    with rl as entered:
        assert entered is None
    assert rl.current_usage() == 1
    with pytest.raises(RateLimitExceeded):
        with rl:
            pytest.fail("the block must not run when the limit is exceeded")


def _limited_task(huey: MemoryHuey, retry: bool, **task_options: Any) -> tuple[Any, RateLimit]:
    rl = huey.rate_limit("worker-" + str(retry), 1, 3600, retry=retry)

    @huey.task(**task_options)
    @rl
    def limited() -> str:
        return "ran"

    return limited, rl


def test_worker_rate_limit_retry_true_no_retries(huey: MemoryHuey, recorder: Recorder) -> None:
    limited, rl = _limited_task(huey, retry=True)
    first = limited()
    second = limited()
    run_next(huey)
    assert first.get() == "ran"
    recorder.clear()
    run_next(huey)
    assert recorder.names == ["executing", "rate-limited", "retrying", "scheduled"]
    (task,) = huey.scheduled()
    assert task.id == second.id
    assert task.retries == 0
    window_end = (_window(3600) + 1) * 3600
    assert approx_now_plus(task.eta, window_end - time.time(), tolerance=15)
    assert huey.get_raw(second.id, peek=True) is EmptyData


def test_worker_rate_limit_retry_true_with_retry_delay(huey: MemoryHuey) -> None:
    limited, _ = _limited_task(huey, retry=True, retry_delay=20)
    limited()
    limited()
    run_next(huey)
    run_next(huey)
    (task,) = huey.scheduled()
    assert approx_now_plus(task.eta, 20, tolerance=5)


def test_worker_rate_limit_retry_true_keeps_retries(huey: MemoryHuey) -> None:
    limited, _ = _limited_task(huey, retry=True, retries=3)
    limited()
    limited()
    run_next(huey)
    run_next(huey)
    (task,) = huey.scheduled()
    assert task.retries == 3


def test_worker_rate_limit_retry_false_no_retries(huey: MemoryHuey, recorder: Recorder) -> None:
    limited, _ = _limited_task(huey, retry=False)
    limited()
    second = limited()
    run_next(huey)
    recorder.clear()
    run_next(huey)
    assert recorder.names == ["executing", "rate-limited"]
    assert huey.scheduled_count() == 0 and huey.pending_count() == 0
    with pytest.raises(TaskException):
        second.get()


def test_worker_rate_limit_retry_false_with_retries(huey: MemoryHuey) -> None:
    limited, _ = _limited_task(huey, retry=False, retries=2)
    limited()
    second = limited()
    run_next(huey)
    run_next(huey)
    (task,) = huey.scheduled()
    assert task.retries == 1
    window_end = (_window(3600) + 1) * 3600
    assert approx_now_plus(task.eta, window_end - time.time(), tolerance=15)
    assert huey.get_raw(second.id, peek=True) is EmptyData
