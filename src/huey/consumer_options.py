"""The consumer's options: ONE table rendered to optparse, to argparse and to ConsumerConfig.

``OPTION_GROUPS`` lists every option of the ``huey_consumer`` command (spec section 16.3).
:class:`OptionParserHandler` renders it with optparse (the upstream API, which Django's
``run_huey`` reuses) and :func:`add_consumer_arguments` renders the same table for the
argparse-based ``huey run`` command, so the two commands cannot drift apart.
"""

from __future__ import annotations

import argparse
import logging
import optparse
from typing import Any, NamedTuple

from huey.constants import WORKER_PROCESS, WORKER_TYPES


class _Settings(NamedTuple):
    """Every consumer setting with its default: the single source of the defaults."""

    workers: int = 1
    worker_type: str = "thread"
    initial_delay: float = 0.1
    backoff: float = 1.15
    max_delay: float = 10.0
    max_tasks: int | None = None
    check_worker_health: bool = True
    health_check_interval: float = 10
    scheduler_interval: int = 1
    periodic: bool = True
    logfile: str | None = None
    verbose: bool | None = None
    simple_log: bool | None = None
    flush_locks: bool = False
    extra_locks: str | None = None
    shutdown_timeout: float | None = None
    graceful_signal: str = "INT"
    # huey-ng additions
    visibility_timeout: float | None = None


#: (key, default) for every consumer setting, in ConsumerConfig field order
config_defaults: tuple[tuple[str, Any], ...] = tuple(_Settings._field_defaults.items())
config_keys: list[str] = [key for key, _ in config_defaults]
# Settings that configure logging in the command, not the Consumer.
_LOGGING_KEYS = ("logfile", "verbose", "simple_log")

Option = tuple[tuple[str, str], dict[str, Any]]


def option(name: str | tuple[str, str], **kwargs: Any) -> Option:
    """One option: ``(('-x', '--long-name'), optparse keyword arguments)``.

    ``name`` is a setting name (``'workers'`` gives ``-w``/``--workers``, dest ``workers``)
    or a ``(letter, long_name)`` pair, whose dest defaults to the long name with
    underscores.
    """
    if isinstance(name, tuple):
        letter, long_name = name
    else:
        letter, long_name = name[0], name.replace("_", "-")
    kwargs.setdefault("dest", long_name.replace("-", "_"))
    return (f"-{letter}", f"--{long_name}"), kwargs


def _worker_options() -> list[Option]:
    return [
        option("workers", type="int", default=1, metavar="N", help="number of workers (1)"),
        option(
            ("k", "worker-type"),
            choices=list(WORKER_TYPES),
            default="thread",
            help="worker type: thread, greenlet or process (thread)",
        ),
        option(
            "delay",
            dest="initial_delay",
            type="float",
            default=0.1,
            metavar="SECONDS",
            help="first polling delay for non-blocking storages (0.1)",
        ),
        option(
            "max_delay",
            type="float",
            default=10.0,
            metavar="SECONDS",
            help="maximum polling delay (10.0)",
        ),
        option(
            "backoff",
            type="float",
            default=1.15,
            metavar="FACTOR",
            help="polling delay multiplier while the queue is empty, >= 1 (1.15)",
        ),
        option(
            ("c", "health-check-interval"),
            type="float",
            default=10,
            metavar="SECONDS",
            help="seconds between worker health checks (10)",
        ),
        option(
            ("C", "disable-health-check"),
            action="store_false",
            dest="check_worker_health",
            default=True,
            help="do not restart workers that die",
        ),
        option(
            "flush_locks",
            action="store_true",
            default=False,
            help="delete the registered task locks when the consumer starts",
        ),
        option(
            ("L", "extra-locks"),
            default=None,
            metavar="NAMES",
            help="comma-separated lock names to delete at start-up (implies -f)",
        ),
        option(
            ("M", "max-tasks"),
            type="int",
            default=None,
            metavar="COUNT",
            help="replace a worker after it has run this many tasks",
        ),
        option(
            ("t", "shutdown-timeout"),
            type="float",
            default=None,
            metavar="SECONDS",
            help="longest a graceful stop waits for running tasks (no limit)",
        ),
        option(
            "graceful_signal",
            choices=["INT", "TERM"],
            default="INT",
            help="signal that stops gracefully, INT or TERM; the other stops at once (INT)",
        ),
        option(
            ("T", "visibility-timeout"),
            type="float",
            default=None,
            metavar="SECONDS",
            help="seconds a taken task stays leased without a heartbeat before it is "
            "delivered again (the Huey's visibility_timeout, 30)",
        ),
    ]


def _scheduler_options() -> list[Option]:
    return [
        option(
            "scheduler_interval",
            type="int",
            default=1,
            metavar="N",
            help="seconds between schedule checks, a divisor of 60 (1)",
        ),
        option(
            ("n", "no-periodic"),
            action="store_false",
            dest="periodic",
            default=True,
            help="do not enqueue periodic tasks",
        ),
    ]


def _logging_options() -> list[Option]:
    return [
        option("logfile", metavar="FILE", default=None, help="log to FILE instead of stderr"),
        option("verbose", action="store_true", default=None, help="log at DEBUG level"),
        option(("q", "quiet"), action="store_false", dest="verbose", help="log at WARNING level"),
        option(
            ("S", "simple"),
            action="store_true",
            dest="simple_log",
            default=None,
            help="simple log format: time and message only",
        ),
    ]


class OptionParserHandler:
    """Builds the optparse parser of ``huey_consumer`` from the option table."""

    def get_worker_options(self) -> list[Option]:
        """Worker options: count, type, polling, health check, locks, shutdown."""
        return _worker_options()

    def get_scheduler_options(self) -> list[Option]:
        """Scheduler options: interval and periodic tasks."""
        return _scheduler_options()

    def get_logging_options(self) -> list[Option]:
        """Logging options: file, verbosity, format."""
        return _logging_options()

    def get_option_parser(self) -> optparse.OptionParser:
        """The optparse parser of ``huey_consumer [options] path.to.huey_instance``."""
        parser = optparse.OptionParser("Usage: %prog [options] path.to.huey_instance")

        def add_group(title: str, description: str, options: list[Option]) -> None:
            group = parser.add_option_group(title, description)
            for flags, kwargs in options:
                group.add_option(*flags, **kwargs)

        add_group("Logging", "Where the consumer logs, and how much.", self.get_logging_options())
        add_group(
            "Workers",
            "How many workers run tasks, of which kind (threads, forked processes or gevent "
            "greenlets), how they poll the queue and how they are supervised.",
            self.get_worker_options(),
        )
        add_group(
            "Scheduler",
            "How often due scheduled tasks are moved to the queue, and whether periodic "
            "(crontab) tasks are enqueued.",
            self.get_scheduler_options(),
        )
        return parser


_ARGPARSE_TYPES = {"int": int, "float": float, "string": str}


def add_consumer_arguments(parser: argparse.ArgumentParser) -> None:
    """Add every consumer option of the table to an argparse parser (for ``huey run``)."""
    handler = OptionParserHandler()
    groups = (
        ("logging", handler.get_logging_options()),
        ("workers", handler.get_worker_options()),
        ("scheduler", handler.get_scheduler_options()),
    )
    for title, options in groups:
        group = parser.add_argument_group(title)
        for flags, kwargs in options:
            kwargs = dict(kwargs)
            kind = kwargs.pop("type", None)
            if kind in _ARGPARSE_TYPES:
                kwargs["type"] = _ARGPARSE_TYPES[kind]
            if kwargs.get("action") == "store_false" and "default" not in kwargs:
                # argparse would default a store_false option to True; keep the table's
                # default (set by the option sharing its dest) by suppressing this one's.
                kwargs["default"] = argparse.SUPPRESS
            group.add_argument(*flags, **kwargs)


class ConsumerConfig(_Settings):
    """The consumer settings as parsed from the command line (every key has a default)."""

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid setting."""
        if self.backoff < 1:
            raise ValueError(f"the backoff (-b) must be >= 1, got {self.backoff}")
        if not 0 < self.scheduler_interval <= 60 or 60 % self.scheduler_interval:
            raise ValueError(
                "the scheduler interval (-s) must be between 1 and 60 and divide 60 "
                f"(1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30 or 60), got {self.scheduler_interval}"
            )
        if self.graceful_signal not in ("INT", "TERM"):
            raise ValueError(
                f"the graceful signal (-g) must be INT or TERM, got {self.graceful_signal!r}"
            )
        if self.worker_type not in (*WORKER_TYPES, "gevent"):
            raise ValueError(
                f"the worker type (-k) must be one of {', '.join(WORKER_TYPES)}, "
                f"got {self.worker_type!r}"
            )
        if self.workers < 1:
            raise ValueError(f"the number of workers (-w) must be >= 1, got {self.workers}")
        if self.max_tasks is not None and self.max_tasks < 1:
            raise ValueError(f"max tasks (-M) must be >= 1, got {self.max_tasks}")
        for key, flag in (("initial_delay", "-d"), ("max_delay", "-m"), ("shutdown_timeout", "-t")):
            value = getattr(self, key)
            if value is not None and value < 0:
                raise ValueError(f"{key} ({flag}) must be >= 0, got {value}")
        if self.health_check_interval <= 0:
            raise ValueError(
                f"the health check interval (-c) must be > 0, got {self.health_check_interval}"
            )

    @property
    def loglevel(self) -> int:
        """DEBUG when verbose, WARNING when quiet, INFO otherwise."""
        if self.verbose is None:
            return logging.INFO
        return logging.DEBUG if self.verbose else logging.WARNING

    @property
    def values(self) -> dict[str, Any]:
        """The Consumer keyword arguments: every setting except the logging ones."""
        return {key: value for key, value in self._asdict().items() if key not in _LOGGING_KEYS}

    def setup_logger(self, logger: logging.Logger | None = None) -> logging.Logger:
        """Attach one handler (stderr, or ``logfile``) to ``logger`` (default ``huey``)."""
        if self.worker_type == WORKER_PROCESS:
            worker = "%(process)d"
        else:
            worker = "%(threadName)s"
        if self.simple_log:
            formatter = logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S")
        else:
            formatter = logging.Formatter(
                f"[%(asctime)s] %(levelname)s:%(name)s:{worker}:%(message)s"
            )
        handler: logging.Handler
        if self.logfile:
            handler = logging.FileHandler(self.logfile)
        else:
            handler = logging.StreamHandler()
        handler.setFormatter(formatter)
        if logger is None:
            logger = logging.getLogger("huey")
        # Calling it twice (a restart in-process, tests) must not duplicate every line.
        for old in [h for h in logger.handlers if getattr(h, "_huey_consumer", False)]:
            logger.removeHandler(old)
            old.close()
        setattr(handler, "_huey_consumer", True)  # noqa: B010 (marks our own handler)
        logger.addHandler(handler)
        logger.setLevel(self.loglevel)
        return logger


def config_from_options(options: Any) -> ConsumerConfig:
    """A validated ConsumerConfig from parsed options (None values take the defaults)."""
    given = {key: getattr(options, key, None) for key in config_keys}
    config = ConsumerConfig(**{key: value for key, value in given.items() if value is not None})
    config.validate()
    return config


__all__ = [
    "ConsumerConfig",
    "OptionParserHandler",
    "add_consumer_arguments",
    "config_defaults",
    "config_from_options",
    "config_keys",
    "option",
]
