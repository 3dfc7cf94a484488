"""Unit tests for ``huey.signals`` (spec §11)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from huey import signals
from huey.signals import Signal

EXPECTED = {
    "SIGNAL_CANCELED": "canceled",
    "SIGNAL_COMPLETE": "complete",
    "SIGNAL_ERROR": "error",
    "SIGNAL_EXECUTING": "executing",
    "SIGNAL_EXPIRED": "expired",
    "SIGNAL_LOCKED": "locked",
    "SIGNAL_SCHEDULED": "scheduled",
    "SIGNAL_RETRYING": "retrying",
    "SIGNAL_REVOKED": "revoked",
    "SIGNAL_INTERRUPTED": "interrupted",
    "SIGNAL_TIMEOUT": "timeout",
    "SIGNAL_RATE_LIMITED": "rate-limited",
    "SIGNAL_ENQUEUED": "enqueued",
}


class FakeTask:
    """Stands in for a task object: receivers only pass it through."""

    def __init__(self, task_id: str = "t-1") -> None:
        self.id = task_id


class Recorder:
    """A receiver that records each call as ``(label, signal, task, args, kwargs)``."""

    def __init__(self, log: list[tuple[Any, ...]], label: str) -> None:
        self.log = log
        self.label = label

    def __call__(self, signal: str, task: Any, *args: Any, **kwargs: Any) -> None:
        self.log.append((self.label, signal, task, args, kwargs))


def labels(log: list[tuple[Any, ...]]) -> list[str]:
    return [entry[0] for entry in log]


def test_the_thirteen_signal_constants() -> None:
    found = {name: getattr(signals, name) for name in dir(signals) if name.startswith("SIGNAL_")}
    assert found == EXPECTED
    assert len(set(found.values())) == 13


def test_initial_state_and_slots() -> None:
    sig = Signal()
    assert sig.receivers == {"any": []}
    with pytest.raises(AttributeError):
        sig.other = 1  # type: ignore[attr-defined]
    # Instances do not share receiver lists.
    sig.connect(print)
    assert Signal().receivers == {"any": []}


def test_connect_without_signals_goes_to_any() -> None:
    log: list[tuple[Any, ...]] = []
    sig = Signal()
    receiver = Recorder(log, "r")
    sig.connect(receiver)
    assert sig.receivers["any"] == [receiver]
    task = FakeTask()
    sig.send(signals.SIGNAL_COMPLETE, task)
    sig.send(signals.SIGNAL_ERROR, task, ValueError("x"))
    assert [(e[1], e[2]) for e in log] == [("complete", task), ("error", task)]
    assert isinstance(log[1][3][0], ValueError)


def test_connect_to_specific_signals_only() -> None:
    log: list[tuple[Any, ...]] = []
    sig = Signal()
    sig.connect(Recorder(log, "r"), signals.SIGNAL_ERROR, signals.SIGNAL_LOCKED)
    task = FakeTask()
    for name in EXPECTED.values():
        sig.send(name, task)
    assert [e[1] for e in log] == ["error", "locked"]


def test_extra_args_and_kwargs_are_passed() -> None:
    log: list[tuple[Any, ...]] = []
    sig = Signal()
    sig.connect(Recorder(log, "r"), signals.SIGNAL_ERROR)
    task = FakeTask()
    exc = RuntimeError("boom")
    sig.send(signals.SIGNAL_ERROR, task, exc, extra=1)
    assert log == [("r", "error", task, (exc,), {"extra": 1})]


def test_common_receiver_signature() -> None:
    seen: list[tuple[str, Any, Any]] = []

    def handler(signal: str, task: Any, exc: Exception | None = None) -> None:
        seen.append((signal, task, exc))

    sig = Signal()
    sig.connect(handler)
    task = FakeTask()
    exc = ValueError("x")
    sig.send(signals.SIGNAL_EXECUTING, task)
    sig.send(signals.SIGNAL_ERROR, task, exc)
    assert seen == [("executing", task, None), ("error", task, exc)]


def test_specific_receivers_run_before_any() -> None:
    log: list[tuple[Any, ...]] = []
    sig = Signal()
    # Connect 'any' receivers first to show ordering is by channel, not by connect order.
    sig.connect(Recorder(log, "any-1"))
    sig.connect(Recorder(log, "spec-1"), signals.SIGNAL_COMPLETE)
    sig.connect(Recorder(log, "any-2"))
    sig.connect(Recorder(log, "spec-2"), signals.SIGNAL_COMPLETE)
    sig.send(signals.SIGNAL_COMPLETE, FakeTask())
    assert labels(log) == ["spec-1", "spec-2", "any-1", "any-2"]


def test_same_receiver_connected_twice_runs_twice() -> None:
    log: list[tuple[Any, ...]] = []
    sig = Signal()
    receiver = Recorder(log, "r")
    sig.connect(receiver, signals.SIGNAL_COMPLETE)
    sig.connect(receiver, signals.SIGNAL_COMPLETE)
    sig.send(signals.SIGNAL_COMPLETE, FakeTask())
    assert labels(log) == ["r", "r"]
    # Connected to a channel and to 'any': runs once per connection too.
    log.clear()
    sig.connect(receiver)
    sig.send(signals.SIGNAL_COMPLETE, FakeTask())
    assert labels(log) == ["r", "r", "r"]


def test_disconnect_from_specific_signal() -> None:
    log: list[tuple[Any, ...]] = []
    sig = Signal()
    receiver = Recorder(log, "r")
    sig.connect(receiver, signals.SIGNAL_COMPLETE, signals.SIGNAL_ERROR)
    sig.disconnect(receiver, signals.SIGNAL_COMPLETE)
    sig.send(signals.SIGNAL_COMPLETE, FakeTask())
    sig.send(signals.SIGNAL_ERROR, FakeTask())
    assert [e[1] for e in log] == ["error"]


def test_disconnect_without_signals_removes_from_every_channel() -> None:
    log: list[tuple[Any, ...]] = []
    sig = Signal()
    receiver = Recorder(log, "r")
    other = Recorder(log, "other")
    sig.connect(receiver)
    sig.connect(receiver, signals.SIGNAL_COMPLETE, signals.SIGNAL_ERROR)
    sig.connect(other, signals.SIGNAL_COMPLETE)
    sig.disconnect(receiver)
    for name in (signals.SIGNAL_COMPLETE, signals.SIGNAL_ERROR, signals.SIGNAL_REVOKED):
        sig.send(name, FakeTask())
    assert labels(log) == ["other"]
    assert all(receiver not in lst for lst in sig.receivers.values())


def test_disconnect_removes_duplicate_connections() -> None:
    log: list[tuple[Any, ...]] = []
    sig = Signal()
    receiver = Recorder(log, "r")
    sig.connect(receiver, signals.SIGNAL_COMPLETE)
    sig.connect(receiver, signals.SIGNAL_COMPLETE)
    sig.disconnect(receiver, signals.SIGNAL_COMPLETE)
    sig.send(signals.SIGNAL_COMPLETE, FakeTask())
    assert log == []


def test_disconnect_missing_receiver_is_ignored() -> None:
    sig = Signal()
    kept = Recorder([], "kept")
    sig.connect(kept, signals.SIGNAL_COMPLETE)
    sig.disconnect(Recorder([], "never"))
    sig.disconnect(Recorder([], "never"), signals.SIGNAL_COMPLETE, "no-such-signal")
    assert sig.receivers[signals.SIGNAL_COMPLETE] == [kept]


def test_disconnect_only_affects_that_receiver() -> None:
    log: list[tuple[Any, ...]] = []
    sig = Signal()
    a, b = Recorder(log, "a"), Recorder(log, "b")
    sig.connect(a)
    sig.connect(b)
    sig.disconnect(a)
    sig.send(signals.SIGNAL_COMPLETE, FakeTask())
    assert labels(log) == ["b"]


def test_send_with_no_receivers_is_a_noop() -> None:
    Signal().send(signals.SIGNAL_COMPLETE, FakeTask())
    Signal().send("custom-signal", None)


def test_failing_receiver_is_logged_and_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log: list[tuple[Any, ...]] = []
    sig = Signal()

    def broken(signal: str, task: Any, *args: Any) -> None:
        raise RuntimeError("receiver exploded")

    sig.connect(Recorder(log, "before"), signals.SIGNAL_COMPLETE)
    sig.connect(broken, signals.SIGNAL_COMPLETE)
    sig.connect(Recorder(log, "after"), signals.SIGNAL_COMPLETE)
    sig.connect(broken)
    sig.connect(Recorder(log, "any"))
    with caplog.at_level(logging.ERROR):
        sig.send(signals.SIGNAL_COMPLETE, FakeTask("task-42"))  # must not raise
    assert labels(log) == ["before", "after", "any"]
    failures = [r for r in caplog.records if r.exc_info and r.levelno >= logging.ERROR]
    assert len(failures) == 2
    for record in failures:
        assert record.name.startswith("huey")
        assert isinstance(record.exc_info[1], RuntimeError)  # type: ignore[index]
        assert "task-42" in record.getMessage()
