"""Await task results from asyncio code (spec section 18).

Tasks themselves stay synchronous; only waiting on their results is asynchronous.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from huey.api import Result, ResultGroup
from huey.constants import EmptyData
from huey.exceptions import ResultTimeout


async def aget_result(
    result: Result[Any],
    backoff: float = 1.15,
    max_delay: float = 1.0,
    preserve: bool = False,
    timeout: float | None = None,
) -> Any:
    """Wait for ``result`` without blocking the event loop.

    Polls with a delay starting at 0.1 s, multiplied by ``backoff`` up to ``max_delay``.

    :raises TaskException: the task failed.
    :raises ResultTimeout: ``timeout`` seconds passed without a value.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.1
    while True:
        result.get_raw_result(preserve=preserve)  # caches the value on the handle when found
        if result._result is not EmptyData:
            return result.get(preserve=preserve)
        if deadline is not None and time.monotonic() >= deadline:
            raise ResultTimeout("timed out waiting for result")
        sleep = delay if deadline is None else min(delay, max(deadline - time.monotonic(), 0))
        await asyncio.sleep(sleep)
        delay = min(delay * backoff, max_delay)


async def aget_result_group(rg: ResultGroup, *args: Any, **kwargs: Any) -> list[Any]:
    """Wait for every result of a group; if one fails, cancel the others and re-raise."""
    tasks = [asyncio.ensure_future(aget_result(result, *args, **kwargs)) for result in rg]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        raise
