"""Task, PeriodicTask, TaskWrapper and the task decorators (spec §3.4, §4)."""

from __future__ import annotations

import datetime
import time
import uuid
from typing import Any

import pytest

from huey import MemoryHuey, crontab
from huey.api import PeriodicTask, Result, ResultGroup, Task, TaskWrapper
from huey.exceptions import ConfigurationError, HueyException, TaskTimeout
from huey.utils import ChordConfig
from tests.unit.conftest import Recorder, approx_now_plus, run_all, run_next

MODULE = __name__


# --------------------------------------------------------------------------------------
# §4.1 Task
# --------------------------------------------------------------------------------------


def test_task_defaults() -> None:
    task = Task()
    assert task.name == "Task"
    assert task.args == ()
    assert task.kwargs == {}
    assert uuid.UUID(task.id).version == 4
    assert task.revoke_id == "r:" + task.id
    assert task.eta is None
    assert task.retries == 0
    assert task.retry_delay == 0
    assert task.retry_backoff == 0
    assert task.priority is None
    assert task.expires is None
    assert task.timeout is None
    assert task.expires_resolved is None
    assert task.chord_config is None
    assert task.on_complete is None
    assert task.on_error is None
    assert task._deadline is None


def test_task_ids_are_unique() -> None:
    assert Task().id != Task().id


def test_task_class_defaults() -> None:
    assert Task.default_expires is None
    assert Task.default_priority is None
    assert Task.default_retries == 0
    assert Task.default_retry_delay == 0
    assert Task.default_retry_backoff == 0
    assert Task.default_timeout is None


def test_task_positional_constructor_order() -> None:
    eta = datetime.datetime(2030, 1, 1)
    exp = datetime.datetime(2030, 1, 2)
    on_complete, on_error = Task(), Task()
    chord_cfg = ChordConfig("cid", 2, 0, Task())
    task = Task(
        (1, 2),
        {"k": "v"},
        "my-id",
        eta,
        3,
        10,
        5,
        60,
        on_complete,
        on_error,
        exp,
        30,
        chord_cfg,
        2,
    )
    assert task.args == (1, 2)
    assert task.kwargs == {"k": "v"}
    assert task.id == "my-id"
    assert task.revoke_id == "r:my-id"
    assert task.eta == eta
    assert task.retries == 3
    assert task.retry_delay == 10
    assert task.priority == 5
    assert task.expires == 60
    assert task.on_complete is on_complete
    assert task.on_error is on_error
    assert task.expires_resolved == exp
    assert task.timeout == 30
    assert task.chord_config == chord_cfg
    assert task.retry_backoff == 2


def test_task_explicit_values_override_class_defaults() -> None:
    class Custom(Task):
        default_retries = 3
        default_retry_delay = 7
        default_priority = 9
        default_expires = 100
        default_timeout = 4
        default_retry_backoff = 1.5

    dflt = Custom()
    assert (dflt.retries, dflt.retry_delay, dflt.priority) == (3, 7, 9)
    assert (dflt.expires, dflt.timeout, dflt.retry_backoff) == (100, 4, 1.5)
    explicit = Custom(retries=0, retry_delay=0, priority=0, timeout=0, retry_backoff=0)
    assert (explicit.retries, explicit.retry_delay, explicit.priority) == (0, 0, 0)
    assert (explicit.timeout, explicit.retry_backoff) == (0, 0)
    assert Custom().name == "Custom"


def test_task_data() -> None:
    task = Task((1,), {"a": 2})
    assert task.data == ((1,), {"a": 2})


def test_task_equality_and_hash() -> None:
    eta = datetime.datetime(2030, 1, 1)
    assert Task(id="a") == Task(id="a")
    assert Task(id="a", eta=eta) == Task(id="a", eta=eta)
    assert Task(id="a") != Task(id="b")
    assert Task(id="a", eta=eta) != Task(id="a")

    class Other(Task):
        pass

    assert Task(id="a") != Other(id="a")
    assert hash(Task(id="a")) == hash("a")
    assert len({Task(id="a"), Task(id="a", args=(1,))}) == 1


def test_create_id_is_an_override_hook() -> None:
    class Fixed(Task):
        def create_id(self) -> str:
            return "fixed-id"

    assert Fixed().id == "fixed-id"
    assert Fixed(id="given").id == "given"


def test_resolve_expires_relative_and_absolute() -> None:
    task = Task(expires=60)
    resolved = task.resolve_expires(utc=False)
    assert resolved == task.expires_resolved
    assert approx_now_plus(resolved, 60)
    task2 = Task(expires=datetime.timedelta(minutes=2))
    assert approx_now_plus(task2.resolve_expires(utc=False), 120)
    absolute = datetime.datetime(2030, 1, 1, 12, 0)
    task3 = Task(expires=absolute)
    assert task3.resolve_expires(utc=False) == absolute


def test_timeout_helpers_without_deadline() -> None:
    task = Task(timeout=10)
    assert task.time_remaining == float("inf")
    assert not task.is_timed_out
    task.check_timeout()  # no deadline yet: nothing to raise


def test_timeout_helpers_with_deadline() -> None:
    task = Task(timeout=10)
    task._deadline = time.monotonic() + 100
    assert 0 < task.time_remaining <= 100
    assert not task.is_timed_out
    task.check_timeout()
    task._deadline = time.monotonic() - 1
    assert task.time_remaining <= 0
    assert task.is_timed_out
    with pytest.raises(TaskTimeout) as info:
        task.check_timeout()
    assert "timeout" in str(info.value)


def _repr_prefix(task: Task) -> str:
    return f"{type(task).__module__}.{type(task).__name__}: {task.id}"


def test_repr_plain(huey: MemoryHuey) -> None:
    @huey.task()
    def add(a: int, b: int) -> int:
        return a + b

    task = add.s(1, 2)
    assert repr(task) == f"{MODULE}.add: {task.id}"
    assert repr(Task(id="x")) == f"{Task.__module__}.Task: x"


def test_repr_with_options(huey: MemoryHuey) -> None:
    @huey.task()
    def add(a: int, b: int) -> int:
        return a + b

    @huey.task()
    def nxt(x: int) -> int:
        return x

    eta = datetime.datetime(2030, 1, 1, 12, 0)
    task = add.s(1, 2, eta=eta, priority=3, retries=2, timeout=5)
    assert repr(task) == f"{_repr_prefix(task)} @{eta} p=3 2 retries timeout=5"
    task.then(nxt)
    child = task.on_complete
    assert repr(task) == (
        f"{_repr_prefix(task)} @{eta} p=3 2 retries timeout=5 -> {_repr_prefix(child)}"
    )


def test_repr_expires(huey: MemoryHuey) -> None:
    @huey.task()
    def work() -> None:
        return None

    absolute = datetime.datetime(2030, 1, 1, 12, 0)
    task = work.s(expires=absolute)
    task.resolve_expires(utc=False)
    assert repr(task) == f"{_repr_prefix(task)} exp={absolute}"
    rel = work.s(expires=60)
    rel.resolve_expires(utc=False)
    assert repr(rel) == f"{_repr_prefix(rel)} exp=60 ({rel.expires_resolved})"


def test_repr_error_and_chord_suffixes(huey: MemoryHuey) -> None:
    @huey.task()
    def work() -> None:
        return None

    @huey.task()
    def handler(exc: Exception) -> None:
        return None

    task = work.s().error(handler)
    assert repr(task) == f"{_repr_prefix(task)}, on error {_repr_prefix(task.on_error)}"
    chorded = work.s()
    chorded.chord_config = ChordConfig("the-cid", 1, 0, handler.s())
    assert repr(chorded) == f"{_repr_prefix(chorded)}, chord the-cid"


# --------------------------------------------------------------------------------------
# §4.2 PeriodicTask and periodic_task
# --------------------------------------------------------------------------------------


def test_periodic_task_base_validate_datetime_is_false() -> None:
    assert PeriodicTask().validate_datetime(datetime.datetime.now()) is False


def test_periodic_task_decorator(huey: MemoryHuey) -> None:
    @huey.periodic_task(crontab(minute="30"), retries=2, name="half_hour")
    def job() -> str:
        return "done"

    assert issubclass(job.task_class, PeriodicTask)
    assert job.task_class.__name__ == "half_hour"
    task = job.s()
    assert task.retries == 2
    assert task.validate_datetime(datetime.datetime(2030, 1, 1, 3, 30)) is True
    assert task.validate_datetime(datetime.datetime(2030, 1, 1, 3, 31)) is False


def test_periodic_results_are_never_stored(huey: MemoryHuey) -> None:
    @huey.periodic_task(crontab())
    def job() -> str:
        return "done"

    res = job()
    assert run_next(huey) == "done"
    assert huey.result_count() == 0
    assert res.get() is None


def test_periodic_revoke_flag_not_cleared_after_run(huey: MemoryHuey) -> None:
    @huey.periodic_task(crontab())
    def job() -> str:
        huey.revoke_by_id(current_ids[0])
        return "done"

    current_ids: list[str] = []
    task = job.s()
    current_ids.append(task.id)
    huey.execute(task)
    assert huey.is_revoked(task.id) is True


def test_non_periodic_revoke_flag_cleared_after_run(huey: MemoryHuey) -> None:
    ids: list[str] = []

    @huey.task()
    def work() -> str:
        huey.revoke_by_id(ids[0])  # revoked while running
        return "done"

    task = work.s()
    ids.append(task.id)
    assert huey.execute(task) == "done"
    assert huey.is_revoked(task.id) is False


# --------------------------------------------------------------------------------------
# §3.4 / §4.3 TaskWrapper and the task() decorator
# --------------------------------------------------------------------------------------


def test_task_decorator_builds_wrapper(huey: MemoryHuey) -> None:
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    wrapper = huey.task()(add)
    assert isinstance(wrapper, TaskWrapper)
    assert wrapper.huey is huey
    assert wrapper.func is add
    assert wrapper.context is False
    assert wrapper.name is None
    assert wrapper.task_base is Task
    assert TaskWrapper.task_base is Task
    assert issubclass(wrapper.task_class, Task)
    assert wrapper.task_class.__name__ == "add"
    assert wrapper.task_class.__module__ == MODULE
    assert wrapper.__doc__ == "Add two numbers."
    assert wrapper.task_class.__doc__ == "Add two numbers."
    assert not hasattr(wrapper, "__name__")  # §4.3: __name__ is not copied


def test_task_decorator_options_become_class_defaults(huey: MemoryHuey) -> None:
    @huey.task(retries=2, retry_delay=5, retry_backoff=1.5, priority=7, expires=60, timeout=10)
    def work() -> None:
        return None

    cls = work.task_class
    assert cls.default_retries == 2
    assert cls.default_retry_delay == 5
    assert cls.default_retry_backoff == 1.5
    assert cls.default_priority == 7
    assert cls.default_expires == 60
    assert cls.default_timeout == 10
    task = work.s()
    assert (task.retries, task.retry_delay, task.retry_backoff) == (2, 5, 1.5)
    assert (task.priority, task.expires, task.timeout) == (7, 60, 10)
    assert work.retries == 2
    assert work.retry_delay == 5


def test_wrapper_retries_properties_default(huey: MemoryHuey) -> None:
    @huey.task()
    def work() -> None:
        return None

    assert work.retries == 0
    assert work.retry_delay == 0


def test_extra_kwargs_become_class_attributes(huey: MemoryHuey) -> None:
    @huey.task(queue_hint="fast", weight=3)
    def work() -> None:
        return None

    assert work.task_class.queue_hint == "fast"
    assert work.task_class.weight == 3
    assert work.s().weight == 3
    assert work.settings["queue_hint"] == "fast"


def test_wrapper_call_enqueues(huey: MemoryHuey) -> None:
    @huey.task()
    def add(a: int, b: int = 10) -> int:
        return a + b

    res = add(1, b=2)
    assert isinstance(res, Result)
    task = huey.dequeue()
    assert isinstance(task, add.task_class)
    assert task.id == res.id
    assert task.args == (1,)
    assert task.kwargs == {"b": 2}
    assert huey.execute(task) == 3
    assert res.get() == 3


def test_s_builds_unenqueued_task(huey: MemoryHuey) -> None:
    @huey.task()
    def add(a: int, b: int) -> int:
        return a + b

    task = add.s(1, 2)
    assert isinstance(task, add.task_class)
    assert task.args == (1, 2)
    assert huey.pending_count() == 0


def test_s_reserved_kwargs_are_popped(huey: MemoryHuey) -> None:
    @huey.task()
    def work(**kwargs: Any) -> None:
        return None

    eta = datetime.datetime(2030, 1, 1, 12, 0)
    task = work.s(
        eta=eta,
        retries=3,
        retry_delay=4,
        retry_backoff=2,
        priority=9,
        expires=30,
        timeout=6,
        id="custom-id",
        other="kept",
    )
    assert task.kwargs == {"other": "kept"}
    assert task.eta == eta
    assert (task.retries, task.retry_delay, task.retry_backoff) == (3, 4, 2)
    assert (task.priority, task.expires, task.timeout) == (9, 30, 6)
    assert task.id == "custom-id"
    assert task.revoke_id == "r:custom-id"


def test_s_delay_number_and_timedelta(huey: MemoryHuey) -> None:
    @huey.task()
    def work() -> None:
        return None

    assert approx_now_plus(work.s(delay=30).eta, 30)
    assert approx_now_plus(work.s(delay=datetime.timedelta(minutes=5)).eta, 300)
    assert approx_now_plus(work.s(delay=0).eta, 0)


def test_s_eta_and_delay_together_is_value_error(huey: MemoryHuey) -> None:
    @huey.task()
    def work() -> None:
        return None

    with pytest.raises(ValueError):
        work.s(eta=datetime.datetime(2030, 1, 1), delay=10)


def test_call_with_id_sets_task_id(huey: MemoryHuey) -> None:
    @huey.task()
    def work() -> int:
        return 1

    res = work(id="chosen")
    assert res.id == "chosen"
    run_next(huey)
    assert huey.result("chosen") == 1


def test_schedule_with_args_kwargs_and_delay(huey: MemoryHuey) -> None:
    @huey.task()
    def add(a: int, b: int = 0) -> int:
        return a + b

    res = add.schedule(
        (1,),
        {"b": 2},
        delay=60,
        priority=3,
        retries=1,
        retry_delay=4,
        retry_backoff=2,
        expires=600,
        timeout=9,
        id="sid",
    )
    assert isinstance(res, Result)
    assert res.id == "sid"
    task = huey.pending()[0]
    assert task.args == (1,) and task.kwargs == {"b": 2}
    assert approx_now_plus(task.eta, 60)
    assert (task.priority, task.retries, task.retry_delay) == (3, 1, 4)
    assert (task.retry_backoff, task.expires, task.timeout) == (2, 600, 9)
    assert approx_now_plus(task.expires_resolved, 600)


def test_schedule_eta_goes_through_queue_then_schedule(
    huey: MemoryHuey, recorder: Recorder
) -> None:
    @huey.task()
    def add(a: int, b: int) -> int:
        return a + b

    eta = datetime.datetime.now() + datetime.timedelta(hours=1)
    res = add.schedule((1, 2), eta=eta)
    assert huey.pending_count() == 1
    assert run_next(huey) is None  # not due: moved to the schedule
    assert huey.scheduled_count() == 1
    assert huey.scheduled()[0].eta == eta
    assert res.get() is None
    assert run_all(huey, timestamp=eta, schedule=True) == 1
    assert res.get() == 3
    assert recorder.for_task(res.id) == [
        "enqueued",
        "scheduled",
        "enqueued",
        "executing",
        "complete",
    ]


def test_schedule_shorthands(huey: MemoryHuey) -> None:
    @huey.task()
    def work() -> None:
        return None

    work.schedule(30)
    work.schedule(2.5)
    work.schedule(datetime.timedelta(seconds=90))
    eta = datetime.datetime(2030, 1, 1, 8, 0)
    work.schedule(eta)
    tasks = huey.pending()
    assert [t.args for t in tasks] == [(), (), (), ()]
    assert approx_now_plus(tasks[0].eta, 30)
    assert approx_now_plus(tasks[1].eta, 2.5)
    assert approx_now_plus(tasks[2].eta, 90)
    assert tasks[3].eta == eta


def test_schedule_without_eta_or_delay_is_value_error(huey: MemoryHuey) -> None:
    @huey.task()
    def add(a: int, b: int) -> int:
        return a + b

    with pytest.raises(ValueError, match="schedule\\(\\) missing required eta= or delay="):
        add.schedule((1, 2))
    with pytest.raises(ValueError):
        add.schedule()
    assert huey.pending_count() == 0


def test_schedule_kwargs_must_be_dict(huey: MemoryHuey) -> None:
    @huey.task()
    def add(a: int, b: int) -> int:
        return a + b

    with pytest.raises(ValueError):
        add.schedule((1,), [2], delay=5)  # type: ignore[arg-type]


def test_map(huey: MemoryHuey) -> None:
    @huey.task()
    def add(a: int, b: int = 100) -> int:
        return a + b

    group = add.map([(1, 2), 5, (3, 4)])
    assert isinstance(group, ResultGroup)
    assert len(group) == 3
    assert [t.args for t in huey.pending()] == [(1, 2), (5,), (3, 4)]
    run_all(huey)
    assert group.get() == [3, 105, 7]


def test_map_results_false_returns_none() -> None:
    h = MemoryHuey("t" + uuid.uuid4().hex[:12], results=False, utc=False)

    @h.task()
    def double(x: int) -> int:
        return x * 2

    assert double.map([1, 2]) is None
    assert h.pending_count() == 2


def test_call_local(huey: MemoryHuey) -> None:
    @huey.task()
    def add(a: int, b: int) -> int:
        return a + b

    assert add.call_local(2, 3) == 5
    assert huey.pending_count() == 0


def test_wrapper_revoke_restore(huey: MemoryHuey) -> None:
    @huey.task()
    def work() -> int:
        return 1

    res = work()
    assert work.is_revoked() is False
    work.revoke()
    assert work.is_revoked() is True
    assert huey.is_revoked(res.task) is True
    assert run_next(huey) is None  # class-level revocation skips the instance
    assert work.restore() is True
    assert work.is_revoked() is False
    assert work.restore() is False


def test_wrapper_revoke_once_and_until(huey: MemoryHuey) -> None:
    @huey.task()
    def work() -> int:
        return 1

    work.revoke(revoke_once=True)
    assert work.is_revoked() is True
    assert work.is_revoked(peek=False) is True
    assert work.is_revoked() is False
    until = datetime.datetime(2030, 1, 1)
    work.revoke(revoke_until=until)
    assert work.is_revoked(timestamp=until - datetime.timedelta(seconds=1)) is True
    assert work.is_revoked(timestamp=until) is False


def test_unregister(huey: MemoryHuey) -> None:
    @huey.task()
    def work() -> int:
        return 1

    data = huey.serialize_task(work.s())
    assert work.unregister() is True
    assert work.unregister() is False
    with pytest.raises(HueyException, match="not found in TaskRegistry"):
        huey.deserialize_task(data)


def test_unregister_periodic_removes_from_periodic_list(huey: MemoryHuey) -> None:
    @huey.periodic_task(crontab())
    def job() -> None:
        return None

    ts = datetime.datetime(2030, 1, 1, 0, 0)
    assert len(huey.read_periodic(ts)) == 1
    assert job.unregister() is True
    assert huey.read_periodic(ts) == []


def test_duplicate_name_is_value_error(huey: MemoryHuey) -> None:
    @huey.task()
    def work() -> int:
        return 1

    def make_other() -> Any:
        def work() -> int:
            return 2

        return work

    with pytest.raises(ValueError):
        huey.task()(make_other())
    renamed = huey.task(name="work_two")(make_other())
    assert renamed.name == "work_two"
    assert renamed.task_class.__name__ == "work_two"
    assert huey._registry.create_message(renamed.s()).name == f"{MODULE}.work_two"


def test_same_function_on_two_hueys_is_fine(huey: MemoryHuey) -> None:
    other = MemoryHuey("t" + uuid.uuid4().hex[:12], utc=False)

    def work() -> int:
        return 1

    huey.task()(work)
    other.task()(work)  # separate registries


def test_registry_key_is_module_dot_name(huey: MemoryHuey) -> None:
    @huey.task()
    def work() -> int:
        return 1

    assert huey._registry.create_message(work.s()).name == f"{MODULE}.work"


def test_context_true_injects_task(huey: MemoryHuey) -> None:
    seen: list[Any] = []

    @huey.task(context=True)
    def work(a: int, task: Task | None = None) -> int:
        seen.append(task)
        return a

    assert work.context is True
    res = work(5)
    queued = huey.dequeue()
    assert "task" not in queued.kwargs  # the injection is stripped from the message
    assert huey.execute(queued) == 5
    assert seen == [queued]
    assert seen[0].id == res.id
    assert "task" not in queued.kwargs  # execute passed a copy of kwargs


def test_user_supplied_task_kwarg_is_kept(huey: MemoryHuey) -> None:
    @huey.task()
    def work(task: str) -> str:
        return task

    work(task="mine")
    queued = huey.dequeue()
    assert queued.kwargs == {"task": "mine"}
    assert huey.execute(queued) == "mine"


def test_async_def_is_configuration_error(huey: MemoryHuey) -> None:
    async def coro() -> int:
        return 1

    with pytest.raises(ConfigurationError):
        huey.task()(coro)


def test_decorating_an_existing_wrapper_uses_its_func(huey: MemoryHuey) -> None:
    other = MemoryHuey("t" + uuid.uuid4().hex[:12], utc=False)

    @huey.task()
    def work(x: int) -> int:
        return x + 1

    again = other.task(retries=2)(work)
    assert isinstance(again, TaskWrapper)
    assert again.func is work.func
    assert again.huey is other
    assert again.retries == 2
    res = again(1)
    assert run_next(other) == 2
    assert res.get() == 2


def test_context_task(huey: MemoryHuey) -> None:
    events: list[str] = []

    class Ctx:
        def __enter__(self) -> str:
            events.append("enter")
            return "resource"

        def __exit__(self, *exc: Any) -> None:
            events.append("exit")

    @huey.context_task(Ctx(), retries=2)
    def plain(x: int) -> int:
        events.append(f"body {x}")
        return x

    @huey.context_task(Ctx(), as_argument=True)
    def with_arg(ctx: str, x: int) -> str:
        events.append(f"arg {ctx} {x}")
        return f"{ctx}:{x}"

    assert plain.task_class.__name__ == "plain"
    assert plain.task_class.__module__ == MODULE
    assert plain.retries == 2
    r1 = plain(1)
    r2 = with_arg(2)
    run_all(huey)
    assert r1.get() == 1
    assert r2.get() == "resource:2"
    assert events == ["enter", "body 1", "exit", "enter", "arg resource 2", "exit"]


def test_context_task_exits_on_error(huey: MemoryHuey) -> None:
    events: list[Any] = []

    class Ctx:
        def __enter__(self) -> None:
            events.append("enter")

        def __exit__(self, exc_type: Any, *rest: Any) -> None:
            events.append(exc_type)

    @huey.context_task(Ctx())
    def boom() -> None:
        raise ValueError("x")

    boom()
    run_next(huey)
    assert events == ["enter", ValueError]


def test_custom_task_wrapper_class_hook() -> None:
    class MyWrapper(TaskWrapper):
        pass

    class MyHuey(MemoryHuey):
        def get_task_wrapper_class(self) -> type[TaskWrapper]:
            return MyWrapper

    h = MyHuey("t" + uuid.uuid4().hex[:12])
    assert h.task_wrapper_class is MyWrapper

    @h.task()
    def work() -> None:
        return None

    assert isinstance(work, MyWrapper)
