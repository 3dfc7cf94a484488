"""PostgreSQL storage (spec §15.6) on psycopg 3, with LISTEN/NOTIFY wake-ups.

Tables are exactly upstream huey's (``wire-samples/postgres-schema.sql``):
``<prefix>_task``, ``<prefix>_schedule``, ``<prefix>_kv`` and ``<prefix>_counter``, so
upstream huey and huey-ng can share one database.

**Connections.** One autocommit connection per thread (plus, in threads that block in
``dequeue`` or ``wait_result``, one LISTEN connection), opened lazily. A closed or broken
connection is replaced on next use and the failed operation is retried once, except
``incr`` (a retry could count twice). ``close()`` closes every connection of this process; a
forked child never touches its parent's connections and opens its own.

**Wake-ups.** ``enqueue`` notifies ``<prefix>.q.<name>`` (or ``huey.q.<md5>`` past 63 bytes)
in the same statement; a blocking ``dequeue`` with an empty queue waits on that channel for up
to ``read_timeout``. Results (``put_data(..., is_result=True)``) notify ``<prefix>.r.<name>``
(``hueyng.r.<md5>`` when long) with the key as payload, so ``wait_result`` sleeps until its
result arrives instead of polling.

**ttl.** ``put_if_empty(key, value, ttl)`` keeps the value in ``<prefix>_kv`` (upstream
readers see it) and its deadline in the huey-ng table ``<prefix>ng_kv_expiry``, created on
first use. A deadline row names the ``xmin`` of the kv row it belongs to, so it stops applying
as soon as that row is replaced or deleted; upstream's tables are never altered.

**Leased delivery and huey-ng state** live in tables of their own, created on first use
(see :mod:`huey.storage._postgres_leases`).
"""

from __future__ import annotations

import datetime
import hashlib
import os
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from huey.constants import EmptyData
from huey.exceptions import ConfigurationError
from huey.storage._base import BaseStorage
from huey.storage._postgres_leases import _NOW, Params, PostgresLeasesMixin, T, _ng_queries
from huey.storage._wakeup import take_waiting

_INSTALL_HINT = "pip install 'huey-ng[postgres]'"
_UNSAFE = re.compile(r"[^A-Za-z0-9_]")
#: Default seconds libpq waits for a connection, so a dead server fails fast.
DEFAULT_CONNECT_TIMEOUT = 5
_MAX_CHANNEL = 63  # PostgreSQL identifiers (and so channel names) are at most 63 bytes
_MAX_PAYLOAD = 7999


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - exercised without the extra only
        raise ConfigurationError(f"PostgresStorage needs psycopg 3: {_INSTALL_HINT}") from exc
    return psycopg


def channel_name(prefix: str, kind: str, name: str, long_prefix: str) -> str:
    """``<prefix>.<kind>.<name>``, or ``<long_prefix>.<kind>.<md5>`` past 63 bytes."""
    channel = f"{prefix}.{kind}.{name}"
    if len(channel.encode()) > _MAX_CHANNEL:
        digest = hashlib.md5(channel.encode()).hexdigest()
        channel = f"{long_prefix}.{kind}.{digest}"
    return channel


class PostgresStorage(PostgresLeasesMixin, BaseStorage):
    """Queue, schedule, results and counters in PostgreSQL tables.

    :param name: queue name (the ``queue`` column).
    :param dsn: libpq connection string or URL, for ``psycopg.connect``.
    :param connection: a zero-argument callable returning a new psycopg connection
        (instead of ``dsn`` / connection params).
    :param blocking: when the queue is empty, wait on LISTEN up to ``read_timeout``.
        Use ``blocking=False`` behind PgBouncer in transaction mode.
    :param read_timeout: seconds a blocking dequeue waits.
    :param table_prefix: table name prefix, sanitised to ``[A-Za-z0-9_]``.
    :param create_tables: run :meth:`initialize_schema` now.
    :param connection_params: extra ``psycopg.connect`` keywords (``application_name``,
        ``connect_timeout`` (default 5 s), ``password``, ...).
    """

    blocking = True
    priority = True

    def __init__(
        self,
        name: str = "huey",
        dsn: str | None = None,
        connection: Callable[[], Any] | None = None,
        blocking: bool = True,
        read_timeout: float = 1,
        table_prefix: str = "huey",
        create_tables: bool = True,
        **connection_params: Any,
    ) -> None:
        self._pg = _psycopg()
        super().__init__(name)
        if connection is not None and (dsn is not None or connection_params):
            raise ConfigurationError(
                "give either connection (a callable returning a new connection) or "
                "dsn / connection params to PostgresStorage, not both"
            )
        if connection is not None and not callable(connection):
            raise ConfigurationError(
                "connection must be a zero-argument callable that returns a new psycopg "
                f"connection, got {connection!r}"
            )
        if blocking and not read_timeout > 0:
            raise ConfigurationError(
                f"read_timeout must be a positive number of seconds, got {read_timeout!r}"
            )
        prefix = _UNSAFE.sub("", table_prefix)
        if not prefix:
            raise ConfigurationError(f"table_prefix {table_prefix!r} has no usable characters")
        self.blocking = blocking
        self.read_timeout = read_timeout
        self.table_prefix = prefix
        self.dsn = dsn
        self._factory = connection
        self._params = dict(connection_params)
        if connection is None and "connect_timeout" not in self._params:
            from psycopg.conninfo import conninfo_to_dict

            if "connect_timeout" not in conninfo_to_dict(dsn or ""):
                self._params["connect_timeout"] = DEFAULT_CONNECT_TIMEOUT
        self.queue_channel = channel_name(prefix, "q", name, "huey")
        self.result_channel = channel_name(prefix, "r", name, "hueyng")
        self._sql = _queries(prefix)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._pid = os.getpid()
        self._conns: weakref.WeakSet[Any] = weakref.WeakSet()
        self._orphans: list[Any] = []  # a forked child's inherited connections: never closed
        self._expiry_exists = False
        self._expiry_checked = float("-inf")
        self._ng_ready = False
        self._claims_purged = float("-inf")
        if create_tables:
            self.initialize_schema()

    # -- connections ---------------------------------------------------------------------
    def _new_connection(self) -> Any:
        if self._factory is not None:
            conn = self._factory()
            conn.autocommit = True
        else:
            conn = self._pg.connect(self.dsn or "", autocommit=True, **self._params)
        with self._lock:
            self._conns.add(conn)
        return conn

    def _check_fork(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():
                # Closing the parent's sockets would end its sessions: keep them referenced.
                self._orphans.extend(self._conns)
                self._conns = weakref.WeakSet()
                self._local = threading.local()
                self._pid = os.getpid()

    def _conn(self) -> Any:
        self._check_fork()
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.broken:
            conn = self._local.conn = self._new_connection()
        return conn

    def _run(self, fn: Callable[[Any], T], retry: bool = True) -> T:
        """Run ``fn(connection)``; on a lost connection reconnect and retry once."""
        conn = self._conn()
        try:
            return fn(conn)
        except self._pg.OperationalError:
            if not (conn.closed or conn.broken):
                raise  # e.g. a cancelled query: the connection itself is fine
            self._local.conn = None
            if not retry:
                raise
        return fn(self._conn())

    def _fetchall(self, query: str, params: Params = (), retry: bool = True) -> Any:
        return self._run(lambda c: c.execute(query, params).fetchall(), retry)

    def _fetchone(self, query: str, params: Params = (), retry: bool = True) -> Any:
        return self._run(lambda c: c.execute(query, params).fetchone(), retry)

    def _rowcount(self, query: str, params: Params = ()) -> int:
        return int(self._run(lambda c: c.execute(query, params).rowcount))

    def close(self) -> bool | None:
        """Close every connection this process opened; they reopen lazily when needed."""
        self._check_fork()
        with self._lock:
            conns = list(self._conns)
            self._conns = weakref.WeakSet()
            self._local = threading.local()
        for conn in conns:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing a dead connection must not fail
                pass
        return True

    def initialize_schema(self) -> None:
        """Create the four tables and two indexes if missing (safe to run concurrently)."""

        def ddl(conn: Any) -> None:
            with conn.transaction():
                # Concurrent CREATE ... IF NOT EXISTS can still collide: serialise it.
                conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (self._sql["lock"],))
                for statement in self._sql["schema"].split(";"):
                    if statement.strip():
                        conn.execute(statement)

        self._run(ddl)

    # -- queue ---------------------------------------------------------------------------
    def enqueue(self, data: bytes, priority: float | None = None) -> None:
        params = (self.name, data, float(priority or 0), self.queue_channel)
        self._fetchall(self._sql["enqueue"], params)

    def enqueue_many(self, items: Iterable[tuple[bytes, float | None]]) -> None:
        """Insert several messages in one transaction (one notification wakes consumers)."""
        rows = [(self.name, data, float(priority or 0)) for data, priority in items]
        if not rows:
            return
        insert = self._sql["enqueue_many"]

        def run(conn: Any) -> None:
            with conn.transaction():
                conn.cursor().executemany(insert, rows)
                conn.execute("select pg_notify(%s, '')", (self.queue_channel,))

        self._run(run)

    def _dequeue_once(self) -> bytes | None:
        row = self._fetchone(self._sql["dequeue"], (self.name,))
        return None if row is None else bytes(row[0])

    def dequeue(self) -> bytes | None:
        """Take the next message; when blocking, wait for a NOTIFY up to ``read_timeout``."""
        return self._take_blocking(self._dequeue_once)

    def _take_blocking(self, take: Callable[[], T | None]) -> T | None:
        """``take()``; when blocking and it finds nothing, wait for an enqueue's NOTIFY.

        One thread of the process waits at a time (see :mod:`huey.storage._wakeup`), on a
        LISTEN connection the process's takers share: it stays subscribed, so an enqueue
        notified while no thread was waiting still wakes the next waiter.
        """
        if not self.blocking:
            return take()

        def take_now() -> list[T]:
            data = take()
            return [] if data is None else [data]

        def wait_and_take(seconds: float) -> list[T] | None:
            listener = self._take_listener()  # subscribed before the take: nothing slips by
            found = take_now()
            if found:
                return found
            if self._wait_notify(listener, self.queue_channel, seconds):
                return take_now()
            if listener.closed or listener.broken:
                return None  # end the wait: the next call reconnects (or reports the outage)
            return []

        taken = take_waiting(self, self.read_timeout, take_now, wait_and_take)
        return taken[0] if taken else None

    def queue_size(self) -> int:
        return int(self._fetchone(self._sql["queue_size"], (self.name,))[0])

    def enqueued_items(self, limit: int | None = None) -> list[bytes]:
        rows = self._fetchall(self._sql["enqueued_items"], (self.name, limit))
        return [bytes(row[0]) for row in rows]

    def flush_queue(self) -> None:
        self._rowcount(self._sql["flush_queue"], (self.name,))

    # -- schedule ------------------------------------------------------------------------
    def add_to_schedule(self, data: bytes, ts: datetime.datetime) -> None:
        self._rowcount(self._sql["add_to_schedule"], (self.name, data, ts.timestamp()))

    def read_schedule(self, ts: datetime.datetime) -> list[bytes]:
        rows = self._fetchall(self._sql["read_schedule"], (self.name, ts.timestamp()))
        return [bytes(data) for _, _, data in sorted(rows, key=lambda r: (r[0], r[1]))]

    def schedule_size(self) -> int:
        return int(self._fetchone(self._sql["schedule_size"], (self.name,))[0])

    def scheduled_items(self, limit: int | None = None) -> list[bytes]:
        rows = self._fetchall(self._sql["scheduled_items"], (self.name, limit))
        return [bytes(row[0]) for row in rows]

    def flush_schedule(self) -> None:
        self._rowcount(self._sql["flush_schedule"], (self.name,))

    # -- results / key-value -------------------------------------------------------------
    def _has_expiry(self) -> bool:
        """Whether the huey-ng expiry table exists (re-checked every 30 s until it does)."""
        if not self._expiry_exists and time.monotonic() - self._expiry_checked > 30:
            row = self._fetchone("select to_regclass(%s)", (self._sql["expiry_table"],))
            self._expiry_exists = row[0] is not None
            self._expiry_checked = time.monotonic()
        return self._expiry_exists

    def _ensure_expiry(self) -> None:
        if not self._has_expiry():
            self._run(lambda c: c.execute(self._sql["expiry_schema"]))
            self._expiry_exists = True

    def _q(self, name: str) -> str:
        """The expiry-aware variant of a KV query once the expiry table exists."""
        return self._sql[name + "_x" if self._has_expiry() else name]

    def _put_statement(self, key: str, value: bytes, is_result: bool) -> tuple[str, Any]:
        """The statement and parameters of ``put_data`` (shared with ``apply_writes``)."""
        if is_result:
            payload = key if len(key.encode()) <= _MAX_PAYLOAD else ""
            return self._sql["put_result"], (self.name, key, value, self.result_channel, payload)
        return self._sql["put_data"], (self.name, key, value)

    def put_data(self, key: str, value: bytes, is_result: bool = False) -> None:
        query, params = self._put_statement(key, value, is_result)
        self._run(lambda conn: conn.execute(query, params))

    def peek_data(self, key: str) -> bytes | type[EmptyData]:
        row = self._fetchone(self._q("peek"), (self.name, key))
        return EmptyData if row is None else bytes(row[0])

    def peek_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        keys = list(keys)
        if not keys:
            return {}
        rows = self._fetchall(self._q("peek_many"), (self.name, keys))
        return {key: bytes(value) for key, value in rows}

    def pop_data(self, key: str) -> bytes | type[EmptyData]:
        row = self._fetchone(self._q("pop"), (self.name, key))
        if row is None or row[1]:  # row[1]: the value had expired
            return EmptyData
        return bytes(row[0])

    def delete_data(self, key: str) -> bool:
        return self.pop_data(key) is not EmptyData

    def has_data_for_key(self, key: str) -> bool:
        return self._fetchone(self._q("peek"), (self.name, key)) is not None

    def put_if_empty(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        if ttl is not None:
            if ttl <= 0:
                raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
            self._ensure_expiry()
        elif not self._has_expiry():
            return self._rowcount(self._sql["put_if_empty"], (self.name, key, value)) == 1

        def put(conn: Any) -> bool:
            with conn.transaction():
                conn.execute(self._sql["purge_expired"], (self.name, key))
                row = conn.execute(self._sql["insert_xmin"], (self.name, key, value)).fetchone()
                if row is not None and ttl is not None:
                    conn.execute(self._sql["set_expiry"], (self.name, key, row[0], ttl))
            return row is not None

        return self._run(put)

    def result_store_size(self) -> int:
        return int(self._fetchone(self._q("result_size"), (self.name,))[0])

    def result_items(self) -> dict[str, bytes]:
        rows = self._fetchall(self._q("result_items"), (self.name,))
        return {key: bytes(value) for key, value in rows}

    def flush_results(self) -> None:
        self._rowcount(self._sql["flush_results"], (self.name,))
        if self._has_expiry():
            self._rowcount(self._sql["flush_expiry"], (self.name,))

    # -- waiting (LISTEN) ----------------------------------------------------------------
    def _take_listener(self) -> Any:
        """The LISTEN connection of this process's waiting takes (only the thread holding
        the wait gate uses it), subscribed to the queue channel."""
        self._check_fork()
        entry = self.__dict__.get("_take_listen")
        if entry is not None and entry[0] == self._pid and not (entry[1].closed or entry[1].broken):
            return entry[1]
        conn = self._new_connection()
        try:
            sql = self._pg.sql
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.queue_channel)))
        except BaseException:
            conn.close()
            raise
        self._take_listen = (self._pid, conn)
        return conn

    def _listener(self) -> Any:
        """This thread's connection for waiting on results."""
        self._check_fork()
        conn = getattr(self._local, "listener", None)
        if conn is None or conn.closed or conn.broken:
            conn = self._local.listener = self._new_connection()
        return conn

    def _subscribed_query(self, conn: Any, query: str, params: Params, subscribe: str) -> Any:
        """Run ``query`` on ``conn`` and return its first row; with ``subscribe`` (``LISTEN``
        or ``UNLISTEN``), (un)subscribe the result channel in the same round trip.

        A client-side bound cursor sends the statements as one simple query. LISTEN commits
        on its own before the query runs, so a result committed after the query's snapshot
        is always notified; UNLISTEN commits with the query.
        """
        sql = self._pg.sql
        if not subscribe:
            return conn.execute(query, params).fetchone()
        channel = sql.SQL(subscribe + " {}").format(sql.Identifier(self.result_channel))
        cursor = self._pg.ClientCursor(conn)
        try:
            if subscribe == "LISTEN":
                statements = sql.SQL("BEGIN; ") + channel + sql.SQL("; COMMIT; ") + sql.SQL(query)
                cursor.execute(statements, params)
                while cursor.nextset():  # the query's rows come last
                    pass
            else:
                cursor.execute(sql.SQL(query) + sql.SQL("; ") + channel, params)
        except self._pg.Error:
            conn.close()  # a private connection, maybe left inside a failed BEGIN: renew it
            raise
        return cursor.fetchone()

    def _wait_notify(
        self, conn: Any, channel: str, timeout: float, payload: str | None = None
    ) -> bool:
        """Wait up to ``timeout`` for a notification on ``channel`` (matching ``payload``).

        A connection that fails is closed (its next user opens a new one).
        """
        try:
            for note in conn.notifies(timeout=timeout):
                if note.channel == channel and (payload is None or note.payload in (payload, "")):
                    return True
        except self._pg.OperationalError:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing a dead connection must not fail
                pass
        return False

    def _wait_for_key(
        self,
        key: str,
        timeout: float | None,
        max_delay: float,
        probe: Callable[[Any, str], T | None],
    ) -> T | None:
        """Wait for ``key`` until ``probe(conn, subscribe)`` finds it; None on timeout.

        ``probe`` looks the key up on ``conn`` (the thread's listener), (un)subscribing the
        result channel in the same round trip (``_subscribed_query``): LISTEN with the first
        look, UNLISTEN with the look that follows a wake-up (an idle listener would let
        notifications pile up). The key is also looked up after every round of
        ``max_delay`` seconds, for writers that do not notify (upstream huey).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        round_limit = max(max_delay, 0.05)
        conn, listening = None, False
        try:
            while True:
                if not listening or conn is None or conn.closed or conn.broken:
                    conn, listening = self._listener(), True
                    found = probe(conn, "LISTEN")
                    if found is not None:
                        return found
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                wait = round_limit if remaining is None else min(round_limit, remaining)
                if self._wait_notify(conn, self.result_channel, wait, key):
                    listening = False
                    found = probe(conn, "UNLISTEN")
                elif conn.closed or conn.broken:
                    continue
                else:
                    found = probe(conn, "")
                if found is not None:
                    return found
        finally:
            if listening and conn is not None and not (conn.closed or conn.broken):
                self._unlisten(conn)

    def _unlisten(self, conn: Any) -> None:
        sql = self._pg.sql
        try:
            conn.execute(sql.SQL("UNLISTEN {}").format(sql.Identifier(self.result_channel)))
        except self._pg.Error:
            conn.close()

    def wait_result(
        self,
        key: str,
        timeout: float | None = None,
        backoff: float = 1.15,
        max_delay: float = 1.0,
    ) -> bool:
        """Wait for ``key``, woken by the NOTIFY that ``put_data(is_result=True)`` sends.

        ``timeout=None`` waits forever and ``timeout=0`` checks once. The key is re-checked
        at least every ``max_delay`` seconds, so writers that do not notify (upstream huey)
        are still seen. A lost connection returns False. A wait that is woken costs two
        round trips (LISTEN with the first look-up, UNLISTEN with the last).
        """

        def probe(conn: Any, subscribe: str) -> bool | None:
            row = self._subscribed_query(conn, self._q("peek"), (self.name, key), subscribe)
            return True if row is not None else None

        try:
            if timeout is not None and timeout <= 0:
                return self.has_data_for_key(key)
            return bool(self._wait_for_key(key, timeout, max_delay, probe))
        except self._pg.OperationalError:
            return False

    def wait_and_read(
        self,
        key: str,
        timeout: float | None = None,
        backoff: float = 1.15,
        max_delay: float = 1.0,
        peek: bool = False,
    ) -> bytes | type[EmptyData]:
        """``wait_result`` then ``pop_data`` (``peek_data`` with ``peek``), in fewer round
        trips: the read that follows a wake-up goes with the UNLISTEN, so a woken wait costs
        two round trips in all. ``EmptyData`` on timeout or a lost connection.
        """
        if timeout is not None and timeout <= 0:
            return self._read_data(key, peek)
        query = self._q("peek" if peek else "pop")

        def probe(conn: Any, subscribe: str) -> bytes | None:
            row = self._subscribed_query(conn, query, (self.name, key), subscribe)
            if row is None or (not peek and row[1]):  # row[1]: the popped value had expired
                return None
            return bytes(row[0])

        try:
            value = self._wait_for_key(key, timeout, max_delay, probe)
        except self._pg.OperationalError:
            return EmptyData
        return EmptyData if value is None else value

    # -- counters ------------------------------------------------------------------------
    def incr(self, key: str, amount: int = 1) -> int:
        row = self._fetchone(self._sql["incr"], (self.name, key, amount), retry=False)
        return int(row[0])

    def delete_counter(self, key: str) -> None:
        self._rowcount(self._sql["delete_counter"], (self.name, key))

    def flush_counters(self) -> None:
        self._rowcount(self._sql["flush_counters"], (self.name,))


def _queries(p: str) -> dict[str, str]:
    """Every statement, for table prefix ``p`` (already sanitised, so safe to inline)."""
    kv, task, sched, counter, exp = (f"{p}_kv", f"{p}_task", f"{p}_schedule",
                                     f"{p}_counter", f"{p}ng_kv_expiry")  # fmt: skip
    # A kv row is expired when its deadline row (same xmin) has passed.
    expired = (
        f"exists (select 1 from {exp} e where e.queue = k.queue and e.key = k.key "
        f"and e.kv_xmin = k.xmin::text::bigint and e.expires_at <= {_NOW})"
    )
    live = f"not {expired}"
    return {
        "lock": f"hueyng.schema.{p}",
        "expiry_table": exp,
        "schema": f"""
            create table if not exists {kv} (queue text not null, key text not null,
                value bytea not null, primary key (queue, key));
            create table if not exists {sched} (id bigserial primary key, queue text not null,
                data bytea not null, "timestamp" double precision not null);
            create index if not exists {sched}_queue_timestamp on {sched} (queue, "timestamp");
            create table if not exists {task} (id bigserial primary key, queue text not null,
                data bytea not null, priority double precision not null default 0.0);
            create index if not exists {task}_queue_priority_id on {task}
                (queue, priority desc, id);
            create table if not exists {counter} (queue text not null, key text not null,
                value bigint not null default 0, primary key (queue, key))""",
        "expiry_schema": f"""create table if not exists {exp} (queue text not null,
            key text not null, kv_xmin bigint not null, expires_at double precision not null,
            primary key (queue, key))""",
        "enqueue": f"""with t as (insert into {task} (queue, data, priority)
            values (%s, %s, %s) returning id) select pg_notify(%s, '') from t""",
        "enqueue_many": f"insert into {task} (queue, data, priority) values (%s, %s, %s)",
        "dequeue": f"""delete from {task} where id = (select id from {task} where queue = %s
            order by priority desc, id limit 1 for update skip locked) returning data""",
        "queue_size": f"select count(*) from {task} where queue = %s",
        "enqueued_items": f"""select data from {task} where queue = %s
            order by priority desc, id limit %s""",
        "flush_queue": f"delete from {task} where queue = %s",
        "add_to_schedule": f"""insert into {sched} (queue, data, "timestamp")
            values (%s, %s, %s)""",
        "read_schedule": f"""delete from {sched} where id in (select id from {sched}
            where queue = %s and "timestamp" <= %s for update skip locked)
            returning "timestamp", id, data""",
        "schedule_size": f"select count(*) from {sched} where queue = %s",
        "scheduled_items": f"""select data from {sched} where queue = %s
            order by "timestamp", id limit %s""",
        "flush_schedule": f"delete from {sched} where queue = %s",
        "put_data": f"""insert into {kv} (queue, key, value) values (%s, %s, %s)
            on conflict (queue, key) do update set value = excluded.value""",
        "put_result": f"""with t as (insert into {kv} (queue, key, value) values (%s, %s, %s)
            on conflict (queue, key) do update set value = excluded.value returning 1)
            select pg_notify(%s, %s) from t""",
        "peek": f"select value from {kv} k where queue = %s and key = %s",
        "peek_x": f"select value from {kv} k where queue = %s and key = %s and {live}",
        "peek_many": f"select key, value from {kv} k where queue = %s and key = any(%s)",
        "peek_many_x": f"""select key, value from {kv} k where queue = %s
            and key = any(%s) and {live}""",
        "pop": f"delete from {kv} k where queue = %s and key = %s returning value, false",
        "pop_x": f"""delete from {kv} k where queue = %s and key = %s
            returning value, {expired}""",
        "put_if_empty": f"""insert into {kv} (queue, key, value) values (%s, %s, %s)
            on conflict do nothing""",
        "purge_expired": f"delete from {kv} k where queue = %s and key = %s and {expired}",
        "insert_xmin": f"""insert into {kv} (queue, key, value) values (%s, %s, %s)
            on conflict do nothing returning xmin::text::bigint""",
        "set_expiry": f"""insert into {exp} (queue, key, kv_xmin, expires_at)
            values (%s, %s, %s, {_NOW} + %s) on conflict (queue, key) do update
            set kv_xmin = excluded.kv_xmin, expires_at = excluded.expires_at""",
        "result_size": f"select count(*) from {kv} k where queue = %s",
        "result_size_x": f"select count(*) from {kv} k where queue = %s and {live}",
        "result_items": f"select key, value from {kv} k where queue = %s",
        "result_items_x": f"select key, value from {kv} k where queue = %s and {live}",
        "flush_results": f"delete from {kv} where queue = %s",
        "flush_expiry": f"delete from {exp} where queue = %s",
        "incr": f"""insert into {counter} (queue, key, value) values (%s, %s, %s)
            on conflict (queue, key) do update set value = {counter}.value + excluded.value
            returning value""",
        "delete_counter": f"delete from {counter} where queue = %s and key = %s",
        "flush_counters": f"delete from {counter} where queue = %s",
        **_ng_queries(p),
    }
