"""SQLite storages: :class:`SqliteStorage` and :class:`CySqliteStorage` (spec §15.5).

The four tables (``task``, ``schedule``, ``kv``, ``counter``) and their two indexes are
exactly upstream huey's, so upstream and huey-ng can share one database file. huey-ng's
own state lives in tables prefixed ``hueyng_`` that are created when first needed and
never alter upstream's tables:

- ``hueyng_kv_expiry``: expiry time of keys stored with ``put_if_empty(..., ttl=...)``
  (upstream has no ttl on SQLite);
- ``hueyng_lease``: messages taken but not yet acknowledged, with their delivery count;
- ``hueyng_delivery``: the delivery count of a message given back to the queue (by sha1);
- ``hueyng_dead_letter``, ``hueyng_claim`` and ``hueyng_named_lease``.

A take moves the row from ``task`` into ``hueyng_lease`` in one transaction, so an
upstream consumer sharing the file still sees only queued messages.

Concurrency: one connection per storage object (shared by its threads behind a
``threading.Lock``), in autocommit mode; every write runs in ``begin exclusive`` and is
retried while another process holds the database. WAL lets readers run alongside a writer,
so several consumer processes can share one file. After a fork the child opens its own
connection lazily.

Waiting (huey-ng): with ``blocking=True`` (the default) a take on an empty queue waits up to
``read_timeout`` for a message, woken within ~``poll_interval`` of another process's commit,
so an idle consumer starts a new task within a few ms without the worker's 0.1 s -> 10 s
backoff sleeps; ``wait_result`` polls from 0.5 ms. How: ``huey.storage._sqlite_wait``.
"""

from __future__ import annotations

import datetime
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from huey.constants import EmptyData
from huey.exceptions import ConfigurationError
from huey.storage._base import BaseStorage
from huey.storage._sqlite_leases import DELETE_CHUNK, SqliteLeasesMixin
from huey.storage._sqlite_wait import ChangeWatch

T = TypeVar("T")

#: How many times a write is retried when the database stays locked past the busy timeout.
LOCK_RETRIES = 5
#: Due schedule rows are deleted in chunks of this many ids (SQLite's variable limit).
#: The huey-ng table with the expiry time of keys stored with a ttl.
EXPIRY_TABLE = "hueyng_kv_expiry"

# Upstream's schema, statement for statement: SQLite stores the text after dropping
# "if not exists", so ``sqlite_master.sql`` matches upstream's byte for byte.
_KV_DDL = (
    "create table if not exists kv (queue text not null, key text not null, "
    "value blob not null, primary key(queue, key))"
)
_SCHEDULE_DDL = (
    "create table if not exists schedule (id integer not null primary key, "
    "queue text not null, data blob not null, timestamp real not null)"
)
_SCHEDULE_INDEX_DDL = (
    "create index if not exists schedule_queue_timestamp on schedule (queue, timestamp)"
)
_TASK_DDL = (
    "create table if not exists task (id integer not null primary key{autoincrement}, "
    "queue text not null, data blob not null, priority real not null default 0.0)"
)
_TASK_INDEX_DDL = (
    "create index if not exists task_queue_priority_id on task (queue, priority desc, id)"
)
_COUNTER_DDL = (
    "create table if not exists counter (queue text not null, key text not null, "
    "value integer not null default 0, primary key(queue, key))"
)
_EXPIRY_DDL = (
    f"create table if not exists {EXPIRY_TABLE} (queue text not null, key text not null, "
    "expires_at real not null, primary key(queue, key))"
)
# A kv row is live unless an expiry row says it has expired.
_LIVE = (
    f"not exists (select 1 from {EXPIRY_TABLE} e where e.queue = kv.queue "
    "and e.key = kv.key and e.expires_at <= ?)"
)

# Connections a forked child inherited. They are kept referenced, never closed: closing
# (or garbage-collecting) a connection inherited across fork could checkpoint or unlock
# the parent's database from the child.
_INHERITED: list[Any] = []


def _is_locked(exc: sqlite3.OperationalError) -> bool:
    message = str(exc).lower()
    return "locked" in message or "busy" in message


class BaseSqlStorage(SqliteLeasesMixin, BaseStorage):
    """Shared SQL implementation of the storage contract on a DB-API (sqlite3-like) driver.

    Subclasses provide :meth:`_connect` (a new autocommit connection) and may set extra
    pragmas. Every public method takes the storage's thread lock, so one connection can
    be shared by the threads of a process.

    :param name: queue name; rows of several queues share the tables.
    :param timeout: seconds a statement waits for a lock held by another connection.
    :param strict_fifo: create the ``task`` table with AUTOINCREMENT so ids are never
        reused (only effective when the table is created).
    :param create_tables: run the DDL at construction; otherwise call
        :meth:`initialize_schema` yourself.
    :param blocking: (huey-ng) a take on an empty queue waits up to ``read_timeout`` for a
        message (``dequeue``, ``dequeue_leased``, ``dequeue_leased_many``); False returns
        at once, as upstream does, and the consumer sleeps between polls instead.
    :param read_timeout: (huey-ng) seconds a blocking take waits; must be positive.
    :param poll_interval: (huey-ng) seconds between two looks for another process's commit
        while a take waits (5 ms once no take found work for a second).
    """

    def __init__(
        self,
        name: str = "huey",
        timeout: float = 5,
        strict_fifo: bool = False,
        create_tables: bool = True,
        blocking: bool = True,
        read_timeout: float = 1,
        poll_interval: float = 0.001,
        **kwargs: Any,
    ) -> None:
        super().__init__(name)
        if blocking and not read_timeout > 0:
            raise ConfigurationError(
                f"read_timeout must be a positive number of seconds, got {read_timeout!r} "
                "(or pass blocking=False)"
            )
        if not poll_interval > 0:
            raise ConfigurationError(
                f"poll_interval must be a positive number of seconds, got {poll_interval!r}"
            )
        self.timeout = timeout
        self.strict_fifo = strict_fifo
        self.blocking = bool(blocking)
        self.read_timeout = float(read_timeout)
        self.poll_interval = float(poll_interval)
        self._conn: Any = None
        self._generation = 0  # bumped per connection opened: data_version restarts with it
        self._full_sync: int | None = None  # synchronous level a take may relax (WAL only)
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._change_watch = ChangeWatch(self._data_version)
        self._expiry_known = False
        self._ng_ready = False  # huey-ng's tables are known to exist
        if create_tables:
            self.initialize_schema()

    # -- connection ----------------------------------------------------------------------
    def _connect(self) -> Any:
        """Open a new autocommit connection (subclasses implement)."""
        raise NotImplementedError

    def _after_fork(self) -> None:
        # The thread lock may have been held by a thread that does not exist in the child.
        if self._conn is not None:
            _INHERITED.append(self._conn)
        self._conn = None
        self._lock = threading.Lock()
        self._change_watch = ChangeWatch(self._data_version)
        self._pid = os.getpid()

    def _connection(self) -> Any:
        """The open connection, opened on first use (call with the thread lock held)."""
        if self._conn is None:
            conn = self._connect()
            # Only a WAL database at synchronous FULL (or EXTRA) may relax a take's commit.
            mode = conn.execute("pragma journal_mode").fetchone()[0]
            level = int(conn.execute("pragma synchronous").fetchone()[0])
            self._full_sync = level if str(mode).lower() == "wal" and level >= 2 else None
            self._conn = conn
            self._generation += 1
        return self._conn

    def _locked(self) -> threading.Lock:
        if self._pid != os.getpid():
            self._after_fork()
        return self._lock

    def close(self) -> bool:
        """Close the connection; return whether one was open. The next call reopens it."""
        with self._locked():
            if self._conn is None:
                return False
            self._conn.close()
            self._conn = None
            # A ':memory:' database vanishes with its connection: look for the tables again.
            self._expiry_known = self._ng_ready = False
            return True

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        """Run a query outside any transaction (WAL readers do not block writers)."""
        with self._locked():
            for attempt in range(LOCK_RETRIES):
                try:
                    return list(self._connection().execute(sql, tuple(params)).fetchall())
                except sqlite3.OperationalError as exc:
                    if not _is_locked(exc) or attempt == LOCK_RETRIES - 1:
                        raise
                time.sleep(0.05 * (attempt + 1))
            raise AssertionError("unreachable")

    def _write(self, fn: Callable[[Any], T], durable: bool = True) -> T:
        """Run ``fn(connection)`` inside ``begin exclusive``; retry while locked.

        ``durable=False`` (a take) commits without waiting for the fsync in WAL mode: the
        next durable commit's fsync covers it, and if power fails first the take is lost
        with its lease and the message is still queued (delivered again, never lost).
        """
        with self._locked():
            conn = self._connection()
            relax = not durable and self._full_sync is not None
            if relax:
                conn.execute("pragma synchronous = normal")
            try:
                return self._write_locked(fn)
            finally:
                if relax and self._conn is conn:
                    conn.execute(f"pragma synchronous = {self._full_sync}")

    def _write_locked(self, fn: Callable[[Any], T]) -> T:
        for attempt in range(LOCK_RETRIES):
            conn = self._connection()
            try:
                conn.execute("begin exclusive")
                try:
                    result = fn(conn)
                except BaseException:
                    conn.execute("rollback")
                    raise
                conn.execute("commit")
                self._change_watch.bump()  # wakes this process's waiting threads
                return result
            except sqlite3.OperationalError as exc:
                if conn.in_transaction:
                    conn.execute("rollback")
                if not _is_locked(exc) or attempt == LOCK_RETRIES - 1:
                    raise
            time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    def initialize_schema(self) -> None:
        """Create upstream's tables and indexes if they do not exist."""
        autoincrement = " autoincrement" if self.strict_fifo else ""
        statements = (
            _KV_DDL,
            _SCHEDULE_DDL,
            _SCHEDULE_INDEX_DDL,
            _TASK_DDL.format(autoincrement=autoincrement),
            _TASK_INDEX_DDL,
            _COUNTER_DDL,
        )

        def create(conn: Any) -> None:
            for statement in statements:
                conn.execute(statement)

        self._write(create)

    # -- queue ---------------------------------------------------------------------------
    def enqueue(self, data: bytes, priority: float | None = None) -> None:
        """Insert a message; ``priority`` may be any real number (None means 0)."""
        params = (self.name, data, float(priority or 0))
        self._write(
            lambda c: c.execute("insert into task (queue, data, priority) values (?, ?, ?)", params)
        )

    def enqueue_many(self, items: Iterable[tuple[bytes, float | None]]) -> None:
        """Insert several messages in one transaction."""
        rows = [(self.name, data, float(priority or 0)) for data, priority in items]
        if rows:
            self._write(
                lambda c: c.executemany(
                    "insert into task (queue, data, priority) values (?, ?, ?)", rows
                )
            )

    def dequeue(self) -> bytes | None:
        """Remove and return the message with the highest priority, lowest id first.

        When blocking and the queue is empty, waits up to ``read_timeout`` for one.
        """
        return self._take_waiting(self._dequeue_once)

    def _dequeue_once(self) -> bytes | None:
        # Cheap check first: an idle consumer polling an empty queue takes no write lock.
        if not self._read("select 1 from task where queue = ? limit 1", (self.name,)):
            return None

        def take(conn: Any) -> bytes | None:
            row = conn.execute(
                "select id, data from task where queue = ? order by priority desc, id limit 1",
                (self.name,),
            ).fetchone()
            if row is None:
                return None
            conn.execute("delete from task where id = ?", (row[0],))
            return bytes(row[1])

        return self._write(take)

    def queue_size(self) -> int:
        """Number of queued messages."""
        return int(self._read("select count(*) from task where queue = ?", (self.name,))[0][0])

    def enqueued_items(self, limit: int | None = None) -> list[bytes]:
        """The next ``limit`` messages in dequeue order."""
        rows = self._read(
            "select data from task where queue = ? order by priority desc, id limit ?",
            (self.name, -1 if limit is None else limit),
        )
        return [bytes(row[0]) for row in rows]

    def flush_queue(self) -> None:
        """Delete every queued message of this queue."""
        self._write(lambda c: c.execute("delete from task where queue = ?", (self.name,)))

    # -- schedule ------------------------------------------------------------------------
    def add_to_schedule(self, data: bytes, ts: datetime.datetime) -> None:
        """Store a message due at ``ts`` (a naive datetime, stored as ``ts.timestamp()``)."""
        params = (self.name, data, ts.timestamp())
        self._write(
            lambda c: c.execute(
                "insert into schedule (queue, data, timestamp) values (?, ?, ?)", params
            )
        )

    def read_schedule(self, ts: datetime.datetime) -> list[bytes]:
        """Remove and return every message due at or before ``ts``, soonest first."""
        return self._write(lambda conn: self._take_due(conn, ts))

    def _take_due(self, conn: Any, ts: datetime.datetime) -> list[bytes]:
        """Delete the messages due at ``ts`` from the schedule and return them, soonest
        first (inside a write transaction)."""
        rows = conn.execute(
            "select id, data from schedule where queue = ? and timestamp <= ? "
            "order by timestamp, id",
            (self.name, ts.timestamp()),
        ).fetchall()
        ids = [row[0] for row in rows]
        for start in range(0, len(ids), DELETE_CHUNK):
            chunk = ids[start : start + DELETE_CHUNK]
            marks = ", ".join("?" * len(chunk))
            conn.execute(f"delete from schedule where id in ({marks})", chunk)
        return [bytes(row[1]) for row in rows]

    def schedule_size(self) -> int:
        """Number of scheduled messages."""
        rows = self._read("select count(*) from schedule where queue = ?", (self.name,))
        return int(rows[0][0])

    def scheduled_items(self, limit: int | None = None) -> list[bytes]:
        """The first ``limit`` scheduled messages, soonest first."""
        rows = self._read(
            "select data from schedule where queue = ? order by timestamp, id limit ?",
            (self.name, -1 if limit is None else limit),
        )
        return [bytes(row[0]) for row in rows]

    def flush_schedule(self) -> None:
        """Delete every scheduled message of this queue."""
        self._write(lambda c: c.execute("delete from schedule where queue = ?", (self.name,)))

    # -- key/value -----------------------------------------------------------------------
    def _has_expiry(self) -> bool:
        """Whether the expiry table exists (once seen it is remembered)."""
        if not self._expiry_known:
            rows = self._read(
                "select 1 from sqlite_master where type = 'table' and name = ?", (EXPIRY_TABLE,)
            )
            self._expiry_known = bool(rows)
        return self._expiry_known

    def _select_kv(self, columns: str, where: str, params: tuple[Any, ...]) -> list[Any]:
        """Select live kv rows of this queue (expired keys are filtered out)."""
        sql = f"select {columns} from kv where queue = ?{where}"
        params = (self.name, *params)
        if self._has_expiry():
            sql += " and " + _LIVE
            params = (*params, time.time())
        return self._read(sql, params)

    def _purge_expired(self, conn: Any, key: str) -> None:
        """Delete ``key`` if it has expired (inside a write), so it can be stored again."""
        if not self._expiry_known:
            return
        expired = f"select key from {EXPIRY_TABLE} where queue = ? and key = ? and expires_at <= ?"
        params = (self.name, self.name, key, time.time())
        conn.execute(f"delete from kv where queue = ? and key in ({expired})", params)
        conn.execute(f"delete from {EXPIRY_TABLE} where queue = ? and key in ({expired})", params)

    def _forget_expiry(self, conn: Any, key: str) -> None:
        if self._expiry_known:
            conn.execute(
                f"delete from {EXPIRY_TABLE} where queue = ? and key = ?", (self.name, key)
            )

    def _put_row(self, conn: Any, key: str, value: bytes) -> None:
        """Upsert ``key`` inside a write; a value written this way never expires."""
        conn.execute(
            "insert or replace into kv (queue, key, value) values (?, ?, ?)",
            (self.name, key, value),
        )
        self._forget_expiry(conn, key)

    def _pop_row(self, conn: Any, key: str) -> bytes | type[EmptyData]:
        """Delete ``key`` inside a write; return its live value or ``EmptyData``."""
        self._purge_expired(conn, key)
        row = conn.execute(
            "select value from kv where queue = ? and key = ?", (self.name, key)
        ).fetchone()
        if row is None:
            return EmptyData
        conn.execute("delete from kv where queue = ? and key = ?", (self.name, key))
        self._forget_expiry(conn, key)
        return bytes(row[0])

    def put_data(self, key: str, value: bytes, is_result: bool = False) -> None:
        """Upsert ``key``; a value written this way never expires."""
        self._has_expiry()
        self._write(lambda conn: self._put_row(conn, key, value))

    def peek_data(self, key: str) -> bytes | type[EmptyData]:
        """The value of ``key`` or ``EmptyData``."""
        rows = self._select_kv("value", " and key = ?", (key,))
        return bytes(rows[0][0]) if rows else EmptyData

    def peek_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """``{key: value}`` for the existing ones of ``keys``, in chunked queries."""
        key_list = list(dict.fromkeys(keys))
        found: dict[str, bytes] = {}
        for start in range(0, len(key_list), DELETE_CHUNK):
            chunk = key_list[start : start + DELETE_CHUNK]
            marks = ", ".join("?" * len(chunk))
            for key, value in self._select_kv("key, value", f" and key in ({marks})", tuple(chunk)):
                found[key] = bytes(value)
        return found

    def pop_data(self, key: str) -> bytes | type[EmptyData]:
        """Remove and return the value of ``key``, or ``EmptyData``."""
        self._has_expiry()
        return self._write(lambda conn: self._pop_row(conn, key))

    def delete_data(self, key: str) -> bool:
        """Delete ``key``; return whether a live value existed."""
        return self.pop_data(key) is not EmptyData

    def has_data_for_key(self, key: str) -> bool:
        """Whether ``key`` holds a live value."""
        return bool(self._select_kv("1", " and key = ?", (key,)))

    def put_if_empty(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        """Atomically store ``value`` if ``key`` is absent or expired; return whether stored.

        With ``ttl`` (seconds) the key reads as absent once the ttl has passed.
        """
        if ttl is not None and ttl <= 0:
            raise ValueError(
                f"put_if_empty() ttl must be a positive number of seconds, got {ttl!r}"
            )
        self._has_expiry()

        def put(conn: Any) -> bool:
            self._purge_expired(conn, key)
            try:
                conn.execute(
                    "insert into kv (queue, key, value) values (?, ?, ?)", (self.name, key, value)
                )
            except sqlite3.IntegrityError:
                return False
            self._forget_expiry(conn, key)
            if ttl is not None:
                conn.execute(_EXPIRY_DDL)
                conn.execute(
                    f"insert or replace into {EXPIRY_TABLE} (queue, key, expires_at) "
                    "values (?, ?, ?)",
                    (self.name, key, time.time() + ttl),
                )
            return True

        stored = self._write(put)
        if stored and ttl is not None:
            self._expiry_known = True
        return stored

    def result_store_size(self) -> int:
        """Number of live keys in the key/value store of this queue."""
        return int(self._select_kv("count(*)", "", ())[0][0])

    def result_items(self) -> dict[str, bytes]:
        """Every live key of this queue with its raw value."""
        return {str(key): bytes(value) for key, value in self._select_kv("key, value", "", ())}

    def flush_results(self) -> None:
        """Delete every key of this queue (and their expiry times)."""
        self._has_expiry()

        def flush(conn: Any) -> None:
            conn.execute("delete from kv where queue = ?", (self.name,))
            if self._expiry_known:
                conn.execute(f"delete from {EXPIRY_TABLE} where queue = ?", (self.name,))

        self._write(flush)

    # -- counters ------------------------------------------------------------------------
    def incr(self, key: str, amount: int = 1) -> int:
        """Atomically add ``amount`` to the counter ``key``; return the new value."""
        params = (self.name, key)

        def add(conn: Any) -> int:
            conn.execute(
                "insert into counter (queue, key, value) values (?, ?, ?) "
                "on conflict (queue, key) do update set value = value + excluded.value",
                (*params, amount),
            )
            row = conn.execute(
                "select value from counter where queue = ? and key = ?", params
            ).fetchone()
            return int(row[0])

        return self._write(add)

    def delete_counter(self, key: str) -> None:
        """Delete the counter ``key``."""
        params = (self.name, key)
        self._write(lambda c: c.execute("delete from counter where queue = ? and key = ?", params))

    def flush_counters(self) -> None:
        """Delete every counter of this queue."""
        self._write(lambda c: c.execute("delete from counter where queue = ?", (self.name,)))


class SqliteStorage(BaseSqlStorage):
    """Storage in one SQLite database file, shareable by several consumer processes.

    :param name: queue name.
    :param filename: database file (``':memory:'`` is private to one storage object).
    :param cache_mb: page cache size in MiB (``PRAGMA cache_size``); falsy skips it.
    :param fsync: True sets ``synchronous = 2`` (FULL), False sets 0 (OFF), None leaves
        SQLite's default.
    :param journal_mode: ``PRAGMA journal_mode`` (WAL by default); None skips it.
    :param timeout: busy timeout in seconds.
    :param strict_fifo: never reuse task ids (AUTOINCREMENT); only when creating the table.
    :param create_tables: create the tables at construction.
    :param blocking: (huey-ng) as :class:`BaseSqlStorage`'s, like ``read_timeout`` and
        ``poll_interval``: a take on an empty queue waits for a message.
    :param kwargs: passed to ``sqlite3.connect``.
    """

    def __init__(
        self,
        name: str = "huey",
        filename: str = "huey.db",
        cache_mb: int | None = 8,
        fsync: bool | None = None,
        journal_mode: str | None = "wal",
        timeout: float = 5,
        strict_fifo: bool = False,
        create_tables: bool = True,
        blocking: bool = True,
        read_timeout: float = 1,
        poll_interval: float = 0.001,
        **kwargs: Any,
    ) -> None:
        self.filename = str(filename)
        self.pragmas: list[tuple[str, Any]] = []
        if journal_mode:
            self.pragmas.append(("journal_mode", journal_mode))
        if cache_mb:
            self.pragmas.append(("cache_size", -1000 * cache_mb))
        if fsync is not None:
            self.pragmas.append(("synchronous", 2 if fsync else 0))
        self.connect_kwargs = kwargs
        super().__init__(
            name, timeout, strict_fifo, create_tables, blocking, read_timeout, poll_interval
        )

    def _connect(self) -> Any:
        conn = sqlite3.connect(
            self.filename,
            timeout=self.timeout,
            check_same_thread=False,
            isolation_level=None,
            **self.connect_kwargs,
        )
        try:
            for pragma, value in self.pragmas:
                self._set_pragma(conn, pragma, value)
        except BaseException:
            conn.close()
            raise
        return conn

    def _set_pragma(self, conn: Any, pragma: str, value: Any) -> None:
        # Switching to WAL needs a moment without other writers: retry while locked.
        deadline = time.monotonic() + max(self.timeout, 1) * LOCK_RETRIES
        while True:
            try:
                conn.execute(f"pragma {pragma} = {value}").fetchall()
                return
            except sqlite3.OperationalError as exc:
                if not _is_locked(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


class CySqliteStorage(SqliteStorage):
    """The SQLite storage for deployments that use the ``cysqlite`` driver (upstream 3.3).

    It takes an open-ended ``pragmas`` dict; the legacy ``cache_mb``, ``fsync`` and
    ``journal_mode`` kwargs are translated into pragmas, and ``journal_mode`` defaults to
    WAL. The database format is the same as :class:`SqliteStorage`'s. The statements run
    through the standard ``sqlite3`` module (same SQLite semantics); the ``cysqlite``
    requirement is kept so a deployment configured for upstream fails the same way.

    :raises ConfigurationError: when the ``cysqlite`` module is not installed.
    """

    def __init__(
        self,
        name: str = "huey",
        filename: str = "huey.db",
        pragmas: dict[str, Any] | None = None,
        timeout: float = 5,
        strict_fifo: bool = False,
        create_tables: bool = True,
        **kwargs: Any,
    ) -> None:
        try:
            import cysqlite  # noqa: F401
        except ImportError:
            raise ConfigurationError(
                "CySqliteStorage needs the 'cysqlite' module: pip install cysqlite "
                "(or use SqliteStorage, which needs only the standard library)"
            )
        merged: dict[str, Any] = {"journal_mode": kwargs.pop("journal_mode", "wal")}
        if kwargs.get("cache_mb"):
            merged["cache_size"] = -1000 * kwargs["cache_mb"]
        kwargs.pop("cache_mb", None)
        fsync = kwargs.pop("fsync", None)
        if fsync is not None:
            merged["synchronous"] = 2 if fsync else 0
        merged.update(pragmas or {})
        super().__init__(
            name,
            filename,
            cache_mb=None,
            journal_mode=None,
            timeout=timeout,
            strict_fifo=strict_fifo,
            create_tables=False,
            **kwargs,
        )
        self.pragmas = [(key, value) for key, value in merged.items() if value is not None]
        if create_tables:
            self.initialize_schema()
