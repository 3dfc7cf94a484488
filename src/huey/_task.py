"""Task classes, the ``TaskWrapper`` returned by ``@huey.task()``, and ``group`` / ``chord``."""

from __future__ import annotations

import datetime
import inspect
import time
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from huey.exceptions import ConfigurationError, TaskTimeout
from huey.utils import normalize_expire_time, normalize_time

if TYPE_CHECKING:
    from typing_extensions import ParamSpec

    from huey._result import Result, ResultGroup
    from huey.api import Huey

    P = ParamSpec("P")
else:
    P = TypeVar("P")

R = TypeVar("R")


class Task:
    """One unit of work: a task class plus its arguments and options.

    The arguments are in the registry's positional order (the wire order of ``Message``).
    Options left as None take the class defaults set by the ``@huey.task()`` decorator.
    """

    default_expires: Any = None
    default_priority: float | None = None
    default_retries: int = 0
    default_retry_delay: float = 0
    default_retry_backoff: float = 0
    default_timeout: float | None = None
    #: Whether the task receives itself as the ``task`` keyword argument.
    context = False
    #: Set when a run was interrupted (KeyboardInterrupt), so the worker requeues it.
    _interrupted = False

    def __init__(
        self,
        args: Iterable[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        id: str | None = None,
        eta: datetime.datetime | None = None,
        retries: int | None = None,
        retry_delay: float | None = None,
        priority: float | None = None,
        expires: Any = None,
        on_complete: Task | None = None,
        on_error: Task | None = None,
        expires_resolved: datetime.datetime | None = None,
        timeout: float | None = None,
        chord_config: Any = None,
        retry_backoff: float | None = None,
    ) -> None:
        self.name = type(self).__name__
        self.args: tuple[Any, ...] = () if args is None else tuple(args)
        self.kwargs: dict[str, Any] = {} if kwargs is None else kwargs
        self.id: str = id or self.create_id()
        self.revoke_id = f"r:{self.id}"
        self.eta = eta
        self.retries: int = self.default_retries if retries is None else retries
        self.retry_delay: float = self.default_retry_delay if retry_delay is None else retry_delay
        self.retry_backoff: float = (
            self.default_retry_backoff if retry_backoff is None else retry_backoff
        )
        self.priority = self.default_priority if priority is None else priority
        self.expires = self.default_expires if expires is None else expires
        self.expires_resolved = expires_resolved
        self.timeout = self.default_timeout if timeout is None else timeout
        self.on_complete = on_complete
        self.on_error = on_error
        self.chord_config = chord_config
        self._deadline: float | None = None

    @property
    def data(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """``(args, kwargs)``."""
        return self.args, self.kwargs

    def create_id(self) -> str:
        """Return a new task id (a uuid4 string); override to change id generation."""
        return str(uuid.uuid4())

    def resolve_expires(self, utc: bool = True) -> datetime.datetime | None:
        """Resolve ``expires`` to an absolute time (relative values count from now)."""
        if self.expires:
            self.expires_resolved = normalize_expire_time(self.expires, utc)
        return self.expires_resolved

    @property
    def time_remaining(self) -> float:
        """Seconds left before the task's timeout, or ``inf`` when it has none."""
        if self._deadline is None:
            return float("inf")
        return self._deadline - time.monotonic()

    @property
    def is_timed_out(self) -> bool:
        """True once the task's deadline has passed (False when it has no timeout)."""
        return self._deadline is not None and time.monotonic() >= self._deadline

    def check_timeout(self) -> None:
        """Raise ``TaskTimeout`` if the task ran past its timeout (cooperative check)."""
        if self.is_timed_out:
            raise TaskTimeout(f"timeout {self.timeout}s")

    def extend_data(self, data: Any) -> None:
        """Pass a previous stage's value on: a tuple extends args, a dict adds kwargs
        (explicit keywords win), None or () adds nothing, anything else is one more arg."""
        if data is None:
            return
        if isinstance(data, tuple):
            self.args = self.args + data
        elif isinstance(data, dict):
            for key, value in data.items():
                self.kwargs.setdefault(key, value)
        else:
            self.args = (*self.args, data)

    def then(self, task: Any, *args: Any, **kwargs: Any) -> Task:
        """Append ``task`` to the end of this pipeline; return the head (this task)."""
        if self.on_complete is not None:
            self.on_complete.then(task, *args, **kwargs)
        else:
            self.on_complete = _as_task(task, args, kwargs)
        return self

    def error(self, task: Any, *args: Any, **kwargs: Any) -> Task:
        """Attach an error handler, called with the exception appended to its arguments."""
        handler = _as_task(task, args, kwargs)
        if self.on_error is not None:
            self.on_error.error(handler)
        else:
            self.on_error = handler
        return self

    def execute(self) -> Any:
        """Run the task body; generated subclasses call the decorated function."""
        raise NotImplementedError

    def __repr__(self) -> str:
        rep = f"{type(self).__module__}.{self.name}: {self.id}"
        if self.eta:
            rep += f" @{self.eta}"
        if self.expires:
            rep += f" exp={self.expires}"
            if self.expires_resolved and self.expires_resolved != self.expires:
                rep += f" ({self.expires_resolved})"
        if self.priority:
            rep += f" p={self.priority}"
        if self.retries:
            rep += f" {self.retries} retries"
        if self.timeout:
            rep += f" timeout={self.timeout}"
        if self.on_complete:
            rep += f" -> {self.on_complete!r}"
        if self.on_error:
            rep += f", on error {self.on_error!r}"
        if self.chord_config:
            rep += f", chord {self.chord_config[0]}"
        return rep

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.id == other.id and self.eta == other.eta

    def __hash__(self) -> int:
        return hash(self.id)


class PeriodicTask(Task):
    """A task the scheduler enqueues whenever ``validate_datetime(now)`` is true.

    Its return values are never stored and its revocation flag is not cleared after a run.
    """

    _huey_periodic = True

    def validate_datetime(self, timestamp: datetime.datetime) -> bool:
        """Whether the task should run at ``timestamp``; the decorator installs the rule."""
        return False


def _as_task(task: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Task:
    """A Task from a TaskWrapper (``.s(*args, **kwargs)``) or a Task (args added)."""
    if isinstance(task, Task):
        if args:
            task.extend_data(args)
        if kwargs:
            task.extend_data(kwargs)
        return task
    if isinstance(task, TaskWrapper):
        return task.s(*args, **kwargs)
    raise TypeError(f"expected a task or a Task instance, got {task!r}")


_RESERVED_S_KWARGS = (
    "retries",
    "retry_delay",
    "retry_backoff",
    "priority",
    "expires",
    "timeout",
    "id",
)


class TaskWrapper(Generic[P, R]):
    """What ``@huey.task()`` returns: call it to enqueue, ``.s()`` to build a Task.

    :param huey: the owning Huey instance.
    :param func: the task function.
    :param context: pass the Task instance to ``func`` as the ``task`` keyword argument.
    :param name: registry name (defaults to ``func.__name__``).
    :param task_base: base class of the generated Task class.
    :param settings: class attributes of the generated Task class (``default_retries``...).
    """

    task_base: type[Task] = Task

    def __init__(
        self,
        huey: Huey,
        func: Callable[P, R],
        context: bool = False,
        name: str | None = None,
        task_base: type[Task] | None = None,
        **settings: Any,
    ) -> None:
        if inspect.iscoroutinefunction(func):
            raise ConfigurationError(
                f"{func.__qualname__} is an async def function; huey tasks must be "
                "synchronous functions"
            )
        if not callable(func):
            raise TypeError(f"a task must wrap a callable, got {func!r}")
        self.huey = huey
        self.func = func
        self.context = context
        self.name = name
        self.settings = settings
        if task_base is not None:
            self.task_base = task_base
        self.task_class = self.create_task(func, context, name, **settings)
        self.huey._registry.register(self.task_class)
        self.__doc__ = func.__doc__

    def create_task(
        self,
        func: Callable[..., Any],
        context: bool = False,
        name: str | None = None,
        **settings: Any,
    ) -> type[Task]:
        """Build the Task subclass that runs ``func``."""

        def execute(task: Task) -> Any:
            args, kwargs = task.data
            if task.context:
                kwargs = dict(kwargs)
                kwargs["task"] = task
            return func(*args, **kwargs)

        attrs: dict[str, Any] = {
            "context": context,
            "execute": execute,
            "__module__": func.__module__,
            "__doc__": func.__doc__,
        }
        attrs.update(settings)
        return type(name or func.__name__, (self.task_base,), attrs)

    @property
    def retries(self) -> int:
        """The task class's default number of retries."""
        return self.task_class.default_retries

    @property
    def retry_delay(self) -> float:
        """The task class's default retry delay in seconds."""
        return self.task_class.default_retry_delay

    def unregister(self) -> bool:
        """Remove the task from the registry; return whether it was registered."""
        return self.huey._registry.unregister(self.task_class)

    def is_revoked(self, timestamp: datetime.datetime | None = None, peek: bool = True) -> bool:
        """Whether every instance of this task is revoked."""
        return self.huey.is_revoked(self, timestamp, peek)

    def revoke(self, revoke_until: Any = None, revoke_once: bool = False) -> None:
        """Revoke every instance of this task (until a time, or once)."""
        self.huey.revoke_all(self.task_class, revoke_until, revoke_once)

    def restore(self) -> bool:
        """Undo a class-level revocation; return whether one existed."""
        return self.huey.restore_all(self.task_class)

    def schedule(
        self,
        args: Any = None,
        kwargs: dict[str, Any] | None = None,
        eta: datetime.datetime | None = None,
        delay: float | datetime.timedelta | None = None,
        priority: float | None = None,
        retries: int | None = None,
        retry_delay: float | None = None,
        retry_backoff: float | None = None,
        expires: Any = None,
        timeout: float | None = None,
        id: str | None = None,
    ) -> Any:
        """Enqueue the task to run at ``eta`` or after ``delay``.

        Shorthand: ``schedule(30)`` or ``schedule(timedelta)`` is a delay and
        ``schedule(datetime)`` an eta.
        """
        if eta is None and delay is None:
            if isinstance(args, (int, float, datetime.timedelta)) and not isinstance(args, bool):
                delay, args = args, None
            elif isinstance(args, datetime.datetime):
                eta, args = args, None
            else:
                raise ValueError("schedule() missing required eta= or delay=")
        if kwargs is not None and not isinstance(kwargs, dict):
            raise ValueError(f"schedule() kwargs must be a dict, got {type(kwargs).__name__}")
        task = self.task_class(
            args,
            kwargs,
            id=id,
            eta=normalize_time(eta, delay, self.huey.utc),
            retries=retries,
            retry_delay=retry_delay,
            priority=priority,
            expires=expires,
            timeout=timeout,
            retry_backoff=retry_backoff,
        )
        return self.huey.enqueue(task)

    def map(self, it: Iterable[Any]) -> ResultGroup | None:
        """Enqueue one task per item (a tuple item is unpacked into the arguments)."""
        tasks = [self.s(*item) if isinstance(item, tuple) else self.s(item) for item in it]
        return self.huey.enqueue_many(tasks)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Result[R]:
        """Enqueue the task; return a handle on its result (None when results are off)."""
        return self.huey.enqueue(self.s(*args, **kwargs))  # type: ignore[no-any-return]

    def call_local(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call the function directly, in this process, without a queue."""
        return self.func(*args, **kwargs)

    def s(self, *args: Any, **kwargs: Any) -> Task:
        """Build a Task without enqueueing it. Reserved keywords: eta, delay, retries,
        retry_delay, retry_backoff, priority, expires, timeout, id."""
        eta = kwargs.pop("eta", None)
        delay = kwargs.pop("delay", None)
        if eta is not None or delay is not None:
            eta = normalize_time(eta, delay, self.huey.utc)
        options = {key: kwargs.pop(key, None) for key in _RESERVED_S_KWARGS}
        return self.task_class(args, kwargs, eta=eta, **options)

    def __repr__(self) -> str:
        return f"<TaskWrapper {self.huey._registry.task_to_string(self.task_class)}>"


class group:
    """Several tasks enqueued together; ``.then(callback)`` turns it into a chord."""

    def __init__(self, tasks: Iterable[Any]) -> None:
        self.tasks = list(tasks)

    def then(self, task: Any, *args: Any, **kwargs: Any) -> chord:
        """A chord of this group's tasks with ``task`` as the callback."""
        return chord(self.tasks, _as_task(task, args, kwargs))

    def error(self, *args: Any, **kwargs: Any) -> group:
        """Attach the same error handler to every member."""
        for task in self.tasks:
            task.error(*args, **kwargs)
        return self


class chord:
    """Tasks run in parallel; the callback receives the list of their results."""

    def __init__(self, tasks: Iterable[Any], callback: Any) -> None:
        self.tasks = list(tasks)
        for member in self.tasks:
            if isinstance(member, group):
                raise ValueError(
                    "a group cannot be a chord member; turn it into a chord with .then() first"
                )
        self.callback: Task = _as_task(callback, (), {})

    def then(self, task: Any, *args: Any, **kwargs: Any) -> chord:
        """Chain ``task`` after the callback."""
        self.callback.then(task, *args, **kwargs)
        return self

    def error(self, task: Any, *args: Any, **kwargs: Any) -> chord:
        """Attach an error handler to the callback."""
        self.callback.error(task, *args, **kwargs)
        return self
