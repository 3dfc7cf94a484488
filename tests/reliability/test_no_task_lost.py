"""No task is ever lost: real consumers, real SIGKILLs, real servers (issue 5).

Leases are 1 s (``-T 1``), health checks every second, so a killed worker's tasks come back
within a few seconds. Each test is bounded; none times anything.
"""

from __future__ import annotations

import collections
import os
import signal
import time
from typing import Any

import pytest

from tests.consumer.conftest import ConsumerProcess, wait_until

pytestmark = pytest.mark.timeout(180)


def child_pids(pid: int) -> list[int]:
    """The direct children of ``pid`` (the consumer's process workers)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(p) for p in fh.read().split()]
    except FileNotFoundError:
        return []


def kill_consumer(consumer: ConsumerProcess) -> None:
    """SIGKILL the consumer and all its workers at once, as an OOM killer or node loss."""
    os.killpg(consumer.pid, signal.SIGKILL)
    consumer.proc.wait(10)


def done_counts(store: Any) -> collections.Counter[int]:
    return collections.Counter(int(row[0]) for row in store.event_rows("done"))


def run_kill_matrix(
    store: Any, start_consumer: Any, total: int, kills: int, worker_args: tuple[str, ...]
) -> collections.Counter[int]:
    """Enqueue ``total`` jobs; SIGKILL the whole consumer ``kills`` times mid-run."""
    tasks = store.tasks()
    for i in range(total):
        tasks.job(i, 0.01)
    consumer = start_consumer(store, *worker_args)
    for k in range(kills):
        target = total * (k + 1) // (kills + 2)
        wait_until(lambda t=target: len(done_counts(store)) >= t, 60, f"{target} jobs done")
        kill_consumer(consumer)
        consumer = start_consumer(store, *worker_args)
    wait_until(lambda: len(done_counts(store)) >= total, 120, "every job done")
    consumer.send(signal.SIGINT)
    consumer.wait_exit(30)
    counts = done_counts(store)
    twice = sum(1 for n in counts.values() if n > 1)
    print(f"\n{store.backend}: {total} enqueued, {len(counts)} completed, "
          f"{total - len(counts)} lost, {twice} ran more than once")  # fmt: skip
    return counts


@pytest.mark.parametrize("worker_args", [("-w", "4"), ("-w", "2", "-k", "process")])
def test_whole_consumer_killed_repeatedly_loses_nothing_redis(
    store_for: Any, start_consumer: Any, worker_args: tuple[str, ...]
) -> None:
    store = store_for("redis")
    counts = run_kill_matrix(store, start_consumer, 300, 3, worker_args)
    assert set(counts) == set(range(300))
    store.tasks().huey.flush()


@pytest.mark.parametrize("backend", ["sqlite", "postgres", "file"])
def test_whole_consumer_killed_loses_nothing_smoke(
    backend: str, store_for: Any, start_consumer: Any
) -> None:
    store = store_for(backend)
    counts = run_kill_matrix(store, start_consumer, 120, 1, ("-w", "2"))
    assert set(counts) == set(range(120))
    store.tasks().huey.flush()


@pytest.mark.parametrize("backend", ["redis", "sqlite"])
def test_killed_process_workers_lose_nothing(
    backend: str, store_for: Any, start_consumer: Any
) -> None:
    store = store_for(backend)
    tasks = store.tasks()
    total = 200
    for i in range(total):
        tasks.job(i, 0.02)
    consumer = start_consumer(store, "-w", "2", "-k", "process")
    for k in range(3):
        target = total * (k + 1) // 5
        wait_until(lambda t=target: len(done_counts(store)) >= t, 60, f"{target} jobs done")
        for pid in child_pids(consumer.pid):
            os.kill(pid, signal.SIGKILL)
    wait_until(lambda: len(done_counts(store)) >= total, 120, "every job done")
    assert set(done_counts(store)) == set(range(total))
    assert consumer.proc.poll() is None  # the consumer itself kept going
    consumer.send(signal.SIGINT)
    consumer.wait_exit(30)
    tasks.huey.flush()


@pytest.mark.parametrize("backend", ["redis", "sqlite", "postgres"])
def test_poison_task_ends_in_dead_letters(
    backend: str, store_for: Any, start_consumer: Any
) -> None:
    store = store_for(backend)
    tasks = store.tasks()
    tasks.poison()
    for i in range(20):
        tasks.job(i)
    consumer = start_consumer(store, "-w", "2", "-k", "process")
    huey = tasks.huey
    wait_until(lambda: huey.dead_letter_count() == 1, 90, "the poison task in dead letters")
    assert len(store.event_rows("poison")) == huey.max_deliveries  # 3 runs, then set aside
    letter = huey.dead_letters()[0]
    assert "delivered 4 times" in letter.reason
    assert huey.deserialize_task(letter.data).name == "poison"
    wait_until(lambda: len(done_counts(store)) == 20, 60, "the rest of the queue")
    consumer.send(signal.SIGINT)
    consumer.wait_exit(30)
    huey.flush()


@pytest.mark.parametrize("backend", ["redis", "sqlite", "postgres"])
def test_lock_held_by_a_killed_worker_heals(
    backend: str, store_for: Any, start_consumer: Any
) -> None:
    store = store_for(backend)
    tasks = store.tasks()
    result = tasks.crash_once_holding_lock(str(store.workdir / "crashed-once"))
    consumer = start_consumer(store, "-w", "1", "-k", "process")
    assert result.get(blocking=True, timeout=60) == "finished"
    assert len(store.event_rows("locked-done")) == 1
    assert not tasks.huey.is_locked("crash-once")
    assert "Released lock" in consumer.log()
    consumer.send(signal.SIGINT)
    consumer.wait_exit(30)
    tasks.huey.flush()


@pytest.mark.parametrize("backend", ["redis", "sqlite", "postgres"])
def test_long_task_is_not_delivered_again_while_its_worker_lives(
    backend: str, store_for: Any, start_consumer: Any
) -> None:
    store = store_for(backend)
    tasks = store.tasks()
    result = tasks.long_task(3.5)  # 3.5 s with a 1 s visibility timeout
    consumer = start_consumer(store, "-w", "2")
    assert result.get(blocking=True, timeout=60) == "finished"
    time.sleep(1.5)  # a re-delivery, if any, would start within this
    assert len(store.event_rows("start")) == 1
    assert "Requeued" not in consumer.log()
    consumer.send(signal.SIGINT)
    consumer.wait_exit(30)
    tasks.huey.flush()


@pytest.mark.parametrize("backend", ["redis", "sqlite", "postgres"])
def test_periodic_ticks_fire_once_across_three_consumers(
    backend: str, store_for: Any, start_consumer: Any
) -> None:
    store = store_for(backend)
    knobs = {"RELIABLE_PERIODIC": "1", "RELIABLE_PERIOD": "2", "RELIABLE_LEADER_LEASE": "1.5"}
    store.env.update(knobs)
    tasks = store.tasks()
    consumers = [start_consumer(store, "-w", "1", name=f"p{i}") for i in range(3)]

    def ticks() -> list[list[str]]:
        return store.event_rows("tick-enqueued")

    wait_until(lambda: len(ticks()) >= 3, 60, "three periodic ticks")
    leader_pid = int(ticks()[-1][0])
    leader = next(c for c in consumers if c.pid == leader_pid)
    kill_consumer(leader)
    killed_at = time.time()
    wait_until(
        lambda: any(float(row[1]) * 2 > killed_at + 2 for row in ticks()), 60, "ticks after kill"
    )
    wait_until(lambda: len({row[1] for row in ticks()}) >= 6, 60, "six ticks in all")
    per_tick = collections.Counter(row[1] for row in ticks())
    assert all(n == 1 for n in per_tick.values()), per_tick  # exactly once per tick
    after = [row for row in ticks() if float(row[1]) * 2 > killed_at + 2]
    assert after and all(int(row[0]) != leader_pid for row in after)
    for consumer in consumers:
        if consumer is not leader:
            consumer.send(signal.SIGINT)
            consumer.wait_exit(30)
    tasks.huey.flush()


@pytest.mark.parametrize("backend", ["redis", "sqlite", "postgres"])
def test_scheduler_killed_while_moving_due_tasks_loses_nothing(
    backend: str, store_for: Any, start_consumer: Any
) -> None:
    """SIGKILL between taking due tasks out of the schedule and queueing them."""
    store = store_for(backend)
    tasks = store.tasks()
    for i in range(20):
        tasks.job.schedule(args=(i,), delay=1)
    dying = start_consumer(store, "-w", "2", name="dying", RELIABLE_DIE_IN_MOVE="1")
    assert dying.proc.wait(60) == -signal.SIGKILL
    assert [int(row[0]) for row in store.event_rows("schedule-taken")] == [20]
    # In the window: out of the schedule, not yet queued - held by leases only.
    assert tasks.huey.scheduled_count() == 0 and tasks.huey.pending_count() == 0
    consumer = start_consumer(store, "-w", "2")
    wait_until(lambda: len(done_counts(store)) >= 20, 60, "every scheduled job done")
    consumer.send(signal.SIGINT)
    consumer.wait_exit(30)
    counts = done_counts(store)
    assert sorted(counts) == list(range(20)) and set(counts.values()) == {1}
    assert tasks.huey.dead_letter_count() == 0
    tasks.huey.flush()
