"""One task's life in a worker: prepare (eta, revoked, expired) -> run (hooks, body,
outcome) -> finish (store result or error, signals, retry, pipeline, chord).

``Huey.execute`` delegates here. Every worker environment and immediate mode go through
this single pipeline; environments differ only in the timeout context around the body.
"""

from __future__ import annotations

import copy
import datetime
import logging
import time
from contextlib import AbstractContextManager as ContextManager
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

from huey import signals as S
from huey._delivery import active_buffer
from huey._task import PeriodicTask, Task
from huey.exceptions import (
    RETRYING_EXCEPTIONS,
    CancelExecution,
    RateLimitExceeded,
    RetryTask,
    TaskLockedException,
    TaskTimeout,
)
from huey.utils import SKIPPED, Error, normalize_time

if TYPE_CHECKING:
    from huey.api import Huey

logger = logging.getLogger("huey")


class _Outcome:
    """What running a task body produced."""

    __slots__ = ("value", "exception", "retry_eta", "interrupted")

    def __init__(self) -> None:
        self.value: Any = None
        self.exception: BaseException | None = None
        self.retry_eta: datetime.datetime | None = None
        self.interrupted = False


def execute(huey: Huey, task: Task, timestamp: datetime.datetime | None = None) -> Any:
    """Run ``task`` if it is due, not revoked and not expired; see spec section 5."""
    if timestamp is None:
        timestamp = huey._get_timestamp()
    if not huey.ready_to_run(task, timestamp):
        huey.add_schedule(task)
        return None
    if huey.is_revoked(task, timestamp, False):
        logger.info("Task %s was revoked, not executing", task.id)
        huey._emit(S.SIGNAL_REVOKED, task)
        report_to_chord(huey, task, SKIPPED)
        return None
    if task.expires_resolved and task.expires_resolved < timestamp:
        logger.info("Task %s expired at %s, not executing", task.id, task.expires_resolved)
        huey._emit(S.SIGNAL_EXPIRED, task)
        report_to_chord(huey, task, SKIPPED)
        return None
    logger.debug("Executing %s", task)
    huey._emit(S.SIGNAL_EXECUTING, task)
    return _execute(huey, task)


def _execute(huey: Huey, task: Task) -> Any:
    if not _run_pre_execute_hooks(huey, task):
        return None
    outcome = _run_body(huey, task)
    if outcome.interrupted:
        return None
    if not isinstance(task, PeriodicTask):
        # Clear a revocation made while the task was running.
        _delete(huey, task.revoke_id)
    if outcome.exception is None:
        _finish_success(huey, task, outcome.value)
        return outcome.value
    _finish_failure(huey, task, outcome)
    return None


def _run_pre_execute_hooks(huey: Huey, task: Task) -> bool:
    """Run the pre-execute hooks; False when one cancelled the task."""
    for name, hook in list(huey._pre_execute.items()):
        try:
            hook(task)
        except CancelExecution:
            logger.warning("Task %s cancelled by pre-execute hook %s", task.id, name)
            huey._emit(S.SIGNAL_CANCELED, task)
            report_to_chord(huey, task, SKIPPED)
            return False
        except Exception:
            logger.exception("Unhandled exception in pre-execute hook %s (task %s)", name, task.id)
    return True


def _timeout_context(huey: Huey, task: Task) -> ContextManager[Any]:
    handler = huey._timeout_handler
    if task.timeout and handler is not None:
        return handler(task.timeout)
    return nullcontext()


def _run_body(huey: Huey, task: Task) -> _Outcome:
    """Run the task body and classify its outcome (spec section 5, step 4)."""
    outcome = _Outcome()
    if task.timeout:
        task._deadline = time.monotonic() + task.timeout
    start = time.perf_counter()
    huey._tasks_in_flight.add(task)
    outer = getattr(huey._local, "current_task", None)  # immediate mode nests executions
    huey._local.current_task = task  # lets a TaskLock record its owner
    try:
        with _timeout_context(huey, task):
            outcome.value = task.execute()
    except KeyboardInterrupt:
        logger.warning("Task %s interrupted", task.id)
        huey._emit(S.SIGNAL_INTERRUPTED, task)
        outcome.interrupted = True
        task._interrupted = True  # the worker gives it back to the queue, unacknowledged
    except Exception as exc:
        outcome.exception = exc
        _classify_failure(huey, task, exc, outcome)
    else:
        logger.debug("%s executed in %0.3fs", task, time.perf_counter() - start)
    finally:
        huey._tasks_in_flight.discard(task)
        huey._local.current_task = outer
    return outcome


def _classify_failure(huey: Huey, task: Task, exc: Exception, outcome: _Outcome) -> None:
    if isinstance(exc, TaskTimeout):
        logger.error("Task %s timed out after %ss", task.id, task.timeout)
        huey._emit(S.SIGNAL_TIMEOUT, task)
    elif isinstance(exc, RateLimitExceeded):
        logger.warning("Task %s rate limited: %s", task.id, exc)
        huey._emit(S.SIGNAL_RATE_LIMITED, task)
        if exc.retry:
            task.retries += 1  # the requeue's decrement leaves the count unchanged
        if exc.retry or task.retries:
            outcome.retry_eta = normalize_time(
                delay=task.retry_delay or max(exc.delay, 0), utc=huey.utc
            )
    elif isinstance(exc, TaskLockedException):
        logger.warning("Task %s not run, unable to acquire lock: %s", task.id, exc)
        huey._emit(S.SIGNAL_LOCKED, task)
    elif isinstance(exc, RetryTask):
        logger.info("Task %s raised RetryTask, retrying", task.id)
        task.retries += 1
        if exc.eta is not None:
            outcome.retry_eta = normalize_time(eta=exc.eta, utc=huey.utc)
        elif exc.delay is not None:
            outcome.retry_eta = normalize_time(delay=exc.delay, utc=huey.utc)
    elif isinstance(exc, CancelExecution):
        if exc.retry or (exc.retry is None and task.retries):
            task.retries = max(task.retries, 1)
        else:
            task.retries = 0
        logger.warning("Task %s cancelled", task.id)
        huey._emit(S.SIGNAL_CANCELED, task)
    else:
        logger.exception("Unhandled exception in task %s", task.id)
        huey._emit(S.SIGNAL_ERROR, task, exc)


def _run_post_execute_hooks(
    huey: Huey, task: Task, value: Any, exception: BaseException | None
) -> None:
    for name, hook in list(huey._post_execute.items()):
        try:
            hook(task, value, exception)
        except Exception:
            logger.exception("Unhandled exception in post-execute hook %s (task %s)", name, task.id)


def _finish_success(huey: Huey, task: Task, value: Any) -> None:
    if huey.results and not isinstance(task, PeriodicTask):
        if value is not None or huey.store_none:
            _put_result(huey, task.id, value)
    _flush_for_observers(huey, S.SIGNAL_COMPLETE)
    _run_post_execute_hooks(huey, task, value, None)
    huey._emit(S.SIGNAL_COMPLETE, task)
    if task.on_complete is not None:
        next_task = task.on_complete
        next_task.extend_data(value)
        huey.enqueue(next_task)
    if task.chord_config is not None:
        _contribute(huey, task, value)


def _finish_failure(huey: Huey, task: Task, outcome: _Outcome) -> None:
    exception = outcome.exception
    assert exception is not None
    final = task.retries == 0
    surface = final or (
        huey.store_intermediate_errors and not isinstance(exception, RETRYING_EXCEPTIONS)
    )
    error = None
    if surface:
        error = Error(huey.build_error_result(task, exception))
        if huey.results:
            _put_result(huey, task.id, error)
            if final:
                # Mark downstream stages failed so their handles raise, not block forever.
                stage = task.on_complete
                while stage is not None:
                    _put_result(huey, stage.id, error)
                    stage = stage.on_complete
    _flush_for_observers(huey, None)
    _run_post_execute_hooks(huey, task, None, exception)
    if surface and task.on_error is not None:
        handler = copy.copy(task.on_error)
        handler.kwargs = dict(handler.kwargs)
        handler.extend_data(exception)
        huey.enqueue(handler)
    if final:
        report_to_chord(huey, task, error)
    else:
        logger.info("Task %s will be retried (%s retries left)", task.id, task.retries - 1)
        huey._emit(S.SIGNAL_RETRYING, task)
        requeue_task(huey, task, outcome.retry_eta)


def _put_result(huey: Huey, key: str, value: Any) -> None:
    """Store a result now, or in the running batch's write buffer (one round trip)."""
    buffer = active_buffer(huey)
    if buffer is None:
        huey.put_result(key, value)
    else:
        buffer.put(key, huey.serialize(value), True)


def _delete(huey: Huey, key: str) -> None:
    buffer = active_buffer(huey)
    if buffer is None:
        huey.delete(key)
    else:
        buffer.delete(key)


def _flush_for_observers(huey: Huey, signal: str | None) -> None:
    """Flush buffered results before user code that may read them (post-execute hooks,
    completion receivers) runs, so hooks always see the stored outcome."""
    buffer = active_buffer(huey)
    if buffer is None:
        return
    receivers = huey._signal.receivers
    if huey._post_execute or (signal and (receivers.get(signal) or receivers["any"])):
        buffer.flush()


def requeue_task(huey: Huey, task: Task, eta: datetime.datetime | None = None) -> None:
    """Use up one retry and put the task back: at ``eta``, after its delay, or now."""
    task.retries -= 1
    if eta is not None:
        task.eta = eta
        huey.add_schedule(task)
    elif task.retry_delay:
        task.eta = normalize_time(delay=task.retry_delay, utc=huey.utc)
        if task.retry_backoff:
            task.retry_delay *= task.retry_backoff
        huey.add_schedule(task)
    else:
        huey.enqueue(task)


def report_to_chord(huey: Huey, task: Task, value: Any) -> None:
    """Contribute ``value`` for a member that will not reach its pipeline's tail normally.

    Walks the ``on_complete`` chain to the stage tagged with the chord configuration.
    """
    stage: Task | None = task
    while stage is not None and stage.chord_config is None:
        stage = stage.on_complete
    if stage is not None:
        _contribute(huey, stage, value)


def _contribute(huey: Huey, task: Task, value: Any) -> None:
    """Record a chord member's value; the last distinct member enqueues the callback."""
    cid, size, idx, callback = task.chord_config
    member_key = f"chord:{cid}:{idx}"
    # Count distinct member indexes only, so a member delivered twice is counted once.
    if not huey.put_if_empty(member_key, value):
        logger.info("Chord %s member %s already reported; not counted again", cid, idx)
        return
    counter = f"chord:{cid}"
    if huey.storage.incr(counter) < size:
        return
    huey.storage.delete_counter(counter)
    keys = [f"chord:{cid}:{i}" for i in range(size)]
    stored = huey.storage.peek_many(keys)
    values = [huey.deserialize(stored[key]) if key in stored else None for key in keys]
    for key in keys:
        huey.storage.delete_data(key)
    callback.extend_data((values,))
    huey.enqueue(callback)
