"""The ``Huey`` class: constructor, hooks, signals, primitives and revocation (spec §3)."""

from __future__ import annotations

import datetime
import gzip
import logging
import uuid
import zlib
from typing import Any

import pytest

from huey import BlackHoleHuey, Huey, MemoryHuey, crontab
from huey.api import RateLimit, Result, Task, TaskLock, TaskWrapper
from huey.constants import EmptyData
from huey.exceptions import CancelExecution, ResultTimeout, TaskException
from huey.serializer import Serializer
from huey.storage import BlackHoleStorage, MemoryStorage
from huey.utils import Error
from tests.unit.conftest import Recorder, approx_now_plus, run_all, run_next


def _name() -> str:
    return "t" + uuid.uuid4().hex[:12]


class RecordingStorage(MemoryStorage):
    """A MemoryStorage that remembers the keyword arguments it was built with."""

    def __init__(self, name: str = "huey", **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.received_name = name
        self.received_kwargs = kwargs


def _registered(huey: Huey) -> TaskWrapper:
    """A registered no-op task, so its instances can be serialized and read back."""

    @huey.task(name="noop_" + uuid.uuid4().hex[:8])
    def noop() -> None:
        return None

    return noop


# --------------------------------------------------------------------------------------
# §3.1 constructor
# --------------------------------------------------------------------------------------


def test_constructor_defaults() -> None:
    h = MemoryHuey()
    assert h.name == "huey"
    assert h.results is True
    assert h.store_none is False
    assert h.utc is True
    assert h.immediate is False
    assert h.immediate_use_memory is True
    assert h.store_intermediate_errors is True
    assert isinstance(h.serializer, Serializer)
    assert isinstance(h.storage, MemoryStorage)
    assert h.storage_kwargs == {}
    assert h.task_wrapper_class is TaskWrapper


def test_constructor_stores_options() -> None:
    h = MemoryHuey("q1", results=False, store_none=True, utc=False, store_intermediate_errors=False)
    assert h.name == "q1"
    assert h.results is False
    assert h.store_none is True
    assert h.utc is False
    assert h.store_intermediate_errors is False


def test_results_false_enqueue_returns_none_and_stores_nothing() -> None:
    h = MemoryHuey(_name(), results=False, utc=False)

    @h.task()
    def add(a: int, b: int) -> int:
        return a + b

    assert add(1, 2) is None
    assert h.enqueue(add.s(3, 4)) is None
    assert h.pending_count() == 2
    assert run_next(h) == 3  # execute still returns the value
    run_next(h)
    assert h.result_count() == 0


def test_results_false_stores_no_errors_either() -> None:
    h = MemoryHuey(_name(), results=False, utc=False)

    @h.task()
    def boom() -> None:
        raise ValueError("x")

    boom()
    run_next(h)
    assert h.result_count() == 0


def test_store_none_false_does_not_store_none(huey: MemoryHuey) -> None:
    @huey.task()
    def nothing() -> None:
        return None

    res = nothing()
    run_next(huey)
    assert huey.result_count() == 0
    assert huey.get_raw(res.id, peek=True) is EmptyData


def test_store_none_true_stores_none() -> None:
    h = MemoryHuey(_name(), store_none=True, utc=False)

    @h.task()
    def nothing() -> None:
        return None

    res = nothing()
    run_next(h)
    assert h.result_count() == 1
    raw = h.get_raw(res.id, peek=True)
    assert raw is not EmptyData
    assert h.serializer.deserialize(raw) is None


def test_utc_true_eta_is_utc(non_utc_timezone: datetime.timedelta) -> None:
    h = MemoryHuey(_name())

    @h.task()
    def noop() -> None:
        return None

    task = noop.s(delay=60)
    assert task.eta is not None
    expected = datetime.datetime.utcnow() + datetime.timedelta(seconds=60)
    assert abs((task.eta - expected).total_seconds()) < 10


def test_utc_true_naive_eta_is_treated_as_local(non_utc_timezone: datetime.timedelta) -> None:
    h = MemoryHuey(_name())

    @h.task()
    def noop() -> None:
        return None

    local_eta = datetime.datetime(2030, 6, 1, 12, 0)
    task = noop.s(eta=local_eta)
    assert task.eta == local_eta - non_utc_timezone


def test_utc_true_aware_eta_is_converted_to_naive_utc(
    non_utc_timezone: datetime.timedelta,
) -> None:
    h = MemoryHuey(_name())

    @h.task()
    def noop() -> None:
        return None

    tz = datetime.timezone(datetime.timedelta(hours=2))
    task = noop.s(eta=datetime.datetime(2030, 6, 1, 12, 0, tzinfo=tz))
    assert task.eta == datetime.datetime(2030, 6, 1, 10, 0)


def test_utc_false_eta_is_local(non_utc_timezone: datetime.timedelta) -> None:
    h = MemoryHuey(_name(), utc=False)

    @h.task()
    def noop() -> None:
        return None

    task = noop.s(delay=60)
    assert approx_now_plus(task.eta, 60)
    naive = datetime.datetime(2030, 6, 1, 12, 0)
    assert noop.s(eta=naive).eta == naive


def test_utc_true_execute_default_timestamp_is_utc(non_utc_timezone: datetime.timedelta) -> None:
    # With utc=True, "now" is UTC: a task due one hour from now in UTC terms but
    # already past in local time (+05:30) must not run yet.
    h = MemoryHuey(_name())

    @h.task()
    def noop() -> int:
        return 1

    task = noop.s()
    task.eta = datetime.datetime.utcnow() + datetime.timedelta(hours=1)
    assert h.execute(task) is None
    assert h.scheduled_count() == 1


def test_immediate_property_switches_to_fresh_memory_storage() -> None:
    h = BlackHoleHuey(_name())
    assert isinstance(h.storage, BlackHoleStorage)
    h.immediate = True
    assert h.immediate is True
    assert isinstance(h.storage, MemoryStorage)
    h.immediate = False
    assert isinstance(h.storage, BlackHoleStorage)


def test_immediate_constructor_uses_memory_storage() -> None:
    h = BlackHoleHuey(_name(), immediate=True)
    assert isinstance(h.storage, MemoryStorage)
    assert h.storage.name == h.name


def test_immediate_toggle_gives_new_empty_store() -> None:
    h = MemoryHuey(_name())
    h.put("k", 1)
    original = h.storage
    h.immediate = True
    assert h.storage is not original
    assert h.get("k", peek=True) is None
    h.put("k2", 2)
    in_memory = h.storage
    h.immediate = True  # unchanged value: storage is not recreated
    assert h.storage is in_memory
    assert h.get("k2", peek=True) == 2


def test_immediate_use_memory_false_keeps_storage() -> None:
    h = BlackHoleHuey(_name(), immediate=True, immediate_use_memory=False)
    assert isinstance(h.storage, BlackHoleStorage)
    storage = h.storage
    h.immediate = False
    h.immediate = True
    assert h.storage is storage


def test_create_storage_and_get_immediate_storage() -> None:
    h = BlackHoleHuey(_name())
    assert isinstance(h.get_immediate_storage(), MemoryStorage)
    assert isinstance(h.create_storage(), BlackHoleStorage)
    assert isinstance(h.get_storage(), BlackHoleStorage)
    h.immediate = True
    assert isinstance(h.create_storage(), MemoryStorage)


def test_custom_serializer_is_used() -> None:
    calls: list[str] = []

    class CountingSerializer(Serializer):
        def _serialize(self, data: Any) -> bytes:
            calls.append("s")
            return super()._serialize(data)

        def _deserialize(self, data: bytes) -> Any:
            calls.append("d")
            return super()._deserialize(data)

    ser = CountingSerializer()
    h = MemoryHuey(_name(), serializer=ser)
    assert h.serializer is ser
    h.put("k", {"a": 1})
    assert h.get("k") == {"a": 1}
    assert calls == ["s", "d"]


def test_compression_gzip() -> None:
    h = MemoryHuey(_name(), compression=True)
    h.put("k", "x" * 100)
    raw = h.get_raw("k", peek=True)
    assert raw[:1] == b"\x1f"
    assert gzip.decompress(raw)  # really gzip
    assert h.get("k") == "x" * 100


def test_compression_zlib() -> None:
    h = MemoryHuey(_name(), compression=True, use_zlib=True)
    h.put("k", "y" * 100)
    raw = h.get_raw("k", peek=True)
    assert raw[:1] == b"\x78"
    assert zlib.decompress(raw)
    assert h.get("k") == "y" * 100


def test_no_compression_by_default() -> None:
    h = MemoryHuey(_name())
    h.put("k", "z" * 100)
    raw = h.get_raw("k", peek=True)
    assert raw[:1] not in (b"\x1f", b"\x78")


def test_storage_class_override() -> None:
    h = MemoryHuey(_name(), storage_class=BlackHoleStorage)
    assert isinstance(h.storage, BlackHoleStorage)
    h2 = Huey(_name(), storage_class=MemoryStorage)
    assert isinstance(h2.storage, MemoryStorage)


def test_storage_kwargs_are_passed_through() -> None:
    name = _name()
    h = Huey(name, storage_class=RecordingStorage, foo=1, bar="x")
    assert isinstance(h.storage, RecordingStorage)
    assert h.storage.received_name == name
    assert h.storage.received_kwargs == {"foo": 1, "bar": "x"}
    assert h.storage_kwargs == {"foo": 1, "bar": "x"}


def test_removed_2x_parameters_fall_through_to_storage() -> None:
    # §3.1: always_eager & co. are not Huey parameters any more; they reach the storage.
    h = Huey(_name(), storage_class=RecordingStorage, always_eager=True)
    assert h.storage.received_kwargs == {"always_eager": True}
    assert h.immediate is False
    MemoryHuey(_name(), always_eager=True)  # MemoryStorage silently ignores them


def test_bool_is_true_even_when_empty(huey: MemoryHuey) -> None:
    assert len(huey) == 0
    assert bool(huey) is True


def test_len_is_pending_count(huey: MemoryHuey) -> None:
    @huey.task()
    def noop() -> None:
        return None

    noop()
    noop()
    assert len(huey) == 2 == huey.pending_count()


# --------------------------------------------------------------------------------------
# §3.5 hooks
# --------------------------------------------------------------------------------------


def test_pre_execute_hooks_run_in_order_with_task(huey: MemoryHuey) -> None:
    seen: list[tuple[str, str]] = []

    @huey.pre_execute()
    def first(task: Task) -> None:
        seen.append(("first", task.id))

    @huey.pre_execute()
    def second(task: Task) -> None:
        seen.append(("second", task.id))

    @huey.task()
    def work() -> None:
        seen.append(("body", ""))

    res = work()
    run_next(huey)
    assert seen == [("first", res.id), ("second", res.id), ("body", "")]
    assert list(huey._pre_execute) == ["first", "second"]


def test_pre_execute_same_name_replaces(huey: MemoryHuey) -> None:
    seen: list[str] = []

    @huey.pre_execute(name="hook")
    def one(task: Task) -> None:
        seen.append("one")

    @huey.pre_execute(name="hook")
    def two(task: Task) -> None:
        seen.append("two")

    @huey.task()
    def work() -> None:
        return None

    work()
    run_next(huey)
    assert seen == ["two"]


def test_pre_execute_decorator_returns_function(huey: MemoryHuey) -> None:
    def hook(task: Task) -> None:
        return None

    assert huey.pre_execute()(hook) is hook
    assert huey.post_execute()(hook) is hook


def test_unregister_pre_execute_by_name_and_function(huey: MemoryHuey) -> None:
    seen: list[str] = []

    @huey.pre_execute()
    def by_name(task: Task) -> None:
        seen.append("by_name")

    @huey.pre_execute()
    def by_func(task: Task) -> None:
        seen.append("by_func")

    assert huey.unregister_pre_execute("by_name") is True
    assert huey.unregister_pre_execute(by_func) is True
    assert huey.unregister_pre_execute("by_name") is False
    assert huey.unregister_pre_execute("missing") is False

    @huey.task()
    def work() -> None:
        return None

    work()
    run_next(huey)
    assert seen == []


def test_cancel_execution_from_pre_execute(huey: MemoryHuey, recorder: Recorder) -> None:
    ran: list[str] = []

    @huey.pre_execute()
    def veto(task: Task) -> None:
        raise CancelExecution()

    @huey.post_execute()
    def post(task: Task, value: Any, exc: Exception | None) -> None:
        ran.append("post")

    @huey.task(retries=3)
    def work() -> int:
        ran.append("body")
        return 1

    res = work()
    assert run_next(huey) is None
    assert ran == []
    assert recorder.for_task(res.id) == ["enqueued", "executing", "canceled"]
    assert huey.result_count() == 0
    assert huey.pending_count() == 0
    assert huey.scheduled_count() == 0


def test_pre_execute_other_exception_logged_and_ignored(
    huey: MemoryHuey, caplog: pytest.LogCaptureFixture
) -> None:
    @huey.pre_execute()
    def broken(task: Task) -> None:
        raise RuntimeError("hook broke")

    @huey.task()
    def work() -> int:
        return 42

    res = work()
    with caplog.at_level(logging.DEBUG):
        assert run_next(huey) == 42
    assert res.get() == 42
    assert any(r.name.startswith("huey") and r.levelno >= logging.WARNING for r in caplog.records)


def test_post_execute_on_success(huey: MemoryHuey, recorder: Recorder) -> None:
    seen: list[tuple[Any, ...]] = []

    @huey.post_execute()
    def post(task: Task, value: Any, exc: Exception | None) -> None:
        # Called after the result is stored and before SIGNAL_COMPLETE.
        stored = huey.get_raw(task.id, peek=True) is not EmptyData
        seen.append((task.id, value, exc, stored, list(recorder.for_task(task.id))))

    @huey.task()
    def work() -> int:
        return 7

    res = work()
    run_next(huey)
    assert seen == [(res.id, 7, None, True, ["enqueued", "executing"])]
    assert recorder.for_task(res.id)[-1] == "complete"


def test_post_execute_on_failure(huey: MemoryHuey) -> None:
    seen: list[tuple[Any, ...]] = []

    @huey.post_execute()
    def post(task: Task, value: Any, exc: Exception | None) -> None:
        stored = huey.get_raw(task.id, peek=True) is not EmptyData
        seen.append((task.id, value, exc, stored))

    @huey.task()
    def work() -> None:
        raise ValueError("bad")

    res = work()
    run_next(huey)
    assert len(seen) == 1
    task_id, value, exc, stored = seen[0]
    assert task_id == res.id
    assert value is None
    assert isinstance(exc, ValueError)
    assert exc.args == ("bad",)
    assert stored is True


def test_post_execute_exception_logged_and_ignored(
    huey: MemoryHuey, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    @huey.post_execute()
    def broken(task: Task, value: Any, exc: Exception | None) -> None:
        raise RuntimeError("post broke")

    @huey.task()
    def work() -> int:
        return 3

    res = work()
    with caplog.at_level(logging.DEBUG):
        assert run_next(huey) == 3
    assert res.get() == 3
    assert recorder.for_task(res.id)[-1] == "complete"
    assert any(r.name.startswith("huey") and r.levelno >= logging.WARNING for r in caplog.records)


def test_unregister_post_execute(huey: MemoryHuey) -> None:
    @huey.post_execute(name="p")
    def post(task: Task, value: Any, exc: Exception | None) -> None:
        return None

    assert "p" in huey._post_execute
    assert huey.unregister_post_execute(post) is False  # registered as "p", not "post"
    assert huey.unregister_post_execute("p") is True
    assert huey.unregister_post_execute("p") is False


def test_startup_and_shutdown_registration(huey: MemoryHuey) -> None:
    @huey.on_startup()
    def boot() -> None:
        return None

    @huey.on_startup(name="second")
    def boot2() -> None:
        return None

    @huey.on_shutdown()
    def stop() -> None:
        return None

    assert list(huey._startup) == ["boot", "second"]
    assert huey._startup["boot"] is boot
    assert huey._shutdown == {"stop": stop}
    assert huey.unregister_on_startup(boot) is True
    assert huey.unregister_on_startup("second") is True
    assert huey.unregister_on_startup("boot") is False
    assert huey.unregister_on_shutdown("stop") is True
    assert huey._startup == {} and huey._shutdown == {}


# --------------------------------------------------------------------------------------
# §3.6 signals
# --------------------------------------------------------------------------------------


def test_signal_without_arguments_connects_to_all(huey: MemoryHuey) -> None:
    rec = Recorder()
    assert huey.signal()(rec) is rec

    @huey.task()
    def work() -> int:
        return 1

    res = work()
    run_next(huey)
    assert rec.for_task(res.id) == ["enqueued", "executing", "complete"]


def test_signal_with_names_connects_only_those(huey: MemoryHuey) -> None:
    rec = Recorder()
    huey.signal("complete", "executing")(rec)

    @huey.task()
    def work() -> int:
        return 1

    work()
    run_next(huey)
    assert rec.names == ["executing", "complete"]


def test_disconnect_signal_everywhere(huey: MemoryHuey) -> None:
    rec = Recorder()
    huey.signal()(rec)
    huey.signal("complete")(rec)
    huey.disconnect_signal(rec)

    @huey.task()
    def work() -> int:
        return 1

    work()
    run_next(huey)
    assert rec.calls == []


def test_disconnect_signal_specific(huey: MemoryHuey) -> None:
    rec = Recorder()
    huey.signal("complete", "executing")(rec)
    huey.disconnect_signal(rec, "executing")

    @huey.task()
    def work() -> int:
        return 1

    work()
    run_next(huey)
    assert rec.names == ["complete"]


def test_failing_receiver_does_not_silence_others(
    huey: MemoryHuey, caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder()

    @huey.signal("complete")
    def broken(signal: str, task: Task, *args: Any) -> None:
        raise RuntimeError("receiver broke")

    huey.signal("complete")(rec)

    @huey.task()
    def work() -> int:
        return 5

    res = work()
    with caplog.at_level(logging.DEBUG):
        assert run_next(huey) == 5
    assert rec.names == ["complete"]
    assert res.get() == 5


def test_notify_interrupted_tasks(huey: MemoryHuey, recorder: Recorder) -> None:
    t1, t2 = Task(), Task()
    huey._tasks_in_flight.add(t1)
    huey._tasks_in_flight.add(t2)
    huey.notify_interrupted_tasks()
    assert sorted(recorder.calls) == sorted(
        [("interrupted", t1.id, ()), ("interrupted", t2.id, ())]
    )
    assert len(huey._tasks_in_flight) == 0


# --------------------------------------------------------------------------------------
# §3.7 primitives
# --------------------------------------------------------------------------------------


def test_put_get_is_destructive_by_default(huey: MemoryHuey) -> None:
    huey.put("k", {"a": [1, 2]})
    assert huey.get("k", peek=True) == {"a": [1, 2]}
    assert huey.get("k") == {"a": [1, 2]}
    assert huey.get("k") is None


def test_get_missing_and_stored_none(huey: MemoryHuey) -> None:
    assert huey.get("missing") is None
    assert huey.get_raw("missing") is EmptyData
    huey.put("none", None)
    assert huey.get("none", peek=True) is None
    assert huey.get_raw("none", peek=True) is not EmptyData


def test_get_raw_returns_serialized_bytes(huey: MemoryHuey) -> None:
    huey.put("k", [1, 2, 3])
    raw = huey.get_raw("k", peek=True)
    assert isinstance(raw, bytes)
    assert huey.serializer.deserialize(raw) == [1, 2, 3]
    assert huey.get_raw("k") == raw  # destructive
    assert huey.get_raw("k") is EmptyData


def test_delete(huey: MemoryHuey) -> None:
    huey.put("k", 1)
    assert huey.delete("k") is True
    assert huey.delete("k") is False
    assert huey.get("k") is None


def test_put_if_empty(huey: MemoryHuey) -> None:
    assert huey.put_if_empty("k", "first") is True
    assert huey.put_if_empty("k", "second") is False
    assert huey.get("k", peek=True) == "first"
    assert huey.put_if_empty("t", "x", ttl=30) is True  # ttl accepted (ignored) in memory


def test_put_result(huey: MemoryHuey) -> None:
    huey.put_result("rid", {"v": 1})
    assert huey.result("rid") == {"v": 1}
    assert huey.result("rid") is None


def test_pending_and_counts(huey: MemoryHuey) -> None:
    @huey.task()
    def add(a: int, b: int) -> int:
        return a + b

    r1 = add(1, 2)
    r2 = add(3, 4)
    pending = huey.pending()
    assert [t.id for t in pending] == [r1.id, r2.id]
    assert pending[0].args == (1, 2)
    assert isinstance(pending[0], add.task_class)
    assert [t.id for t in huey.pending(limit=1)] == [r1.id]
    assert huey.pending_count() == 2  # pending() does not remove anything


def test_pending_skips_undecodable_entries(huey: MemoryHuey) -> None:
    @huey.task()
    def noop() -> None:
        return None

    res = noop()
    huey.storage.enqueue(b"this is not a message")
    assert [t.id for t in huey.pending()] == [res.id]


def test_scheduled_is_soonest_first(huey: MemoryHuey) -> None:
    @huey.task()
    def noop() -> None:
        return None

    now = datetime.datetime.now()
    late = noop.s()
    late.eta = now + datetime.timedelta(hours=2)
    soon = noop.s()
    soon.eta = now + datetime.timedelta(hours=1)
    huey.add_schedule(late)
    huey.add_schedule(soon)
    assert [t.id for t in huey.scheduled()] == [soon.id, late.id]
    assert [t.id for t in huey.scheduled(limit=1)] == [soon.id]
    assert huey.scheduled_count() == 2


def test_add_schedule_emits_signal_and_uses_epoch_without_eta(
    huey: MemoryHuey, recorder: Recorder
) -> None:
    task = _registered(huey).s()
    huey.add_schedule(task)
    assert recorder.calls == [("scheduled", task.id, ())]
    # No eta: stored at the epoch, so any read of the schedule returns it.
    due = huey.read_schedule(datetime.datetime(1990, 1, 1))
    assert [t.id for t in due] == [task.id]


def test_read_schedule_pops_only_due_items(huey: MemoryHuey) -> None:
    base = datetime.datetime(2030, 1, 1, 12, 0)
    tasks = []
    for minutes in (1, 2, 3):
        t = _registered(huey).s(eta=base + datetime.timedelta(minutes=minutes))
        huey.add_schedule(t)
        tasks.append(t)
    assert huey.read_schedule(base) == []
    due = huey.read_schedule(base + datetime.timedelta(minutes=2))
    assert sorted(t.id for t in due) == sorted(t.id for t in tasks[:2])
    assert huey.scheduled_count() == 1
    assert [t.id for t in huey.read_schedule(base + datetime.timedelta(hours=1))] == [tasks[2].id]


def test_read_schedule_skips_undecodable(
    huey: MemoryHuey, caplog: pytest.LogCaptureFixture
) -> None:
    task = _registered(huey).s()
    huey.add_schedule(task)
    huey.storage.add_to_schedule(b"garbage", datetime.datetime(2000, 1, 1))
    with caplog.at_level(logging.DEBUG):
        due = huey.read_schedule(datetime.datetime.now())
    assert [t.id for t in due] == [task.id]
    assert huey.scheduled_count() == 0
    assert caplog.records


def test_read_periodic_creates_new_instances(huey: MemoryHuey) -> None:
    @huey.periodic_task(crontab(minute="0"))
    def hourly() -> None:
        return None

    @huey.periodic_task(crontab(minute="*/5"))
    def five() -> None:
        return None

    on_the_hour = datetime.datetime(2030, 1, 1, 10, 0)
    first = huey.read_periodic(on_the_hour)
    assert sorted(type(t).__name__ for t in first) == ["five", "hourly"]
    second = huey.read_periodic(on_the_hour)
    assert {t.id for t in first}.isdisjoint({t.id for t in second})
    at_five = huey.read_periodic(datetime.datetime(2030, 1, 1, 10, 5))
    assert [type(t).__name__ for t in at_five] == ["five"]
    assert huey.read_periodic(datetime.datetime(2030, 1, 1, 10, 7)) == []


def test_ready_to_run(huey: MemoryHuey) -> None:
    now = datetime.datetime(2030, 1, 1, 12, 0)
    assert huey.ready_to_run(Task(), now) is True
    assert huey.ready_to_run(Task(eta=now), now) is True
    assert huey.ready_to_run(Task(eta=now - datetime.timedelta(seconds=1)), now) is True
    assert huey.ready_to_run(Task(eta=now + datetime.timedelta(seconds=1)), now) is False
    future = datetime.datetime.now() + datetime.timedelta(hours=1)
    assert huey.ready_to_run(Task(eta=future)) is False


def test_flush_clears_everything(huey: MemoryHuey) -> None:
    @huey.task()
    def noop() -> None:
        return None

    noop()
    huey.add_schedule(_registered(huey).s(eta=datetime.datetime(2030, 1, 1)))
    huey.put("k", 1)
    huey.storage.incr("counter", 5)
    huey.flush()
    assert huey.pending_count() == 0
    assert huey.scheduled_count() == 0
    assert huey.result_count() == 0
    assert huey.storage.incr("counter") == 1


def test_all_results_and_result_count(huey: MemoryHuey) -> None:
    huey.put("a", 1)
    huey.put_result("b", 2)
    huey.revoke_by_id("some-id")
    items = huey.all_results()
    assert set(items) == {"a", "b", "r:some-id"}
    assert all(isinstance(k, str) for k in items)
    assert huey.serializer.deserialize(items["a"]) == 1
    assert huey.result_count() == 3


def test_serialize_deserialize_task_roundtrip(huey: MemoryHuey) -> None:
    @huey.task()
    def add(a: int, b: int = 0) -> int:
        return a + b

    task = add.s(1, b=2, retries=2, priority=4)
    data = huey.serialize_task(task)
    assert isinstance(data, bytes)
    clone = huey.deserialize_task(data)
    assert clone == task
    assert clone.args == (1,) and clone.kwargs == {"b": 2}
    assert clone.retries == 2 and clone.priority == 4


def test_dequeue_empty_returns_none(huey: MemoryHuey) -> None:
    assert huey.dequeue() is None


def test_enqueue_returns_result_handle(huey: MemoryHuey) -> None:
    @huey.task()
    def add(a: int, b: int) -> int:
        return a + b

    task = add.s(2, 3)
    res = huey.enqueue(task)
    assert isinstance(res, Result)
    assert res.id == task.id
    run_next(huey)
    assert res.get() == 5


def test_build_error_result_keys(huey: MemoryHuey) -> None:
    task = Task(retries=2)
    try:
        raise ValueError("boom")
    except ValueError as exc:
        error = exc
    meta = huey.build_error_result(task, error)
    assert set(meta) == {"error", "retries", "traceback", "task_id"}
    assert meta["error"] == repr(error)
    assert meta["retries"] == 2
    assert meta["task_id"] == task.id
    assert isinstance(meta["traceback"], str)
    assert "ValueError" in meta["traceback"] and "boom" in meta["traceback"]


def test_build_error_result_for_task_exception(huey: MemoryHuey) -> None:
    error = TaskException({"error": "inner failure"})
    meta = huey.build_error_result(Task(), error)
    assert meta["error"] == "inner failure"


def test_result_by_id(huey: MemoryHuey) -> None:
    @huey.task()
    def add(a: int, b: int) -> int:
        return a + b

    res = add(20, 22)
    assert huey.result(res.id) is None
    run_next(huey)
    assert huey.result(res.id, preserve=True) == 42
    assert huey.result(res.id) == 42
    assert huey.result(res.id) is None


def test_result_by_id_blocking_timeout(huey: MemoryHuey) -> None:
    with pytest.raises(ResultTimeout):
        huey.result("never-there", blocking=True, timeout=0.1)


def test_result_by_id_revoke_on_timeout(huey: MemoryHuey) -> None:
    with pytest.raises(ResultTimeout):
        huey.result("late", blocking=True, timeout=0.05, revoke_on_timeout=True)
    assert huey.is_revoked("late") is True


def test_result_by_id_raises_task_exception(huey: MemoryHuey) -> None:
    @huey.task()
    def boom() -> None:
        raise KeyError("nope")

    res = boom()
    run_next(huey)
    with pytest.raises(TaskException) as info:
        huey.result(res.id)
    assert info.value.metadata["error"] == repr(KeyError("nope"))


def test_error_result_is_huey_error(huey: MemoryHuey) -> None:
    @huey.task()
    def boom() -> None:
        raise KeyError("nope")

    res = boom()
    run_next(huey)
    value = huey.get(res.id, peek=True)
    assert isinstance(value, Error)
    assert value.metadata["task_id"] == res.id


# --------------------------------------------------------------------------------------
# §3.9 revocation
# --------------------------------------------------------------------------------------


def test_revoke_stores_tuple_under_revoke_id(huey: MemoryHuey) -> None:
    task = Task()
    huey.revoke(task)
    assert huey.get(task.revoke_id, peek=True) == (None, False)
    until = datetime.datetime(2030, 1, 1, 12, 0)
    huey.revoke(task, revoke_until=until, revoke_once=True)
    assert huey.get(task.revoke_id, peek=True) == (until, True)


def test_restore(huey: MemoryHuey) -> None:
    task = Task()
    assert huey.restore(task) is False
    huey.revoke(task)
    assert huey.is_revoked(task) is True
    assert huey.restore(task) is True
    assert huey.is_revoked(task) is False
    assert huey.restore(task) is False


def test_revoke_by_id_and_restore_by_id(huey: MemoryHuey) -> None:
    huey.revoke_by_id("abc")
    assert huey.get("r:abc", peek=True) == (None, False)
    assert huey.is_revoked("abc") is True
    assert huey.is_revoked(Task(id="abc")) is True
    assert huey.restore_by_id("abc") is True
    assert huey.restore_by_id("abc") is False
    assert huey.is_revoked("abc") is False


def test_revoke_all_uses_class_key(huey: MemoryHuey) -> None:
    @huey.task()
    def work() -> None:
        return None

    key = f"rt:{work.task_class.__module__}.{work.task_class.__name__}"
    huey.revoke_all(work)
    assert huey.get(key, peek=True) == (None, False)
    assert huey.is_revoked(work) is True
    assert huey.is_revoked(work.task_class) is True
    assert huey.is_revoked(work.s()) is True  # instance sees the class flag
    assert huey.restore_all(work.task_class) is True
    assert huey.restore_all(work) is False
    huey.revoke_all(work.task_class, revoke_once=True)
    assert huey.get(key, peek=True) == (None, True)


def test_is_revoked_accepts_every_kind(huey: MemoryHuey) -> None:
    @huey.task()
    def work() -> None:
        return None

    res = work()
    assert huey.is_revoked(res) is False
    assert huey.is_revoked(res.id) is False
    assert huey.is_revoked(res.task) is False
    huey.revoke(res)  # a Result has a revoke_id too
    assert huey.is_revoked(res) is True
    assert huey.is_revoked(res.id) is True
    assert huey.is_revoked(res.task) is True
    assert huey.is_revoked(work) is False  # class not revoked


def test_is_revoked_id_string_checks_only_instance_key(huey: MemoryHuey) -> None:
    @huey.task()
    def work() -> None:
        return None

    res = work()
    huey.revoke_all(work)
    assert huey.is_revoked(res.task) is True
    assert huey.is_revoked(res.id) is False


def test_is_revoked_class_does_not_see_instance_flags(huey: MemoryHuey) -> None:
    @huey.task()
    def work() -> None:
        return None

    huey.revoke(work.s())
    assert huey.is_revoked(work) is False


def test_revoke_once_consumed_only_by_non_peek_check(huey: MemoryHuey) -> None:
    task = Task()
    huey.revoke(task, revoke_once=True)
    assert huey.is_revoked(task) is True
    assert huey.is_revoked(task, peek=True) is True
    assert huey.is_revoked(task, peek=False) is True  # revoked, and flag consumed
    assert huey.is_revoked(task, peek=False) is False
    assert huey.get_raw(task.revoke_id, peek=True) is EmptyData


def test_revoke_until_past_is_not_revoked_and_cleared_by_non_peek(huey: MemoryHuey) -> None:
    task = Task()
    until = datetime.datetime(2030, 1, 1, 12, 0)
    huey.revoke(task, revoke_until=until)
    later = until + datetime.timedelta(seconds=1)
    assert huey.is_revoked(task, timestamp=later) is False
    assert huey.get_raw(task.revoke_id, peek=True) is not EmptyData  # peek keeps it
    assert huey.is_revoked(task, timestamp=until) is False  # until <= timestamp
    assert huey.is_revoked(task, timestamp=later, peek=False) is False
    assert huey.get_raw(task.revoke_id, peek=True) is EmptyData


def test_revoke_until_future_is_revoked(huey: MemoryHuey) -> None:
    task = Task()
    until = datetime.datetime(2030, 1, 1, 12, 0)
    huey.revoke(task, revoke_until=until)
    before = until - datetime.timedelta(seconds=1)
    assert huey.is_revoked(task, timestamp=before) is True
    assert huey.is_revoked(task, timestamp=before, peek=False) is True
    assert huey.get_raw(task.revoke_id, peek=True) is not EmptyData  # still revoked


def test_revoke_until_default_timestamp_is_now(huey: MemoryHuey) -> None:
    past, future = Task(), Task()
    now = datetime.datetime.now()
    huey.revoke(past, revoke_until=now - datetime.timedelta(minutes=5))
    huey.revoke(future, revoke_until=now + datetime.timedelta(minutes=5))
    assert huey.is_revoked(past) is False
    assert huey.is_revoked(future) is True


def test_revoke_once_wins_over_past_until(huey: MemoryHuey) -> None:
    task = Task()
    huey.revoke(task, revoke_until=datetime.datetime(2000, 1, 1), revoke_once=True)
    assert huey.is_revoked(task) is True


def test_revoke_until_with_utc_normalizes_local_time(
    non_utc_timezone: datetime.timedelta,
) -> None:
    h = MemoryHuey(_name())
    task = Task()
    local = datetime.datetime(2030, 1, 1, 12, 0)
    h.revoke(task, revoke_until=local)
    assert h.get(task.revoke_id, peek=True) == (local - non_utc_timezone, False)


def test_revoked_task_is_skipped_and_once_flag_consumed(
    huey: MemoryHuey, recorder: Recorder
) -> None:
    calls: list[int] = []

    @huey.task()
    def work(n: int) -> int:
        calls.append(n)
        return n

    res = work(1)
    res.revoke()  # Result.revoke defaults to revoke_once=True
    task = huey.dequeue()
    assert huey.execute(task) is None
    assert calls == []
    assert recorder.for_task(res.id) == ["enqueued", "revoked"]
    assert huey.is_revoked(res) is False  # consumed by the worker's check
    assert huey.execute(task) == 1
    assert calls == [1]


# --------------------------------------------------------------------------------------
# §3.10 locks and rate limits
# --------------------------------------------------------------------------------------


def test_lock_task_and_rate_limit_factories(huey: MemoryHuey) -> None:
    lock = huey.lock_task("L", ttl=10)
    assert isinstance(lock, TaskLock)
    rl = huey.rate_limit("R", 5, 60)
    assert isinstance(rl, RateLimit)


def test_is_locked_registers_lock(huey: MemoryHuey) -> None:
    key = f"{huey.name}.lock.probe"
    assert key not in huey._locks
    assert huey.is_locked("probe") is False
    assert key in huey._locks
    huey.put(key, "1")
    assert huey.is_locked("probe") is True


def test_flush_locks_semantics(huey: MemoryHuey) -> None:
    held = huey.lock_task("held")
    huey.lock_task("idle")  # registered but never acquired
    held.acquire()
    huey.put(f"{huey.name}.lock.extra", "1")
    huey.put(f"{huey.name}.lock.other", "1")
    flushed = huey.flush_locks(" extra ")
    assert flushed == {"held", "extra"}
    assert held.is_locked() is False
    assert huey.get_raw(f"{huey.name}.lock.extra", peek=True) is EmptyData
    # Not registered and not named: untouched. No names does not mean "every lock".
    assert huey.get_raw(f"{huey.name}.lock.other", peek=True) is not EmptyData
    assert huey.flush_locks() == set()
    assert huey.get_raw(f"{huey.name}.lock.other", peek=True) is not EmptyData


def test_run_all_helper_drains_retries(huey: MemoryHuey) -> None:
    # Sanity check of the test helper itself: three attempts, then a stored Error.
    attempts: list[int] = []

    @huey.task(retries=2)
    def flaky() -> None:
        attempts.append(1)
        raise ValueError("again")

    res = flaky()
    assert run_all(huey) == 3
    assert len(attempts) == 3
    with pytest.raises(TaskException):
        res.get()


def test_result_handle(huey: MemoryHuey) -> None:
    task = _registered(huey).s()
    handle = huey._result_handle(task)
    assert isinstance(handle, Result)
    assert handle.id == task.id


def test_read_periodic_default_timestamp_is_huey_time(
    non_utc_timezone: datetime.timedelta,
) -> None:
    seen: list[datetime.datetime] = []

    def validate(dt: datetime.datetime) -> bool:
        seen.append(dt)
        return True

    utc_huey = MemoryHuey(_name())
    local_huey = MemoryHuey(_name(), utc=False)
    for h in (utc_huey, local_huey):

        @h.periodic_task(validate)
        def tick() -> None:
            return None

        assert len(h.read_periodic(None)) == 1
    utc_seen, local_seen = seen
    assert abs((utc_seen - datetime.datetime.utcnow()).total_seconds()) < 60
    assert abs((local_seen - datetime.datetime.now()).total_seconds()) < 60
