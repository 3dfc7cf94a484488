"""The ``Huey`` class, its storage presets, and the names upstream's ``huey.api`` exposes."""

from __future__ import annotations

import datetime
import functools
import logging
import pickle
import re
import threading
import traceback
import warnings
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager as ContextManager
from typing import Any, TypeVar

from huey import _execution
from huey import signals as S
from huey._crontab import crontab
from huey._dead_letters import DeadLettersMixin
from huey._hooks import HooksMixin
from huey._locks import RateLimit, TaskLock
from huey._result import ChordResult, Result, ResultGroup
from huey._revocation import RevocationMixin
from huey._task import PeriodicTask, Task, TaskWrapper, chord, group
from huey.constants import EmptyData
from huey.exceptions import ConfigurationError, HueyException, TaskException
from huey.registry import Registry
from huey.serializer import Serializer
from huey.storage import (
    BlackHoleStorage,
    CySqliteStorage,
    FileStorage,
    MemoryStorage,
    PostgresStorage,
    PriorityRedisExpireStorage,
    PriorityRedisStorage,
    RedisExpireStorage,
    RedisStorage,
    SqliteStorage,
)
from huey.storage._base import BaseStorage
from huey.utils import Error, normalize_time, utcnow

logger = logging.getLogger("huey")

dash_re = re.compile(r"^(\d+)-(\d+)(?:/(\d+))?$")
every_re = re.compile(r"^\*/(\d+)$")

F = TypeVar("F", bound=Callable[..., Any])
Hook = Callable[..., Any]


def _check_number(option: str, value: Any, *, allow_none: bool = True, minimum: float = 0) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ConfigurationError(
            f"task option {option}={value!r} is invalid: expected a number >= {minimum}"
        )


def _check_task_options(retries: Any, retry_delay: Any, retry_backoff: Any, timeout: Any) -> None:
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ConfigurationError(
            f"task option retries={retries!r} is invalid: expected an integer >= 0"
        )
    _check_number("retry_delay", retry_delay, allow_none=False)
    _check_number("retry_backoff", retry_backoff, allow_none=False)
    _check_number("timeout", timeout)


class Huey(HooksMixin, RevocationMixin, DeadLettersMixin):
    """A task queue: decorate functions with :meth:`task`, call them to enqueue, and run a
    consumer (``huey_consumer module.huey``) to execute them.

    :param name: queue namespace; storages prefix keys and rows with it.
    :param results: store task return values.
    :param store_none: also store ``None`` return values.
    :param utc: use naive UTC timestamps (naive datetimes given by users are local time).
    :param immediate: run tasks synchronously inside ``enqueue`` (tests, development).
    :param serializer: a :class:`~huey.serializer.Serializer`; default pickle.
    :param compression: gzip-compress serialized data.
    :param use_zlib: compress with zlib instead of gzip.
    :param immediate_use_memory: in immediate mode use a fresh in-memory storage.
    :param storage_class: storage class (overrides the class attribute).
    :param store_intermediate_errors: store errors of attempts that will be retried.
    :param at_most_once: remove a task from storage when a worker takes it (upstream's
        behaviour) instead of leasing it until its outcome is stored.
    :param visibility_timeout: seconds a taken task stays leased without a heartbeat before
        it is delivered again (running tasks are renewed by the consumer's heartbeat).
    :param max_deliveries: deliveries allowed to a task without retries whose worker keeps
        dying; then it goes to the dead-letter store.
    :param storage_kwargs: passed to ``storage_class(name, **storage_kwargs)``.
    """

    storage_class: type[BaseStorage] | None = None

    def __init__(
        self,
        name: str = "huey",
        results: bool = True,
        store_none: bool = False,
        utc: bool = True,
        immediate: bool = False,
        serializer: Serializer | None = None,
        compression: bool = False,
        use_zlib: bool = False,
        immediate_use_memory: bool = True,
        storage_class: type[BaseStorage] | None = None,
        store_intermediate_errors: bool = True,
        at_most_once: bool = False,
        visibility_timeout: float = 30,
        max_deliveries: int = 3,
        **storage_kwargs: Any,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"Huey name must be a non-empty string, got {name!r}")
        if storage_class is not None and not (
            isinstance(storage_class, type) and issubclass(storage_class, BaseStorage)
        ):
            raise ConfigurationError(
                f"storage_class must be a BaseStorage subclass, got {storage_class!r}"
            )
        if (
            isinstance(visibility_timeout, bool)
            or not isinstance(visibility_timeout, (int, float))
            or visibility_timeout <= 0
        ):
            raise ConfigurationError(
                f"visibility_timeout must be a positive number of seconds, got "
                f"{visibility_timeout!r}"
            )
        if (
            isinstance(max_deliveries, bool)
            or not isinstance(max_deliveries, int)
            or (max_deliveries < 1)
        ):
            raise ConfigurationError(
                f"max_deliveries must be an integer >= 1, got {max_deliveries!r}"
            )
        self.name = name
        self.results = results
        self.at_most_once = at_most_once
        self.visibility_timeout = float(visibility_timeout)
        self.max_deliveries = max_deliveries
        self.store_none = store_none
        self.store_intermediate_errors = store_intermediate_errors
        self.utc = utc
        self._immediate = immediate
        self.immediate_use_memory = immediate_use_memory
        if serializer is None:
            serializer = Serializer(compression, use_zlib=use_zlib)
        self.serializer = serializer
        if storage_class is not None:
            self.storage_class = storage_class
        self.storage_kwargs = storage_kwargs
        self._locks: set[str] = set()
        self._pre_execute: dict[str, Hook] = {}
        self._post_execute: dict[str, Hook] = {}
        self._startup: dict[str, Hook] = {}
        self._shutdown: dict[str, Hook] = {}
        self._registry = Registry()
        self._signal = S.Signal()
        self._tasks_in_flight: set[Task] = set()
        self._timeout_handler: Callable[[float], ContextManager[Any]] | None = None
        self._stats: Any = None
        # Per-thread engine state: a worker batch's write buffer and prefetched flags.
        self._local = threading.local()
        self.task_wrapper_class = self.get_task_wrapper_class()
        self.storage = self.create_storage()

    # -- storage and immediate mode ------------------------------------------------------
    def create_storage(self) -> BaseStorage:
        """The storage to use: in-memory in immediate mode (by default), else the real one."""
        if self._immediate and self.immediate_use_memory:
            return self.get_immediate_storage()
        return self.get_storage(**self.storage_kwargs)

    def get_immediate_storage(self) -> BaseStorage:
        """A fresh in-memory storage for immediate mode."""
        return MemoryStorage(self.name)

    def get_storage(self, **kwargs: Any) -> BaseStorage:
        """Instantiate ``storage_class(name, **kwargs)`` (Redis when none is set)."""
        storage_class = self.storage_class
        if storage_class is None:
            warnings.warn(
                "Huey has no storage_class; defaulting to RedisStorage. Use RedisHuey, "
                "SqliteHuey, ... or pass storage_class= to choose one.",
                stacklevel=3,
            )
            storage_class = RedisStorage
        return storage_class(self.name, **kwargs)

    @property
    def immediate(self) -> bool:
        """Whether tasks run synchronously inside ``enqueue``."""
        return self._immediate

    @immediate.setter
    def immediate(self, value: bool) -> None:
        if self._immediate != value:
            self._immediate = value
            if self.immediate_use_memory:
                self.storage = self.create_storage()

    def get_task_wrapper_class(self) -> type[TaskWrapper[Any, Any]]:
        """Override hook: the class that ``task()`` builds."""
        return TaskWrapper

    def create_consumer(self, **options: Any) -> Any:
        """A :class:`~huey.consumer.Consumer` for this instance."""
        from huey.consumer import Consumer

        return Consumer(self, **options)

    def __bool__(self) -> bool:
        return True

    def __len__(self) -> int:
        return self.pending_count()

    def _get_timestamp(self) -> datetime.datetime:
        """Now, in huey's time (naive UTC, or naive local when ``utc`` is false)."""
        return utcnow() if self.utc else datetime.datetime.now()

    # -- decorators ----------------------------------------------------------------------
    def task(
        self,
        retries: int = 0,
        retry_delay: float = 0,
        retry_backoff: float = 0,
        priority: float | None = None,
        context: bool = False,
        name: str | None = None,
        expires: Any = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> Callable[[Callable[..., Any]], TaskWrapper[Any, Any]]:
        """Decorator that turns a function into a task (see :class:`TaskWrapper`)."""
        _check_task_options(retries, retry_delay, retry_backoff, timeout)
        _check_number("priority", priority, minimum=float("-inf"))

        def decorator(func: Callable[..., Any]) -> TaskWrapper[Any, Any]:
            if isinstance(func, TaskWrapper):
                func = func.func
            return self.task_wrapper_class(
                self,
                func,
                context=context,
                name=name,
                default_retries=retries,
                default_retry_delay=retry_delay,
                default_retry_backoff=retry_backoff,
                default_priority=priority,
                default_expires=expires,
                default_timeout=timeout,
                **kwargs,
            )

        return decorator

    def periodic_task(
        self, validate_datetime: Callable[[datetime.datetime], bool], **kwargs: Any
    ) -> Callable[[Callable[..., Any]], TaskWrapper[Any, Any]]:
        """Decorator for a task the scheduler enqueues whenever ``validate_datetime(now)``
        (usually a :func:`crontab`) is true. Accepts the options of :meth:`task`."""
        if not callable(validate_datetime):
            raise ConfigurationError(
                "periodic_task() needs a callable validate_datetime(dt) -> bool, such as "
                f"crontab(minute='0'); got {validate_datetime!r}"
            )

        def method(task: Task, timestamp: datetime.datetime) -> bool:
            return bool(validate_datetime(timestamp))

        return self.task(task_base=PeriodicTask, validate_datetime=method, **kwargs)

    def context_task(
        self, obj: Any, as_argument: bool = False, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], TaskWrapper[Any, Any]]:
        """Decorator for a task that runs inside ``with obj as ctx`` (``ctx`` passed first
        when ``as_argument``)."""

        def decorator(func: Callable[..., Any]) -> TaskWrapper[Any, Any]:
            @functools.wraps(func)
            def inner(*args: Any, **kw: Any) -> Any:
                with obj as ctx:
                    if as_argument:
                        return func(ctx, *args, **kw)
                    return func(*args, **kw)

            return self.task(**kwargs)(inner)

        return decorator

    # -- serialization -------------------------------------------------------------------
    def serialize(self, data: Any) -> bytes:
        """Serialize a value with the configured serializer."""
        return self.serializer.serialize(data)

    def deserialize(self, data: bytes) -> Any:
        """Deserialize a value with the configured serializer."""
        return self.serializer.deserialize(data)

    def serialize_task(self, task: Task) -> bytes:
        """The message bytes of ``task``; unserializable arguments raise a clear TypeError."""
        message = self._registry.create_message(task)
        try:
            return self.serializer.serialize(message)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise _serialization_error(self, task, exc) from exc

    def deserialize_task(self, data: bytes) -> Task:
        """Rebuild a task from message bytes; an unknown task name raises HueyException."""
        return self._registry.create_task(self.serializer.deserialize(data))

    # -- queue ---------------------------------------------------------------------------
    def enqueue(self, task: Any) -> Any:
        """Enqueue a Task, a ``group`` or a ``chord``; return its result handle(s).

        Returns None when results are off.
        """
        if isinstance(task, group):
            handles = [self.enqueue(member) for member in task.tasks]
            return ResultGroup(handles) if self.results else None
        if isinstance(task, chord):
            return self._enqueue_chord(task)
        if not isinstance(task, Task):
            raise TypeError(f"enqueue() takes a Task, group or chord, got {task!r}")
        self._announce_enqueue(task)
        if self._immediate:
            self.execute(task)
        else:
            self.storage.enqueue(self.serialize_task(task), task.priority)
        return self._handles(task)

    def _announce_enqueue(self, task: Task) -> None:
        """What every enqueue of a Task does before storing it (the scheduler's moves
        included): resolve a relative expiry, emit ``SIGNAL_ENQUEUED``."""
        if task.expires:
            task.resolve_expires(self.utc)
        self._emit(S.SIGNAL_ENQUEUED, task)

    def enqueue_many(self, tasks: Iterable[Task]) -> ResultGroup | None:
        """Enqueue several tasks in one round trip to the storage (``TaskWrapper.map``).

        Returns a ResultGroup of their handles (None when results are off).
        """
        tasks = list(tasks)
        if self._immediate:
            return self.enqueue(group(tasks))  # type: ignore[no-any-return]
        items = []
        for task in tasks:
            self._announce_enqueue(task)
            items.append((self.serialize_task(task), task.priority))
        self.storage.enqueue_many(items)
        return ResultGroup([self._handles(task) for task in tasks]) if self.results else None

    def _handles(self, task: Task) -> Any:
        if not self.results:
            return None
        if task.on_complete is None:
            return Result(self, task)
        stages: list[Result[Any]] = []
        stage: Task | None = task
        while stage is not None:
            stages.append(Result(self, stage))
            stage = stage.on_complete
        return ResultGroup(stages)

    def _enqueue_chord(self, the_chord: chord) -> ChordResult | None:
        import uuid

        from huey.utils import ChordConfig

        callback = the_chord.callback
        cid, size = str(uuid.uuid4()), len(the_chord.tasks)
        members: list[Result[Any]] = []
        for idx, member in enumerate(the_chord.tasks):
            head = member.callback if isinstance(member, chord) else member
            tail = head
            while tail.on_complete is not None:
                tail = tail.on_complete
            tail.chord_config = ChordConfig(cid, size, idx, callback)
            self.enqueue(member)
            members.append(Result(self, tail))
        if size == 0:
            callback.extend_data(([],))
            self.enqueue(callback)
        if not self.results:
            return None
        pipeline = self._handles(callback) if callback.on_complete is not None else None
        return ChordResult(ResultGroup(members), Result(self, callback), pipeline)

    def dequeue(self) -> Task | None:
        """Take the next task from the queue (None when empty)."""
        data = self.storage.dequeue()
        if data is None:
            return None
        return self.deserialize_task(data)

    def execute(self, task: Task, timestamp: datetime.datetime | None = None) -> Any:
        """Run ``task`` now (if due, not revoked, not expired); see spec section 5."""
        return _execution.execute(self, task, timestamp)

    def add_schedule(self, task: Task) -> None:
        """Put ``task`` on the schedule for its eta."""
        eta = task.eta or datetime.datetime.fromtimestamp(0)
        self.storage.add_to_schedule(self.serialize_task(task), eta)
        logger.debug("Added task %s to schedule, eta %s", task.id, eta)
        self._emit(S.SIGNAL_SCHEDULED, task)

    def _decode_all(self, items: Iterable[bytes], where: str) -> list[Task]:
        tasks = []
        for data in items:
            try:
                tasks.append(self.deserialize_task(data))
            except Exception:
                logger.exception("Unable to decode a message read from the %s; skipped", where)
        return tasks

    def read_schedule(self, timestamp: datetime.datetime | None = None) -> list[Task]:
        """Remove and return every scheduled task due at ``timestamp`` (default now)."""
        if timestamp is None:
            timestamp = self._get_timestamp()
        return self._decode_all(self.storage.read_schedule(timestamp), "schedule")

    def read_periodic(self, timestamp: datetime.datetime | None = None) -> list[Task]:
        """New instances of the periodic tasks whose rule matches ``timestamp``."""
        if timestamp is None:
            timestamp = self._get_timestamp()
        due = []
        for task_class in self._registry.periodic_tasks:
            task = task_class()
            if task.validate_datetime(timestamp):  # type: ignore[attr-defined]
                due.append(task)
        return due

    def ready_to_run(self, task: Task, timestamp: datetime.datetime | None = None) -> bool:
        """Whether ``task`` has no eta or its eta has passed."""
        if task.eta is None:
            return True
        return task.eta <= (timestamp or self._get_timestamp())

    def pending(self, limit: int | None = None) -> list[Task]:
        """Tasks waiting in the queue, in dequeue order (undecodable entries skipped)."""
        return self._decode_all(self.storage.enqueued_items(limit), "queue")

    def pending_count(self) -> int:
        """Number of tasks waiting in the queue."""
        return self.storage.queue_size()

    def scheduled(self, limit: int | None = None) -> list[Task]:
        """Scheduled tasks, soonest first."""
        return self._decode_all(self.storage.scheduled_items(limit), "schedule")

    def scheduled_count(self) -> int:
        """Number of scheduled tasks."""
        return self.storage.schedule_size()

    def all_results(self) -> dict[str, bytes]:
        """Every key of the result store with its raw (serialized) value."""
        return self.storage.result_items()

    def result_count(self) -> int:
        """Number of keys in the result store."""
        return self.storage.result_store_size()

    def flush(self) -> None:
        """Clear the queue, schedule, results and counters."""
        self.storage.flush_all()

    # -- key/value -----------------------------------------------------------------------
    def put(self, key: str, data: Any) -> Any:
        """Store a value under ``key``."""
        return self.storage.put_data(key, self.serialize(data))

    def put_result(self, key: str, data: Any) -> Any:
        """Store a task result under ``key`` (wakes waiters, expires on expire storages)."""
        return self.storage.put_data(key, self.serialize(data), is_result=True)

    def put_if_empty(self, key: str, data: Any, ttl: float | None = None) -> bool:
        """Atomically store a value if ``key`` is absent; ``ttl`` seconds until it expires."""
        return self.storage.put_if_empty(key, self.serialize(data), ttl)

    def get_raw(self, key: str, peek: bool = False) -> Any:
        """The raw bytes under ``key`` or ``EmptyData``; destructive unless ``peek``."""
        if peek:
            return self.storage.peek_data(key)
        return self.storage.pop_data(key)

    def get(self, key: str, peek: bool = False) -> Any:
        """The value under ``key`` or None; destructive unless ``peek``."""
        data = self.get_raw(key, peek)
        if data is EmptyData:
            return None
        return self.deserialize(data)

    def delete(self, key: str) -> bool:
        """Delete ``key``; return whether it existed."""
        return self.storage.delete_data(key)

    def build_error_result(self, task: Task, exception: BaseException) -> dict[str, Any]:
        """The metadata stored (inside an ``Error``) for a failed task."""
        if isinstance(exception, TaskException):
            error = exception.metadata.get("error") or repr(exception)
        else:
            error = repr(exception)
        return {
            "error": error,
            "retries": task.retries,
            "traceback": "".join(
                traceback.format_exception(type(exception), exception, exception.__traceback__)
            ),
            "task_id": task.id,
        }

    def result(
        self,
        id: str,
        blocking: bool = False,
        timeout: float | None = None,
        backoff: float = 1.15,
        max_delay: float = 1.0,
        revoke_on_timeout: bool = False,
        preserve: bool = False,
    ) -> Any:
        """The result of task ``id`` (see :meth:`Result.get`)."""
        return Result(self, Task(id=id)).get(
            blocking, timeout, backoff, max_delay, revoke_on_timeout, preserve
        )

    def _result_handle(self, task: Task) -> Result[Any]:
        return Result(self, task)

    # -- locks and rate limits -----------------------------------------------------------
    def lock_task(self, lock_name: str, ttl: float | None = None) -> TaskLock:
        """A :class:`TaskLock` (decorator or context manager) named ``lock_name``."""
        return TaskLock(self, lock_name, ttl)

    def is_locked(self, lock_name: str) -> bool:
        """Whether the lock ``lock_name`` is held."""
        return TaskLock(self, lock_name).is_locked()

    def flush_locks(self, *names: str) -> set[str]:
        """Delete every registered lock plus the named ones; return the names that existed."""
        keys = set(self._locks) | {f"{self.name}.lock.{name.strip()}" for name in names}
        flushed = set()
        for key in keys:
            if self.delete(key):
                flushed.add(key.split(".lock.", 1)[1])
        return flushed

    def rate_limit(self, name: str, limit: int, per: int, retry: bool = True) -> RateLimit:
        """A fixed-window :class:`RateLimit` of ``limit`` calls per ``per`` seconds."""
        return RateLimit(self, name, limit, per, retry)


def _serialization_error(huey: Huey, task: Task, exc: BaseException) -> TypeError:
    """Name the task and the argument that cannot be serialized."""
    culprit = "an argument"
    named = [(f"argument {i}", v) for i, v in enumerate(task.args)]
    named += [(f"keyword argument {k!r}", v) for k, v in task.kwargs.items() if k != "task"]
    for label, value in named:
        try:
            huey.serializer.serialize(value)
        except Exception:
            culprit = f"{label} ({type(value).__name__})"
            break
    name = huey._registry.task_to_string(type(task))
    return TypeError(f"cannot enqueue task {name}: {culprit} cannot be serialized: {exc}")


class BlackHoleHuey(Huey):
    """Huey that discards everything."""

    storage_class: type[BaseStorage] | None = BlackHoleStorage


class MemoryHuey(Huey):
    """Huey in process memory (tests, immediate mode)."""

    storage_class: type[BaseStorage] | None = MemoryStorage


class SqliteHuey(Huey):
    """Huey on a SQLite file (``filename=``)."""

    storage_class: type[BaseStorage] | None = SqliteStorage


class CySqliteHuey(Huey):
    """Huey on a SQLite file through cysqlite."""

    storage_class: type[BaseStorage] | None = CySqliteStorage


class PostgresHuey(Huey):
    """Huey on PostgreSQL (``dsn=``)."""

    storage_class: type[BaseStorage] | None = PostgresStorage


class RedisHuey(Huey):
    """Huey on Redis (``url=`` or ``host=``...)."""

    storage_class: type[BaseStorage] | None = RedisStorage


class RedisExpireHuey(RedisHuey):
    """Huey on Redis with results that expire (``expire_time=``)."""

    storage_class: type[BaseStorage] | None = RedisExpireStorage


class PriorityRedisHuey(RedisHuey):
    """Huey on Redis with task priorities."""

    storage_class: type[BaseStorage] | None = PriorityRedisStorage


class PriorityRedisExpireHuey(RedisHuey):
    """Huey on Redis with priorities and expiring results."""

    storage_class: type[BaseStorage] | None = PriorityRedisExpireStorage


class FileHuey(Huey):
    """Huey on a directory of files (``path=``)."""

    storage_class: type[BaseStorage] | None = FileStorage


def __getattr__(name: str) -> Any:
    # Consumer is re-exported lazily so importing huey does not load the consumer machinery.
    if name == "Consumer":
        from huey.consumer import Consumer

        return Consumer
    raise AttributeError(f"module 'huey.api' has no attribute {name!r}")


__all__ = [
    "BlackHoleHuey",
    "ChordResult",
    "CySqliteHuey",
    "EmptyData",
    "Error",
    "FileHuey",
    "Huey",
    "HueyException",
    "MemoryHuey",
    "PeriodicTask",
    "PostgresHuey",
    "PriorityRedisExpireHuey",
    "PriorityRedisHuey",
    "RateLimit",
    "RedisExpireHuey",
    "RedisHuey",
    "Result",
    "ResultGroup",
    "SqliteHuey",
    "Task",
    "TaskLock",
    "TaskWrapper",
    "chord",
    "crontab",
    "group",
    "normalize_time",
]
