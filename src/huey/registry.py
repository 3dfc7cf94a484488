"""The task registry and the wire message.

``Message`` is part of the frozen wire format: upstream huey and huey-ng pickle the same
namedtuple (``huey.registry.Message``, same 15 fields in the same order), so either can read
what the other enqueued.
"""

from __future__ import annotations

from collections import namedtuple
from typing import TYPE_CHECKING, Any

from huey.exceptions import HueyException
from huey.utils import ChordConfig

if TYPE_CHECKING:
    from huey._task import Task

Message = namedtuple(
    "Message",
    (
        "id",
        "name",
        "eta",
        "retries",
        "retry_delay",
        "priority",
        "args",
        "kwargs",
        "on_complete",
        "on_error",
        "expires",
        "expires_resolved",
        "timeout",
        "chord_config",
        "retry_backoff",
    ),
)
# Every field defaults to None so messages written with fewer fields still load.
Message.__new__.__defaults__ = (None,) * len(Message._fields)


class Registry:
    """Maps ``"<module>.<TaskClassName>"`` to task classes, and tasks to/from messages."""

    def __init__(self) -> None:
        self._registry: dict[str, type[Task]] = {}
        self._periodic_tasks: list[type[Task]] = []

    def task_to_string(self, task_class: type[Any]) -> str:
        """The registry key of a task class: ``"<module>.<ClassName>"``."""
        return f"{task_class.__module__}.{task_class.__name__}"

    def register(self, task_class: type[Task]) -> bool:
        """Add a task class; a second class with the same key raises ``ValueError``."""
        key = self.task_to_string(task_class)
        if key in self._registry:
            raise ValueError(
                f'a task named "{key}" is already registered; pass name= to the task '
                "decorator to give this one a different name"
            )
        self._registry[key] = task_class
        if getattr(task_class, "_huey_periodic", False):
            self._periodic_tasks.append(task_class)
        return True

    def unregister(self, task_class: type[Task]) -> bool:
        """Remove a task class; return whether it was registered."""
        key = self.task_to_string(task_class)
        if key not in self._registry:
            return False
        del self._registry[key]
        if task_class in self._periodic_tasks:
            self._periodic_tasks.remove(task_class)
        return True

    def string_to_task(self, task_string: str) -> type[Task]:
        """Look up a task class by key; an unknown key raises ``HueyException``."""
        try:
            return self._registry[task_string]
        except KeyError:
            raise HueyException(f"{task_string} not found in TaskRegistry")

    @property
    def periodic_tasks(self) -> list[type[Task]]:
        """The registered periodic task classes, in registration order."""
        return list(self._periodic_tasks)

    def create_message(self, task: Task) -> Any:
        """Build the wire ``Message`` for ``task`` (pipelines and chord callbacks nested)."""
        kwargs = task.kwargs
        if kwargs and kwargs.get("task") is task:
            # Strip the context injection; a user-supplied ``task`` kwarg is kept.
            kwargs = {k: v for k, v in kwargs.items() if k != "task"}
        on_complete = self.create_message(task.on_complete) if task.on_complete else None
        on_error = self.create_message(task.on_error) if task.on_error else None
        chord_config = task.chord_config
        if chord_config is not None:
            cid, size, idx, callback = chord_config
            chord_config = ChordConfig(cid, size, idx, self.create_message(callback))
        return Message(
            task.id,
            self.task_to_string(type(task)),
            task.eta,
            task.retries,
            task.retry_delay,
            task.priority,
            task.args,
            kwargs,
            on_complete,
            on_error,
            task.expires,
            task.expires_resolved,
            task.timeout,
            chord_config,
            task.retry_backoff,
        )

    def create_task(self, message: Any) -> Task:
        """Rebuild a task instance from a wire ``Message``."""
        task_class = self.string_to_task(message.name)
        on_complete = self.create_task(message.on_complete) if message.on_complete else None
        on_error = self.create_task(message.on_error) if message.on_error else None
        chord_config = message.chord_config
        if chord_config is not None:
            cid, size, idx, callback = chord_config
            chord_config = ChordConfig(cid, size, idx, self.create_task(callback))
        return task_class(
            message.args,
            message.kwargs,
            message.id,
            message.eta,
            message.retries,
            message.retry_delay,
            message.priority,
            message.expires,
            on_complete,
            on_error,
            message.expires_resolved,
            message.timeout,
            chord_config,
            message.retry_backoff,
        )
