"""Time helpers, the wire-format tuples (``Error``, ``ChordConfig``, ``SKIPPED``) and small
utilities shared by every layer."""

from __future__ import annotations

import calendar
import contextlib
import datetime
import importlib
import os
import threading
import time
import warnings
from collections import namedtuple
from collections.abc import Iterator
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

# Part of the wire format: pickled results refer to ``huey.utils.Error``.
Error = namedtuple("Error", ("metadata",))
# Part of the wire format: the chord configuration carried by chord member messages.
ChordConfig = namedtuple("ChordConfig", ("cid", "size", "idx", "callback"))


class _Skipped:
    """Type of :data:`SKIPPED`: the chord slot value of a member that never ran."""

    _instance: _Skipped | None = None

    def __new__(cls) -> _Skipped:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "SKIPPED"

    def __reduce__(self) -> str:
        # Pickle as a global reference so identity survives a round trip.
        return "SKIPPED"


SKIPPED = _Skipped()


def utcnow() -> datetime.datetime:
    """Return the current UTC time as a naive datetime."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def is_naive(dt: datetime.datetime) -> bool:
    """Return True when ``dt`` carries no usable time zone."""
    return dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None


def make_naive(dt: datetime.datetime) -> datetime.datetime:
    """Convert an aware datetime to naive *local* time."""
    ts = calendar.timegm(dt.utctimetuple()) + dt.microsecond / 1e6
    return datetime.datetime.fromtimestamp(ts)


def aware_to_utc(dt: datetime.datetime) -> datetime.datetime:
    """Convert an aware datetime to naive UTC."""
    return dt.astimezone(datetime.timezone.utc).replace(tzinfo=None)


def local_to_utc(dt: datetime.datetime) -> datetime.datetime:
    """Convert a naive local datetime to naive UTC."""
    ts = time.mktime(dt.timetuple()) + dt.microsecond / 1e6
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).replace(tzinfo=None)


def normalize_time(
    eta: datetime.datetime | None = None,
    delay: float | datetime.timedelta | None = None,
    utc: bool = True,
) -> datetime.datetime:
    """Turn an ``eta`` or a ``delay`` into a naive datetime in huey's time (UTC or local).

    Exactly one of ``eta`` and ``delay`` must be given. A naive ``eta`` is local time; with
    ``utc`` it is converted to naive UTC. ``delay`` is seconds or a timedelta from now.

    :raises ValueError: when both or neither are given, or ``eta`` is not a datetime.
    """
    if (eta is None) == (delay is None):
        raise ValueError("normalize_time() requires exactly one of eta= or delay=")
    if delay is not None:
        if isinstance(delay, datetime.timedelta):
            delta = delay
        elif isinstance(delay, (int, float)) and not isinstance(delay, bool):
            delta = datetime.timedelta(seconds=delay)
        else:
            raise ValueError(f"delay must be a number of seconds or a timedelta, got {delay!r}")
        now = utcnow() if utc else datetime.datetime.now()
        return now + delta
    if not isinstance(eta, datetime.datetime):
        raise ValueError(f"eta must be a datetime, got {eta!r}")
    if utc:
        return local_to_utc(eta) if is_naive(eta) else aware_to_utc(eta)
    return eta if is_naive(eta) else make_naive(eta)


def normalize_expire_time(
    expires: datetime.datetime | float | datetime.timedelta, utc: bool = True
) -> datetime.datetime:
    """Resolve ``expires``: a datetime is an absolute time, anything else a delay."""
    if isinstance(expires, datetime.datetime):
        return normalize_time(eta=expires, utc=utc)
    return normalize_time(delay=expires, utc=utc)


def load_class(path: str) -> Any:
    """Import and return the object named by a dotted path ``'pkg.module.attr'``."""
    module_path, _, attr = path.rpartition(".")
    if not module_path:
        raise ImportError(f"{path!r} is not a dotted path of the form 'module.attr'")
    module = importlib.import_module(module_path)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ImportError(f"module {module_path!r} has no attribute {attr!r}")


def encode(s: Any) -> bytes | None:
    """Return ``s`` as bytes: bytes unchanged, str as UTF-8, None as None, else ``str(s)``."""
    if s is None or isinstance(s, bytes):
        return s
    if isinstance(s, str):
        return s.encode("utf-8")
    return str(s).encode("utf-8")


def decode(s: Any) -> str | None:
    """Return ``s`` as str: str unchanged, bytes decoded as UTF-8, None as None."""
    if s is None or isinstance(s, str):
        return s
    if isinstance(s, bytes):
        return s.decode("utf-8")
    return str(s)


class FileLock:
    """An exclusive inter-process lock on a file (``fcntl.flock``), usable as a context manager.

    Each thread uses its own file descriptor, so the lock also excludes threads of one process.
    """

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self._local = threading.local()
        dirname = os.path.dirname(filename)
        if dirname:
            os.makedirs(dirname, exist_ok=True)
        if fcntl is None:  # pragma: no cover
            warnings.warn("FileLock: fcntl is not available; locking is a no-op", stacklevel=2)

    def acquire(self) -> None:
        """Block until the lock is held by this thread."""
        fd = os.open(self.filename, os.O_CREAT | os.O_RDWR, 0o644)
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        self._local.fd = fd

    def release(self) -> None:
        """Release the lock held by this thread."""
        fd = getattr(self._local, "fd", None)
        if fd is None:
            return
        self._local.fd = None
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@contextlib.contextmanager
def noop_context() -> Iterator[None]:
    """A context manager that does nothing."""
    yield
