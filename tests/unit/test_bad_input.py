"""Bad input gets a clear error at the call site, and nothing is lost."""

from __future__ import annotations

import threading

import pytest

import huey
from huey.exceptions import ConfigurationError, HueyException
from huey.registry import Message
from huey.storage import BaseStorage


@pytest.fixture
def h() -> huey.MemoryHuey:
    return huey.MemoryHuey("bad-input")


def test_unserializable_argument_names_task_and_argument(h: huey.MemoryHuey) -> None:
    @h.task()
    def send(to: str, lock: object) -> None:
        pass

    with pytest.raises(TypeError) as info:
        send("a@example.com", threading.Lock())
    message = str(info.value)
    assert "send" in message
    assert "argument 1" in message and "lock" in message.lower()
    assert h.pending_count() == 0  # nothing half-enqueued


def test_unserializable_keyword_argument_is_named(h: huey.MemoryHuey) -> None:
    @h.task()
    def work(**kwargs: object) -> None:
        pass

    with pytest.raises(TypeError, match="keyword argument 'callback'"):
        work(callback=lambda: None)


def test_unknown_task_name_in_queue_raises_spec_error(h: huey.MemoryHuey) -> None:
    h.storage.enqueue(h.serialize(Message("id-1", "gone.task", args=(), kwargs={})))
    with pytest.raises(HueyException, match="gone.task not found in TaskRegistry"):
        h.dequeue()


def test_undecodable_entries_are_skipped_by_pending_and_scheduled(h: huey.MemoryHuey) -> None:
    @h.task()
    def ok() -> int:
        return 1

    h.storage.enqueue(b"not a pickle")
    ok()
    assert [t.name for t in h.pending()] == ["ok"]
    assert h.pending_count() == 2  # the bad entry is reported, not silently removed


@pytest.mark.parametrize(
    "options, fragment",
    [
        ({"retries": -1}, "retries=-1"),
        ({"retries": "3"}, "retries='3'"),
        ({"retries": 1.5}, "retries=1.5"),
        ({"retry_delay": "soon"}, "retry_delay='soon'"),
        ({"retry_backoff": -2}, "retry_backoff=-2"),
        ({"timeout": "10s"}, "timeout='10s'"),
        ({"priority": "high"}, "priority='high'"),
    ],
)
def test_wrong_task_option_types_raise_configuration_error(
    h: huey.MemoryHuey, options: dict[str, object], fragment: str
) -> None:
    with pytest.raises(ConfigurationError, match=fragment.replace("(", r"\(")):
        h.task(**options)  # type: ignore[arg-type]


def test_periodic_task_needs_a_callable_rule(h: huey.MemoryHuey) -> None:
    with pytest.raises(ConfigurationError, match="crontab"):
        h.periodic_task("every minute")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", None, 3])
def test_bad_huey_name(name: object) -> None:
    with pytest.raises(ConfigurationError, match="name"):
        huey.MemoryHuey(name)  # type: ignore[arg-type]


def test_storage_class_must_be_a_storage() -> None:
    with pytest.raises(ConfigurationError, match="BaseStorage subclass"):
        huey.Huey("x", storage_class=dict)  # type: ignore[arg-type]


def test_missing_storage_class_warns_and_uses_redis() -> None:
    with pytest.warns(UserWarning, match="RedisStorage"):
        h = huey.Huey("x", url="redis://127.0.0.1:6379/15")
    assert type(h.storage).__name__ == "RedisStorage"


def test_enqueue_rejects_non_tasks(h: huey.MemoryHuey) -> None:
    with pytest.raises(TypeError, match="Task, group or chord"):
        h.enqueue("not a task")


def test_then_rejects_non_tasks(h: huey.MemoryHuey) -> None:
    @h.task()
    def a() -> None:
        pass

    with pytest.raises(TypeError, match="expected a task"):
        a.s().then(print)


def test_lock_and_rate_limit_arguments_are_validated(h: huey.MemoryHuey) -> None:
    with pytest.raises(ValueError, match="ttl"):
        h.lock_task("x", ttl=-1)
    with pytest.raises(ValueError, match="limit"):
        h.rate_limit("x", 0, 10)
    with pytest.raises(ValueError, match="period"):
        h.rate_limit("x", 5, 0)


def test_base_storage_put_if_empty_default_has_no_ttl() -> None:
    with pytest.raises(NotImplementedError, match="ttl"):
        BaseStorage("x").put_if_empty("k", b"v", ttl=5)
