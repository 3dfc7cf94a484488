"""Exceptions raised by huey.

Tree::

    Exception
     +-- HueyException                 generic; unknown task names in the registry
     |    +-- ConfigurationError       bad configuration, missing driver
     |    +-- TaskLockedException      a TaskLock could not be acquired
     |    +-- ResultTimeout            a blocking Result.get() ended without a value
     |    +-- TaskTimeout              a task ran past its ``timeout``
     |    +-- RateLimitExceeded        a RateLimit window is full
     +-- CancelExecution               raised by user code to cancel a task
     +-- RetryTask                     raised by user code to force a retry
     +-- TaskException                 raised when reading an Error result
"""

from __future__ import annotations

import datetime
from typing import Any


class HueyException(Exception):
    """Generic huey error; also raised when a message names a task not in the registry."""


class ConfigurationError(HueyException):
    """Raised at construction time when an option or a driver is missing or invalid."""


class TaskLockedException(HueyException):
    """Raised when a :class:`~huey.api.TaskLock` cannot be acquired."""


class ResultTimeout(HueyException):
    """Raised when a blocking ``Result.get()`` ends without a value."""


class TaskTimeout(HueyException):
    """Raised when a task runs past its ``timeout`` (hard or cooperative check)."""


class RateLimitExceeded(HueyException):
    """Raised when a :class:`~huey.api.RateLimit` window is full.

    :param key: the rate limit's name.
    :param delay: seconds until the current window ends.
    :param retry: whether the worker should retry the task at the next window.
    """

    def __init__(self, key: str, delay: float, retry: bool = True) -> None:
        self.key = key
        self.delay = delay
        self.retry = retry
        super().__init__(key, delay, retry)

    def __str__(self) -> str:
        msg = f'Rate limit exceeded on "{self.key}"'
        if self.retry:
            msg += f", retry in {self.delay:.1f}s"
        return msg


class CancelExecution(Exception):
    """Raised by user code (a pre-execute hook or a task) to cancel a task.

    :param msg: optional message.
    :param retry: ``True`` forces a retry, ``False`` forbids one, ``None`` retries only when
        the task has retries left.
    """

    def __init__(self, msg: str | None = None, retry: bool | None = None) -> None:
        self.retry = retry
        if msg is None:
            super().__init__()
        else:
            super().__init__(msg)


class RetryTask(Exception):
    """Raised by user code to force a retry, without using up the task's retries.

    :param msg: optional message.
    :param eta: when to retry (overrides ``retry_delay`` for this attempt).
    :param delay: seconds (or a timedelta) until the retry.
    """

    def __init__(
        self,
        msg: str | None = None,
        eta: datetime.datetime | None = None,
        delay: float | datetime.timedelta | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        self.eta = eta
        self.delay = delay
        if msg is None:
            super().__init__(*args)
        else:
            super().__init__(msg, *args)


class TaskException(Exception):
    """Raised when reading a result that is a stored task failure.

    ``metadata`` is the dict built by ``Huey.build_error_result`` (keys ``error``,
    ``retries``, ``traceback``, ``task_id``).
    """

    def __init__(self, metadata: dict[str, Any] | None = None, *args: Any) -> None:
        self.metadata = metadata or {}
        super().__init__(*args)

    def __str__(self) -> str:
        return str(self.metadata.get("error") or "unknown error")


RETRYING_EXCEPTIONS = (RetryTask, RateLimitExceeded, TaskLockedException)

__all__ = [
    "HueyException",
    "ConfigurationError",
    "TaskLockedException",
    "ResultTimeout",
    "TaskTimeout",
    "RateLimitExceeded",
    "CancelExecution",
    "RetryTask",
    "TaskException",
    "RETRYING_EXCEPTIONS",
]
