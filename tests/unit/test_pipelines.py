"""Pipelines, groups and chords (spec §8, §7.3)."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import pytest

from huey import SKIPPED, CancelExecution, Error, MemoryHuey, chord, group
from huey.api import ChordResult, Result, ResultGroup, Task, TaskWrapper
from huey.exceptions import TaskException
from tests.unit.conftest import Recorder, approx_now_plus, run_all, run_next


@pytest.fixture
def add(huey: MemoryHuey) -> TaskWrapper:
    @huey.task()
    def add(a: int, b: int) -> int:
        return a + b

    return add


@pytest.fixture
def collect(huey: MemoryHuey) -> TaskWrapper:
    @huey.task()
    def collect(values: list[Any], *extra: Any) -> Any:
        return [values, *extra] if extra else values

    return collect


@pytest.fixture
def boom(huey: MemoryHuey) -> TaskWrapper:
    @huey.task()
    def boom(*args: Any) -> None:
        raise ValueError("member failed")

    return boom


# --------------------------------------------------------------------------------------
# §8.1 extend_data
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [None, ()])
def test_extend_data_nothing(data: Any) -> None:
    task = Task((1,), {"a": 1})
    task.extend_data(data)
    assert task.args == (1,) and task.kwargs == {"a": 1}


def test_extend_data_tuple_appends() -> None:
    task = Task((1,))
    task.extend_data((2, 3))
    assert task.args == (1, 2, 3)


def test_extend_data_dict_setdefault() -> None:
    task = Task((), {"a": "explicit"})
    task.extend_data({"a": "from result", "b": 2})
    assert task.kwargs == {"a": "explicit", "b": 2}
    assert task.args == ()


@pytest.mark.parametrize("value", [[1, 2], 5, "text", 0, ValueError("x")], ids=repr)
def test_extend_data_other_values_append_one_argument(value: Any) -> None:
    task = Task((1,))
    task.extend_data(value)
    assert task.args == (1, value)


# --------------------------------------------------------------------------------------
# §8.2 then / error
# --------------------------------------------------------------------------------------


def test_then_with_wrapper_returns_head_and_appends(add: TaskWrapper) -> None:
    head = add.s(1, 2)
    assert head.then(add, 10) is head
    assert head.then(add, 100) is head
    second = head.on_complete
    assert isinstance(second, add.task_class)
    assert second.args == (10,)
    third = second.on_complete
    assert third.args == (100,)
    assert third.on_complete is None


def test_then_with_task_instance_extends_data(add: TaskWrapper) -> None:
    head = add.s(1, 2)
    stage = add.s(5)
    head.then(stage, 7, b=3)
    assert head.on_complete is stage
    assert stage.args == (5, 7)
    assert stage.kwargs == {"b": 3}


def test_pipeline_passes_values(huey: MemoryHuey, add: TaskWrapper) -> None:
    results = huey.enqueue(add.s(1, 2).then(add, 10).then(add, 100))
    assert isinstance(results, ResultGroup)
    assert len(results) == 3
    assert run_all(huey) == 3
    assert results.get() == [3, 13, 113]


def test_pipeline_signals(huey: MemoryHuey, add: TaskWrapper, recorder: Recorder) -> None:
    results = huey.enqueue(add.s(1, 2).then(add, 10))
    first, second = list(results)
    run_next(huey)
    assert recorder.calls[:3] == [
        ("enqueued", first.id, ()),
        ("executing", first.id, ()),
        ("complete", first.id, ()),
    ]
    assert recorder.calls[3][:2] == ("enqueued", second.id)


def test_pipeline_tuple_and_dict_results(huey: MemoryHuey) -> None:
    @huey.task()
    def pair() -> tuple[int, int]:
        return (2, 3)

    @huey.task()
    def mapping() -> dict[str, int]:
        return {"x": 1, "y": 2}

    @huey.task()
    def take(*args: Any, **kwargs: Any) -> Any:
        return [list(args), kwargs]

    r1 = huey.enqueue(pair.s().then(take, 1))
    r2 = huey.enqueue(mapping.s().then(take, y=99))
    run_all(huey)
    assert r1.get() == [(2, 3), [[1, 2, 3], {}]]
    assert r2.get()[1] == [[], {"x": 1, "y": 99}]


def test_pipeline_none_passes_nothing(huey: MemoryHuey) -> None:
    @huey.task()
    def nothing() -> None:
        return None

    @huey.task()
    def count(*args: Any) -> int:
        return len(args)

    results = huey.enqueue(nothing.s().then(count))
    run_all(huey)
    assert results.get() == [None, 0]


def test_pipeline_stage_with_delay_is_scheduled(huey: MemoryHuey, add: TaskWrapper) -> None:
    results = huey.enqueue(add.s(1, 2).then(add.s(10, delay=60)))
    run_all(huey)
    assert huey.scheduled_count() == 1
    (scheduled,) = huey.scheduled()
    assert scheduled.id == list(results)[1].id
    assert approx_now_plus(scheduled.eta, 60)
    assert scheduled.args == (10, 3)


def test_error_handler_attached_and_chained(huey: MemoryHuey, boom: TaskWrapper) -> None:
    @huey.task()
    def handler(tag: str, exc: Exception) -> str:
        return tag

    head = boom.s()
    assert head.error(handler, "one") is head
    assert head.error(handler, "two") is head
    assert head.on_error.args == ("one",)
    assert head.on_error.on_error.args == ("two",)
    assert head.on_complete is None


def test_error_handler_receives_exception(huey: MemoryHuey, boom: TaskWrapper) -> None:
    seen: list[Any] = []

    @huey.task()
    def handler(exc: Exception) -> None:
        seen.append(exc)

    huey.enqueue(boom.s().error(handler))
    run_all(huey)
    assert len(seen) == 1
    assert isinstance(seen[0], ValueError) and seen[0].args == ("member failed",)


def test_first_stage_on_error_ignores_later_failures(
    huey: MemoryHuey, add: TaskWrapper, boom: TaskWrapper
) -> None:
    seen: list[Any] = []

    @huey.task()
    def handler(exc: Exception) -> None:
        seen.append(exc)

    results = huey.enqueue(add.s(1, 2).error(handler).then(boom))
    run_all(huey)
    assert seen == []
    first, second = list(results)
    assert first.get() == 3
    with pytest.raises(TaskException):
        second.get()


# --------------------------------------------------------------------------------------
# §8.3 group
# --------------------------------------------------------------------------------------


def test_group_enqueue_returns_result_group(huey: MemoryHuey, add: TaskWrapper) -> None:
    g = group([add.s(1, 1), add.s(2, 2).then(add, 10)])
    assert len(g.tasks) == 2
    results = huey.enqueue(g)
    assert isinstance(results, ResultGroup)
    items = list(results)
    assert isinstance(items[0], Result)
    assert isinstance(items[1], ResultGroup)  # a pipeline member yields a group
    run_all(huey)
    assert items[0].get() == 2
    assert items[1].get() == [4, 14]


def test_group_then_builds_chord(huey: MemoryHuey, add: TaskWrapper, collect: TaskWrapper) -> None:
    c = group([add.s(1, 1), add.s(2, 2)]).then(collect)
    assert isinstance(c, chord)
    result = huey.enqueue(c)
    run_all(huey)
    assert result.get() == [2, 4]


def test_group_error_applies_to_every_member(huey: MemoryHuey, boom: TaskWrapper) -> None:
    seen: list[str] = []

    @huey.task()
    def handler(tag: str, exc: Exception) -> None:
        seen.append(tag)

    g = group([boom.s(1), boom.s(2)])
    assert g.error(handler, "h") is g
    assert all(t.on_error is not None for t in g.tasks)
    huey.enqueue(g)
    run_all(huey)
    assert seen == ["h", "h"]


# --------------------------------------------------------------------------------------
# §8.4 chord
# --------------------------------------------------------------------------------------


def test_chord_basic(huey: MemoryHuey, add: TaskWrapper, collect: TaskWrapper) -> None:
    result = huey.enqueue(chord([add.s(1, 2), add.s(3, 4), add.s(5, 6)], collect.s()))
    assert isinstance(result, ChordResult)
    assert isinstance(result.results, ResultGroup)
    assert len(result.results) == 3
    assert isinstance(result.callback, Result)
    assert result.pipeline_results is None
    assert huey.pending_count() == 3  # callback waits for the members
    run_all(huey)
    assert result.results.get() == [3, 7, 11]
    assert result.get() == [3, 7, 11]
    assert result() == [3, 7, 11]


def test_chord_callback_as_wrapper_and_extra_args(
    huey: MemoryHuey, add: TaskWrapper, collect: TaskWrapper
) -> None:
    result = huey.enqueue(chord([add.s(1, 1)], collect))
    run_all(huey)
    assert result.get() == [2]
    result2 = huey.enqueue(chord([add.s(1, 1)], collect.s("x")))
    run_all(huey)
    # The member list is appended after the callback's own arguments.
    assert result2.get() == ["x", [2]]


def test_chord_list_order_follows_members_not_completion(
    huey: MemoryHuey, add: TaskWrapper, collect: TaskWrapper
) -> None:
    result = huey.enqueue(chord([add.s(1, 0), add.s(2, 0), add.s(3, 0)], collect.s()))
    tasks = [huey.dequeue() for _ in range(3)]
    for task in reversed(tasks):
        huey.execute(task)
    run_all(huey)
    assert result.get() == [1, 2, 3]


def test_chord_signals(
    huey: MemoryHuey, add: TaskWrapper, collect: TaskWrapper, recorder: Recorder
) -> None:
    result = huey.enqueue(chord([add.s(1, 2), add.s(3, 4)], collect.s()))
    assert recorder.names == ["enqueued", "enqueued"]
    run_next(huey)
    assert recorder.names[2:] == ["executing", "complete"]
    run_next(huey)
    assert recorder.names[4:] == ["executing", "complete", "enqueued"]
    assert recorder.calls[-1][1] == result.callback.id
    run_next(huey)
    assert recorder.for_task(result.callback.id) == ["enqueued", "executing", "complete"]


def test_empty_chord_fires_immediately(huey: MemoryHuey, collect: TaskWrapper) -> None:
    result = huey.enqueue(chord([], collect.s()))
    assert isinstance(result, ChordResult)
    assert len(result.results) == 0
    assert huey.pending_count() == 1
    run_all(huey)
    assert result.get() == []


def test_chord_member_failure_contributes_error(
    huey: MemoryHuey, add: TaskWrapper, boom: TaskWrapper, collect: TaskWrapper
) -> None:
    result = huey.enqueue(chord([add.s(1, 1), boom.s(), add.s(2, 2)], collect.s()))
    run_all(huey)
    values = result.get()
    assert values[0] == 2 and values[2] == 4
    assert isinstance(values[1], Error)
    assert values[1].metadata["error"] == repr(ValueError("member failed"))


def test_chord_member_with_retries_contributes_only_final(
    huey: MemoryHuey, collect: TaskWrapper
) -> None:
    attempts: list[int] = []

    @huey.task(retries=1)
    def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ValueError("x")
        return "ok"

    result = huey.enqueue(chord([flaky.s()], collect.s()))
    run_all(huey)
    assert result.get() == ["ok"]


def test_chord_revoked_member_contributes_skipped(
    huey: MemoryHuey, add: TaskWrapper, collect: TaskWrapper
) -> None:
    member = add.s(1, 1)
    huey.revoke(member)
    result = huey.enqueue(chord([member, add.s(2, 2)], collect.s()))
    run_all(huey)
    values = result.get()
    assert values[0] is SKIPPED
    assert values[1] == 4


def test_chord_expired_member_contributes_skipped(
    huey: MemoryHuey, add: TaskWrapper, collect: TaskWrapper
) -> None:
    expired = add.s(1, 1, expires=datetime.datetime(2000, 1, 1))
    result = huey.enqueue(chord([expired, add.s(2, 2)], collect.s()))
    run_all(huey)
    assert result.get()[0] is SKIPPED


def test_chord_cancelled_member_contributes_skipped(
    huey: MemoryHuey, add: TaskWrapper, collect: TaskWrapper
) -> None:
    member = add.s(1, 1)

    @huey.pre_execute()
    def veto(task: Task) -> None:
        if task.id == member.id:
            raise CancelExecution()

    result = huey.enqueue(chord([member, add.s(2, 2)], collect.s()))
    run_all(huey)
    assert result.get() == [SKIPPED, 4]


def test_chord_pipeline_member_contributes_tail_value(
    huey: MemoryHuey, add: TaskWrapper, collect: TaskWrapper
) -> None:
    result = huey.enqueue(chord([add.s(1, 1).then(add, 10), add.s(5, 5)], collect.s()))
    tail = list(result.results)[0]
    run_all(huey)
    assert result.get() == [12, 10]
    assert tail.get() == 12  # results point at each member's tail


def test_chord_pipeline_member_failing_mid_way(
    huey: MemoryHuey, add: TaskWrapper, boom: TaskWrapper, collect: TaskWrapper
) -> None:
    member = boom.s().then(add, 1).then(add, 2)
    result = huey.enqueue(chord([member, add.s(5, 5)], collect.s()))
    run_all(huey)
    values = result.get()
    assert isinstance(values[0], Error)
    assert values[1] == 10


def test_nested_chord(huey: MemoryHuey, add: TaskWrapper, collect: TaskWrapper) -> None:
    inner = chord([add.s(1, 1), add.s(2, 2)], collect.s())
    outer = chord([inner, add.s(10, 10)], collect.s())
    result = huey.enqueue(outer)
    run_all(huey)
    assert result.get() == [[2, 4], 20]


def test_group_as_chord_member_is_value_error(
    huey: MemoryHuey, add: TaskWrapper, collect: TaskWrapper
) -> None:
    with pytest.raises(ValueError):
        huey.enqueue(chord([group([add.s(1, 1)]), add.s(2, 2)], collect.s()))


def test_chord_keys_are_cleaned(huey: MemoryHuey, add: TaskWrapper, collect: TaskWrapper) -> None:
    result = huey.enqueue(chord([add.s(1, 1), add.s(2, 2)], collect.s()))
    cid = list(result.results)[0].task.chord_config.cid
    assert uuid.UUID(cid).version == 4
    run_next(huey)
    assert f"chord:{cid}:0" in huey.all_results()
    assert huey.storage.incr(f"chord:{cid}", 0) == 1
    run_next(huey)
    keys = set(huey.all_results())
    assert not any(k.startswith("chord:") for k in keys)
    assert huey.storage.incr(f"chord:{cid}", 0) == 0
    run_all(huey)
    assert result.get() == [2, 4]


def test_chord_config_tags_member_tails(
    huey: MemoryHuey, add: TaskWrapper, collect: TaskWrapper
) -> None:
    head = add.s(1, 1).then(add, 1)
    single = add.s(3, 3)
    c = chord([head, single], collect.s())
    huey.enqueue(c)
    assert head.chord_config is None
    tail_cfg = head.on_complete.chord_config
    assert (tail_cfg.size, tail_cfg.idx) == (2, 0)
    assert single.chord_config.cid == tail_cfg.cid
    assert (single.chord_config.size, single.chord_config.idx) == (2, 1)


def test_chord_results_written_when_results_disabled(unique_name: str) -> None:
    h = MemoryHuey(unique_name, results=False, utc=False)
    seen: list[Any] = []

    @h.task()
    def one() -> int:
        return 1

    @h.task()
    def nothing() -> None:
        return None

    @h.task()
    def cb(values: list[Any]) -> None:
        seen.append(values)

    h.enqueue(chord([one.s(), nothing.s()], cb.s()))
    run_all(h)
    assert seen == [[1, None]]


def test_chord_then_and_pipeline_results(
    huey: MemoryHuey, add: TaskWrapper, collect: TaskWrapper
) -> None:
    @huey.task()
    def total(values: list[int]) -> int:
        return sum(values)

    c = chord([add.s(1, 1), add.s(2, 2)], total)
    assert c.then(add, 100) is c
    result = huey.enqueue(c)
    assert isinstance(result.pipeline_results, ResultGroup)
    assert len(result.pipeline_results) == 2
    run_all(huey)
    assert result.pipeline_results.get(preserve=True) == [6, 106]
    assert result.get() == 6


def test_chord_error_forwards_to_callback(huey: MemoryHuey, add: TaskWrapper) -> None:
    seen: list[Any] = []

    @huey.task()
    def bad_callback(values: list[Any]) -> None:
        raise RuntimeError("callback failed")

    @huey.task()
    def handler(exc: Exception) -> None:
        seen.append(exc)

    c = chord([add.s(1, 1)], bad_callback)
    assert c.error(handler) is c
    huey.enqueue(c)
    run_all(huey)
    assert len(seen) == 1 and isinstance(seen[0], RuntimeError)


def test_chord_result_reset(huey: MemoryHuey, add: TaskWrapper) -> None:
    attempts: list[int] = []

    @huey.task(retries=1)
    def flaky_cb(values: list[int]) -> int:
        attempts.append(1)
        if len(attempts) == 1:
            raise ValueError("x")
        return sum(values)

    result = huey.enqueue(chord([add.s(1, 1)], flaky_cb))
    run_next(huey)  # member
    run_next(huey)  # callback, first attempt fails
    with pytest.raises(TaskException):
        result.get()
    run_next(huey)  # retry succeeds
    with pytest.raises(TaskException):
        result.get()
    result.reset()
    assert result.get() == 2
