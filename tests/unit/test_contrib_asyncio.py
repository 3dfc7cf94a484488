"""huey.contrib.asyncio: awaiting results from an event loop."""

from __future__ import annotations

import asyncio
import threading

import pytest

import huey
from huey.contrib.asyncio import aget_result, aget_result_group
from huey.exceptions import ResultTimeout, TaskException


@pytest.fixture
def h() -> huey.MemoryHuey:
    return huey.MemoryHuey("aio", store_none=True)


def run_later(h: huey.Huey, delay: float) -> threading.Timer:
    """Play the consumer: execute every queued task after ``delay`` seconds."""

    def drain() -> None:
        while (task := h.dequeue()) is not None:
            h.execute(task)

    timer = threading.Timer(delay, drain)
    timer.start()
    return timer


def test_aget_result_waits_without_blocking_the_loop(h: huey.MemoryHuey) -> None:
    @h.task()
    def add(a: int, b: int) -> int:
        return a + b

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def main() -> int:
        background = asyncio.ensure_future(ticker())
        value = await aget_result(add(2, 3))
        background.cancel()
        return value  # type: ignore[no-any-return]

    run_later(h, 0.3)
    assert asyncio.run(main()) == 5
    assert ticks > 5  # the loop kept running while we waited


def test_aget_result_returns_a_stored_none_and_raises_errors(h: huey.MemoryHuey) -> None:
    @h.task()
    def nothing() -> None:
        return None

    @h.task()
    def boom() -> None:
        raise ValueError("boom")

    none_result, error_result = nothing(), boom()
    run_later(h, 0.05).join()
    assert asyncio.run(aget_result(none_result)) is None
    with pytest.raises(TaskException, match="boom"):
        asyncio.run(aget_result(error_result))


def test_aget_result_timeout(h: huey.MemoryHuey) -> None:
    @h.task()
    def never() -> None:
        pass

    with pytest.raises(ResultTimeout):
        asyncio.run(aget_result(never(), timeout=0.2))


def test_aget_result_group(h: huey.MemoryHuey) -> None:
    @h.task()
    def square(x: int) -> int:
        return x * x

    group = square.map(range(4))
    assert group is not None
    run_later(h, 0.1)
    assert asyncio.run(aget_result_group(group)) == [0, 1, 4, 9]


def test_aget_result_group_failure_cancels_the_rest(h: huey.MemoryHuey) -> None:
    @h.task()
    def fail() -> None:
        raise RuntimeError("member failed")

    @h.task()
    def never() -> None:
        pass

    failing = fail()
    pending = never()
    h.execute(h.dequeue())  # type: ignore[arg-type]
    group = huey.api.ResultGroup([failing, pending])
    with pytest.raises(TaskException, match="member failed"):
        asyncio.run(aget_result_group(group, timeout=30))
