"""The single server waiter of a storage object (``huey.storage._wakeup``), without a server."""

from __future__ import annotations

import threading
import time

from huey.storage._wakeup import WaitGate, take_waiting

WAIT = 10.0  # generous bound on waits that should end at once


class FakeServer:
    """A queue whose blocking wait counts how many threads are inside it at once."""

    def __init__(self) -> None:
        self.items: list[int] = []
        self.cond = threading.Condition()
        self.inside = 0
        self.most_inside = 0
        self.waits = 0
        self.takes_now = 0

    def put(self, item: int) -> None:
        with self.cond:
            self.items.append(item)
            self.cond.notify_all()

    def take_now(self) -> list[int]:
        with self.cond:
            self.takes_now += 1
            return [self.items.pop(0)] if self.items else []

    def wait_and_take(self, seconds: float) -> list[int]:
        with self.cond:
            self.waits += 1
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
            try:
                self.cond.wait_for(lambda: self.items, timeout=seconds)
                return [self.items.pop(0)] if self.items else []
            finally:
                self.inside -= 1


def test_gate_admits_one_thread_at_a_time() -> None:
    gate = WaitGate()
    assert gate.enter(0)
    assert not gate.enter(0.01)
    gate.leave()
    assert gate.enter(0)


def test_leave_hands_the_wait_to_a_sleeping_thread() -> None:
    gate = WaitGate()
    assert gate.enter(0)
    entered = threading.Event()

    def other() -> None:
        if gate.enter(WAIT):
            entered.set()

    thread = threading.Thread(target=other)
    thread.start()
    time.sleep(0.05)
    assert not entered.is_set()
    gate.leave()
    thread.join(WAIT)
    assert entered.is_set()


def test_gate_is_per_owner_and_per_process() -> None:
    class Owner:
        pass

    first, second = Owner(), Owner()
    assert WaitGate.of(first) is WaitGate.of(first)
    assert WaitGate.of(first) is not WaitGate.of(second)
    # A forked child sees another pid and gets a gate of its own.
    pid, gate = first.__dict__["_hueyng_wait_gate"]
    first.__dict__["_hueyng_wait_gate"] = (pid + 1, gate)
    assert WaitGate.of(first) is not gate


def test_take_waiting_returns_work_found_at_once() -> None:
    server = FakeServer()
    server.put(1)
    assert take_waiting(server, 1, server.take_now, server.wait_and_take) == [1]


def test_take_waiting_times_out_empty() -> None:
    server = FakeServer()
    start = time.monotonic()
    assert take_waiting(server, 0.1, server.take_now, server.wait_and_take) == []
    assert time.monotonic() - start < WAIT


def test_idle_threads_wait_on_the_server_one_at_a_time() -> None:
    server = FakeServer()
    results: list[list[int]] = []
    lock = threading.Lock()

    def worker() -> None:
        taken = take_waiting(server, 2, server.take_now, server.wait_and_take)
        with lock:
            results.append(taken)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.1)  # all four idle
    for item in range(4):
        server.put(item)
    for thread in threads:
        thread.join(WAIT)
    assert server.most_inside == 1
    assert sorted(item for taken in results for item in taken) == [0, 1, 2, 3]


def test_waiter_that_comes_back_empty_keeps_waiting_until_the_deadline() -> None:
    server = FakeServer()
    calls = []

    def wait_and_take(seconds: float) -> list[int]:
        calls.append(seconds)
        if len(calls) == 1:
            return []  # e.g. another consumer was quicker
        return [7]

    assert take_waiting(server, 5, server.take_now, wait_and_take) == [7]
    assert len(calls) == 2 and calls[1] <= calls[0]


def test_busy_gate_means_a_take_without_waiting_first() -> None:
    server = FakeServer()
    gate = WaitGate.of(server)
    assert gate.enter(0)  # another thread is the waiter
    try:
        server.put(3)
        assert take_waiting(server, 0.1, server.take_now, server.wait_and_take) == [3]
        assert server.takes_now == 1 and server.waits == 0
    finally:
        gate.leave()


def test_thread_that_drained_the_queue_queues_for_the_gate_without_looking() -> None:
    server = FakeServer()

    def drained(taken: list[int]) -> bool:
        return len(taken) < 2  # a take of one asked for two

    server.put(1)
    assert take_waiting(server, 1, server.take_now, server.wait_and_take, drained) == [1]
    gate = WaitGate.of(server)
    assert gate.enter(0)  # another thread is the waiter now
    later = threading.Timer(0.1, gate.leave)  # ... and hands the wait over
    later.start()
    server.put(2)
    assert take_waiting(server, 5, server.take_now, server.wait_and_take, drained) == [2]
    later.join(WAIT)
    assert server.takes_now == 0 and server.waits == 2


def test_waiter_that_lost_its_connection_ends_the_wait() -> None:
    server = FakeServer()
    start = time.monotonic()
    assert take_waiting(server, WAIT, server.take_now, lambda seconds: None) == []
    assert time.monotonic() - start < WAIT / 2
    assert WaitGate.of(server).enter(0)  # the gate was left
