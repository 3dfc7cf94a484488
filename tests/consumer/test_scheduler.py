"""The Scheduler's timing rules, driven in-process with injected time (no sleeping), plus
one real consumer whose scheduler clock runs a minute per second."""

from __future__ import annotations

import datetime
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from huey import FileHuey, MemoryHuey
from huey.consumer import Scheduler
from tests.consumer.conftest import wait_until

T0 = datetime.datetime(2024, 3, 1, 12, 0, 17)


def minutes(n: float) -> datetime.timedelta:
    return datetime.timedelta(minutes=n)


def make_scheduler(huey: Any, periodic: bool = True, cls: type[Scheduler] = Scheduler) -> Any:
    stop = threading.Event()
    stop.set()  # loop() returns at once instead of sleeping until the next interval
    return cls(huey, stop, 1, periodic)


@pytest.fixture
def checked() -> list[datetime.datetime]:
    return []


@pytest.fixture
def huey(checked: list[datetime.datetime]) -> MemoryHuey:
    huey = MemoryHuey("sched", utc=False)

    def every_even_minute(dt: datetime.datetime) -> bool:
        checked.append(dt)
        return dt.minute % 2 == 0

    @huey.periodic_task(every_even_minute)
    def ticker() -> None:
        pass

    @huey.task()
    def add(a: int, b: int) -> int:
        return a + b

    huey.add_task = add  # type: ignore[attr-defined]
    return huey


@pytest.mark.timeout(10)
def test_due_scheduled_tasks_move_to_the_queue(huey: Any) -> None:
    task = huey.add_task.s(1, 2)
    task.eta = T0 + datetime.timedelta(seconds=30)
    huey.add_schedule(task)
    scheduler = make_scheduler(huey, periodic=False)
    scheduler.loop(now=T0)
    assert huey.pending_count() == 0 and huey.scheduled_count() == 1
    scheduler.loop(now=T0 + datetime.timedelta(seconds=30))
    assert [t.id for t in huey.pending()] == [task.id]
    assert huey.scheduled_count() == 0


@pytest.mark.timeout(10)
def test_periodic_checks_align_to_minutes_once_each(
    huey: Any, checked: list[datetime.datetime]
) -> None:
    scheduler = make_scheduler(huey)
    for offset in (0, 0.3, 0.6, 0.7):  # 12:00:17 .. 12:00:59 -> one check, for 12:00
        scheduler.loop(now=T0 + minutes(offset))
    scheduler.loop(now=T0 + minutes(0.75))  # 12:01:02
    assert checked == [datetime.datetime(2024, 3, 1, 12, 0), datetime.datetime(2024, 3, 1, 12, 1)]
    # Only the even minute's task was enqueued.
    assert [t.name for t in huey.pending()] == ["ticker"]


@pytest.mark.timeout(10)
def test_missed_minutes_are_skipped_not_replayed(
    huey: Any, checked: list[datetime.datetime], caplog: pytest.LogCaptureFixture
) -> None:
    scheduler = make_scheduler(huey)
    scheduler.loop(now=T0)
    with caplog.at_level(logging.WARNING, logger="huey.consumer.Scheduler"):
        scheduler.loop(now=T0 + minutes(10))  # a 10-minute stall
    assert checked == [datetime.datetime(2024, 3, 1, 12, 0), datetime.datetime(2024, 3, 1, 12, 10)]
    assert "skipping 9 missed periodic check(s)" in caplog.text
    assert len(huey.pending()) == 2  # 12:00 and 12:10, not the 4 even minutes in between


@pytest.mark.timeout(10)
def test_no_periodic_disables_periodic_tasks(huey: Any, checked: list[datetime.datetime]) -> None:
    scheduler = make_scheduler(huey, periodic=False)
    scheduler.loop(now=T0)
    scheduler.loop(now=T0 + minutes(1))
    assert checked == [] and huey.pending_count() == 0


@pytest.mark.timeout(10)
def test_clock_knobs(huey: Any, checked: list[datetime.datetime]) -> None:
    class FastScheduler(Scheduler):
        periodic_task_seconds = 5
        _now = staticmethod(lambda: T0)  # type: ignore[assignment]

    scheduler = make_scheduler(huey, cls=FastScheduler)
    scheduler.loop()  # uses the injected clock
    scheduler.loop(now=T0 + datetime.timedelta(seconds=4))
    assert checked == [
        datetime.datetime(2024, 3, 1, 12, 0, 15),
        datetime.datetime(2024, 3, 1, 12, 0, 20),
    ]


@pytest.mark.timeout(10)
@pytest.mark.parametrize("utc", [True, False])
def test_periodic_ticks_use_huey_time(
    utc: bool, checked: list[datetime.datetime], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A zone 5h30 away from UTC tells UTC and local time apart.
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        huey = MemoryHuey("tz", utc=utc)
        huey.periodic_task(lambda dt: bool(checked.append(dt)))(lambda: None)
        make_scheduler(huey).loop()
        expected = datetime.datetime.utcnow() if utc else datetime.datetime.now()
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert len(checked) == 1
    assert checked[0].second == 0 and checked[0].microsecond == 0
    assert abs(expected - checked[0]) < datetime.timedelta(minutes=2)


@pytest.mark.timeout(10)
def test_task_that_fails_to_enqueue_is_logged_and_set_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    huey = FileHuey("sched", path=str(tmp_path))

    @huey.task()
    def add(a: int, b: int) -> int:
        return a + b

    bad, good = add.s(1, 1), add.s(2, 2)
    bad.priority = 70000  # FileStorage's queue rejects priorities above 65535
    for task in (bad, good):
        task.eta = T0
        huey.add_schedule(task)
    with caplog.at_level(logging.ERROR, logger="huey"):
        make_scheduler(huey, periodic=False).loop(now=T0 + minutes(1))
    assert f"Error enqueueing scheduled task {bad.id}" in caplog.text
    assert [t.id for t in huey.pending()] == [good.id]
    # Not lost: set aside as a dead letter with the reason, out of the schedule.
    (letter,) = huey.dead_letters()
    assert huey.deserialize_task(letter.data).id == bad.id
    assert "could not be enqueued" in letter.reason and "65535" in letter.reason
    assert huey.scheduled() == []


@pytest.mark.timeout(60)
@pytest.mark.parametrize("storage", ["file"])
def test_periodic_task_fires_on_its_minute(app: Any, start_consumer: Any) -> None:
    # The consumer's scheduler clock (tasks_basic._install_fake_clock) advances one minute
    # per real second from 12:00:17 and jumps 30 minutes after 4 seconds.
    consumer = start_consumer(
        app.storage,
        env={"HUEY_TEST_PERIODIC": "1", "HUEY_TEST_FAKE_CLOCK": "1", "HUEY_TEST_JUMP_AFTER": "4"},
    )

    def checks() -> list[datetime.datetime]:
        return [datetime.datetime.fromisoformat(row[1]) for row in consumer.events("check")]

    wait_until(lambda: sum(c.minute >= 30 for c in checks()) >= 2, 30, "checks after the jump")
    even = [c for c in checks() if c.minute % 2 == 0]
    wait_until(lambda: len(consumer.events("tick")) >= len(even), 20, "the periodic tasks")
    consumer.send(signal.SIGINT)
    assert consumer.wait_exit() == 0

    seen = checks()
    assert all(c.second == 0 and c.microsecond == 0 for c in seen), seen  # truncated
    assert seen == sorted(set(seen)), seen  # each minute checked once, in order
    before = [c for c in seen if c.minute < 30]
    after = [c for c in seen if c.minute >= 30]
    assert before and after
    # The minutes skipped by the jump were not replayed back to back.
    assert after[0] - before[-1] > minutes(25)
    assert "missed periodic check(s)" in consumer.log()
    assert len(consumer.events("tick")) == len([c for c in seen if c.minute % 2 == 0])
    assert os.path.exists(consumer.events_path)
