"""Exception classes of ``huey.exceptions`` (spec §10)."""

from __future__ import annotations

import datetime
import pickle

import pytest

from huey import exceptions as exc
from huey.exceptions import (
    RETRYING_EXCEPTIONS,
    CancelExecution,
    ConfigurationError,
    HueyException,
    RateLimitExceeded,
    ResultTimeout,
    RetryTask,
    TaskException,
    TaskLockedException,
    TaskTimeout,
)


def test_huey_exception_is_an_exception() -> None:
    assert issubclass(HueyException, Exception)


@pytest.mark.parametrize(
    "cls",
    [ConfigurationError, TaskLockedException, ResultTimeout, TaskTimeout, RateLimitExceeded],
)
def test_huey_exception_subclasses(cls: type[Exception]) -> None:
    assert issubclass(cls, HueyException)


@pytest.mark.parametrize("cls", [CancelExecution, RetryTask, TaskException])
def test_user_facing_exceptions_derive_from_exception(cls: type[Exception]) -> None:
    assert issubclass(cls, Exception)


def test_cancel_execution_is_not_a_huey_exception() -> None:
    # §10: CancelExecution derives from Exception directly, not from HueyException.
    assert not issubclass(CancelExecution, HueyException)


@pytest.mark.parametrize("cls", [TaskLockedException, ResultTimeout, TaskTimeout])
def test_message_exceptions_keep_their_message(cls: type[Exception]) -> None:
    assert str(cls("some message")) == "some message"


def test_rate_limit_exceeded_attributes_and_default_retry() -> None:
    err = RateLimitExceeded("api", 1.5)
    assert err.key == "api"
    assert err.delay == 1.5
    assert err.retry is True
    err2 = RateLimitExceeded("api", 2, retry=False)
    assert err2.retry is False


def test_rate_limit_exceeded_str_with_retry() -> None:
    assert str(RateLimitExceeded("api", 1.5)) == 'Rate limit exceeded on "api", retry in 1.5s'


def test_rate_limit_exceeded_str_without_retry() -> None:
    text = str(RateLimitExceeded("api", 1.5, retry=False))
    assert text == 'Rate limit exceeded on "api"'
    assert "retry in" not in text


def test_cancel_execution_defaults() -> None:
    err = CancelExecution()
    assert err.retry is None


def test_cancel_execution_msg_and_retry_keyword() -> None:
    err = CancelExecution("stop it", retry=True)
    assert err.retry is True
    assert str(err) == "stop it"
    assert CancelExecution(retry=False).retry is False


def test_cancel_execution_first_positional_is_the_message() -> None:
    # [3.5+] (msg=None, retry=None): the first positional argument is the message now.
    err = CancelExecution("just a message")
    assert err.retry is None


def test_retry_task_defaults() -> None:
    err = RetryTask()
    assert err.eta is None
    assert err.delay is None


def test_retry_task_attributes() -> None:
    eta = datetime.datetime(2030, 1, 1, 12, 0)
    err = RetryTask("again", eta=eta)
    assert err.eta == eta
    assert err.delay is None
    assert str(err) == "again"
    err2 = RetryTask(delay=10)
    assert err2.delay == 10
    assert err2.eta is None
    err3 = RetryTask("m", None, 5)
    assert err3.delay == 5


def test_task_exception_defaults() -> None:
    err = TaskException()
    assert err.metadata == {}
    assert str(err) == "unknown error"


def test_task_exception_uses_metadata_error() -> None:
    meta = {"error": "ValueError('boom')", "retries": 0, "traceback": "", "task_id": "x"}
    err = TaskException(meta)
    assert err.metadata == meta
    assert str(err) == "ValueError('boom')"


def test_task_exception_metadata_without_error_key() -> None:
    assert str(TaskException({"retries": 1})) == "unknown error"


def test_retrying_exceptions_tuple() -> None:
    assert RETRYING_EXCEPTIONS == (RetryTask, RateLimitExceeded, TaskLockedException)
    assert exc.RETRYING_EXCEPTIONS is RETRYING_EXCEPTIONS


@pytest.mark.parametrize(
    "error",
    [
        RateLimitExceeded("k", 3.0, retry=False),
        CancelExecution("m", retry=True),
        RetryTask("m", delay=5),
        TaskException({"error": "x"}),
        TaskLockedException("unable to acquire lock l"),
        TaskTimeout("timeout 1s"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_exceptions_survive_pickling(error: Exception) -> None:
    # An exception is appended to the on_error handler's args and serialized with the
    # handler (§5 step 7.5), so every huey exception must round-trip through pickle.
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is type(error)
    assert str(clone) == str(error)
    for attr in ("key", "delay", "retry", "eta", "metadata"):
        if hasattr(error, attr):
            assert getattr(clone, attr) == getattr(error, attr)
