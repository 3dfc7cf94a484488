"""Hook and signal registration for ``Huey`` (pre/post-execute, startup/shutdown, signals)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from huey import signals as S
from huey._task import Task

F = TypeVar("F", bound=Callable[..., Any])
Hook = Callable[..., Any]


class HooksMixin:
    """The hook registries of a Huey instance and the methods that fill them."""

    _pre_execute: dict[str, Hook]
    _post_execute: dict[str, Hook]
    _startup: dict[str, Hook]
    _shutdown: dict[str, Hook]
    _signal: S.Signal
    _tasks_in_flight: set[Task]

    @staticmethod
    def _register_hook(registry: dict[str, Hook], name: str | None) -> Callable[[F], F]:
        def decorator(fn: F) -> F:
            registry[name or fn.__name__] = fn
            return fn

        return decorator

    @staticmethod
    def _unregister_hook(registry: dict[str, Hook], name: Any) -> bool:
        if not isinstance(name, str):
            name = name.__name__
        return registry.pop(name, None) is not None

    def pre_execute(self, name: str | None = None) -> Callable[[F], F]:
        """Decorator for ``fn(task)`` run before each task; raise CancelExecution to skip."""
        return self._register_hook(self._pre_execute, name)

    def unregister_pre_execute(self, name: Any) -> bool:
        """Remove a pre-execute hook by name or function."""
        return self._unregister_hook(self._pre_execute, name)

    def post_execute(self, name: str | None = None) -> Callable[[F], F]:
        """Decorator for ``fn(task, task_value, exception)`` run after each task."""
        return self._register_hook(self._post_execute, name)

    def unregister_post_execute(self, name: Any) -> bool:
        """Remove a post-execute hook by name or function."""
        return self._unregister_hook(self._post_execute, name)

    def on_startup(self, name: str | None = None) -> Callable[[F], F]:
        """Decorator for a zero-argument callable run once in each worker as it starts."""
        return self._register_hook(self._startup, name)

    def unregister_on_startup(self, name: Any) -> bool:
        """Remove a startup hook by name or function."""
        return self._unregister_hook(self._startup, name)

    def on_shutdown(self, name: str | None = None) -> Callable[[F], F]:
        """Decorator for a zero-argument callable run in each worker as it exits."""
        return self._register_hook(self._shutdown, name)

    def unregister_on_shutdown(self, name: Any = None) -> bool:
        """Remove a shutdown hook by name or function."""
        return self._unregister_hook(self._shutdown, name)

    def signal(self, *signals: str) -> Callable[[F], F]:
        """Decorator connecting a receiver to ``signals`` (all signals when none given)."""

        def decorator(fn: F) -> F:
            self._signal.connect(fn, *signals)
            return fn

        return decorator

    def disconnect_signal(self, receiver: Callable[..., Any], *signals: str) -> None:
        """Disconnect a receiver from ``signals`` (from every signal when none given)."""
        self._signal.disconnect(receiver, *signals)

    def _emit(self, signal: str, task: Any, *args: Any, **kwargs: Any) -> None:
        self._signal.send(signal, task, *args, **kwargs)

    def notify_interrupted_tasks(self) -> None:
        """Emit SIGNAL_INTERRUPTED for every task still running (called at consumer exit)."""
        while self._tasks_in_flight:
            try:
                task = self._tasks_in_flight.pop()
            except KeyError:
                break
            self._emit(S.SIGNAL_INTERRUPTED, task)
