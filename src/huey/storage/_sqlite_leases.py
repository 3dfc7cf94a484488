"""huey-ng's delivery state on SQLite: leases, delivery counts, dead letters, claims and
named leases, in ``hueyng_*`` tables beside upstream's (created on first use), and the
batched, waiting take of the consumer's hot path.

Mixed into :class:`~huey.storage._sqlite.BaseSqlStorage`, whose connection and
transaction helpers (``_write``, ``_read``) it uses.

The waiting take and ``wait_result`` live in :mod:`huey.storage._sqlite_wait`.
"""

from __future__ import annotations

import datetime
import hashlib
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from huey.constants import EmptyData
from huey.storage._base import DeadLetter, Delivery, WriteOp
from huey.storage._sqlite_wait import ChangeWatch, SqliteWaitMixin

T = TypeVar("T")
# Rows deleted (or renewed) per statement: stays under SQLite's bound-parameter limit.
DELETE_CHUNK = 500
# huey-ng's delivery state, created together on first use. A lease row holds a message
# taken out of ``task`` until it is acknowledged or its lease expires.
_NG_DDL = (
    "create table if not exists hueyng_lease (token text not null primary key, "
    "queue text not null, data blob not null, digest blob not null, "
    "priority real not null, expires_at real not null, count integer not null)",
    "create index if not exists hueyng_lease_queue_expires on hueyng_lease (queue, expires_at)",
    "create table if not exists hueyng_delivery (queue text not null, digest blob not null, "
    "count integer not null, primary key(queue, digest))",
    "create table if not exists hueyng_dead_letter (id integer not null primary key "
    "autoincrement, queue text not null, data blob not null, reason text not null, "
    "timestamp real not null)",
    "create index if not exists hueyng_dead_letter_queue_id on hueyng_dead_letter (queue, id)",
    "create table if not exists hueyng_claim (queue text not null, key text not null, "
    "expires_at real not null, primary key(queue, key))",
    "create table if not exists hueyng_named_lease (queue text not null, key text not null, "
    "owner text not null, expires_at real not null, primary key(queue, key))",
)
NG_TABLES = (
    "hueyng_lease",
    "hueyng_delivery",
    "hueyng_dead_letter",
    "hueyng_claim",
    "hueyng_named_lease",
)


class SqliteLeasesMixin(SqliteWaitMixin):
    """Leased delivery and huey-ng state for the SQLite storages."""

    name: str
    _ng_ready: bool
    _generation: int
    _change_watch: ChangeWatch
    blocking: bool
    read_timeout: float
    poll_interval: float

    if TYPE_CHECKING:  # provided by BaseSqlStorage

        def _write(self, fn: Callable[[Any], T], durable: bool = True) -> T: ...

        def _read(self, sql: str, params: Iterable[Any] = ()) -> list[Any]: ...

        def _locked(self) -> threading.Lock: ...

        def _connection(self) -> Any: ...

        def _has_expiry(self) -> bool: ...

        def _put_row(self, conn: Any, key: str, value: bytes) -> None: ...

        def _pop_row(self, conn: Any, key: str) -> bytes | type[EmptyData]: ...

        def has_data_for_key(self, key: str) -> bool: ...

        def _take_due(self, conn: Any, ts: datetime.datetime) -> list[bytes]: ...

    supports_leases = True

    def _ng_write(self, fn: Callable[[Any], T], durable: bool = True) -> T:
        """Run ``fn`` in one write transaction, creating huey-ng's tables first if needed."""

        def run(conn: Any) -> T:
            if not self._ng_ready:
                for statement in _NG_DDL:
                    conn.execute(statement)
            return fn(conn)

        result = self._write(run, durable)
        self._ng_ready = True
        return result

    def _ng_exists(self) -> bool:
        """Whether huey-ng's tables exist (they are created together; once seen, remembered)."""
        if not self._ng_ready:
            rows = self._read(
                "select 1 from sqlite_master where type = 'table' and name = 'hueyng_lease'"
            )
            self._ng_ready = bool(rows)
        return self._ng_ready

    # -- leased delivery -----------------------------------------------------------------
    def dequeue_leased(self, lease_seconds: float) -> Delivery | None:
        """Move the next message into a lease of ``lease_seconds`` (one transaction).

        When blocking and the queue is empty, waits up to ``read_timeout`` for one.
        """
        taken = self._take_waiting(lambda: self._take_many(lease_seconds, 1) or None)
        return taken[0] if taken else None

    def dequeue_leased_many(self, lease_seconds: float, limit: int) -> list[Delivery]:
        """Move up to ``limit`` messages (priority desc, id) into leases in one transaction.

        Each keeps the delivery count a single take gives it. When blocking and the queue
        is empty, waits up to ``read_timeout`` for messages.
        """
        limit = max(1, int(limit))
        return self._take_waiting(lambda: self._take_many(lease_seconds, limit) or None) or []

    def _take_many(self, lease_seconds: float, limit: int) -> list[Delivery]:
        # Cheap check first: polling an empty queue takes no write lock.
        if not self._read("select 1 from task where queue = ? limit 1", (self.name,)):
            return []

        def take(conn: Any) -> list[Delivery]:
            rows = conn.execute(
                "select id, data, priority from task where queue = ? "
                "order by priority desc, id limit ?",
                (self.name, limit),
            ).fetchall()
            if not rows:
                return []
            messages = [bytes(row[1]) for row in rows]
            digests = [hashlib.sha1(data).digest() for data in messages]
            previous = self._previous_counts(conn, digests)
            for start in range(0, len(rows), DELETE_CHUNK):
                ids = [row[0] for row in rows[start : start + DELETE_CHUNK]]
                conn.execute(f"delete from task where id in ({', '.join('?' * len(ids))})", ids)
            # Wall clock: the expiry is compared by other processes sharing the file.
            expires = time.time() + lease_seconds
            taken = [
                Delivery(data, uuid.uuid4().hex, 1 + previous.get(digest, 0))
                for data, digest in zip(messages, digests, strict=True)
            ]
            conn.executemany(
                "insert into hueyng_lease (token, queue, data, digest, priority, expires_at, "
                "count) values (?, ?, ?, ?, ?, ?, ?)",
                [
                    (d.token, self.name, d.data, digest, row[2], expires, d.count)
                    for d, digest, row in zip(taken, digests, rows, strict=True)
                ],
            )
            return taken

        # Not waiting for the fsync: lost by a power cut, the take leaves the messages queued.
        return self._ng_write(take, durable=False)

    def _previous_counts(self, conn: Any, digests: list[bytes]) -> dict[bytes, int]:
        """Delivery counts of messages delivered before (requeued or released)."""
        # A hueyng_delivery row exists only for a message delivered before; a first
        # delivery keeps its count in the lease row alone, so the table is usually empty.
        found: dict[bytes, int] = {}
        if not conn.execute(
            "select 1 from hueyng_delivery where queue = ? limit 1", (self.name,)
        ).fetchone():
            return found
        unique = list(dict.fromkeys(digests))
        for start in range(0, len(unique), DELETE_CHUNK):
            chunk = unique[start : start + DELETE_CHUNK]
            rows = conn.execute(
                "select digest, count from hueyng_delivery where queue = ? "
                f"and digest in ({', '.join('?' * len(chunk))})",
                (self.name, *chunk),
            ).fetchall()
            found.update((bytes(digest), int(count)) for digest, count in rows)
        return found

    def apply_writes(self, ops: Iterable[WriteOp]) -> None:
        """Apply results, deletes and acks in ONE transaction (acks last); all or nothing.

        A put has ``put_data``'s semantics (upsert, the key no longer expires) and a delete
        ``delete_data``'s. An unknown operation raises ``ValueError`` before anything is
        written; any failure rolls the whole batch back.
        """
        ops = list(ops)
        for op in ops:
            if not op or op[0] not in ("put", "delete", "enqueue", "ack"):
                raise ValueError(
                    f"unknown write operation {op[:1]!r}: expected ('put', key, value, "
                    "is_result), ('delete', key), ('enqueue', data, priority) or ('ack', token)"
                )
        if not ops:
            return
        self._has_expiry()
        tokens = [op[1] for op in ops if op[0] == "ack" and op[1]]

        def run(conn: Any) -> None:
            for op in ops:
                if op[0] == "put":
                    self._put_row(conn, op[1], op[2])
                elif op[0] == "delete":
                    self._pop_row(conn, op[1])
                elif op[0] == "enqueue":
                    conn.execute(
                        "insert into task (queue, data, priority) values (?, ?, ?)",
                        (self.name, op[1], float(op[2] or 0)),
                    )
            self._ack_rows(conn, tokens)

        if tokens:
            self._ng_write(run)
        else:
            self._write(run)

    def _ack_rows(self, conn: Any, tokens: list[str]) -> None:
        """Forget leased messages and their delivery counts (inside a write)."""
        for start in range(0, len(tokens), DELETE_CHUNK):
            chunk = tokens[start : start + DELETE_CHUNK]
            marks = ", ".join("?" * len(chunk))
            conn.execute(
                "delete from hueyng_delivery where queue = ? and digest in (select digest "
                f"from hueyng_lease where queue = ? and token in ({marks}) and count > 1)",
                (self.name, self.name, *chunk),
            )
            conn.execute(
                f"delete from hueyng_lease where queue = ? and token in ({marks})",
                (self.name, *chunk),
            )

    def read_schedule_leased(self, ts: datetime.datetime, lease_seconds: float) -> list[Delivery]:
        """Move the due messages from the schedule into leases (priority 0, count 0) in one
        transaction; ``requeue_expired`` queues those never acknowledged."""

        def take(conn: Any) -> list[Delivery]:
            due = self._take_due(conn, ts)
            expires = time.time() + lease_seconds
            taken = [Delivery(data, uuid.uuid4().hex, 0) for data in due]
            conn.executemany(
                "insert into hueyng_lease (token, queue, data, digest, priority, expires_at, "
                "count) values (?, ?, ?, ?, 0, ?, 0)",
                [
                    (d.token, self.name, d.data, hashlib.sha1(d.data).digest(), expires)
                    for d in taken
                ],
            )
            return taken

        if not self._read(
            "select 1 from schedule where queue = ? and timestamp <= ? limit 1",
            (self.name, ts.timestamp()),
        ):
            return []  # the usual case each second: no write lock taken
        return self._ng_write(take)

    def enqueue_once(
        self, key: str, ttl: float, data: bytes, priority: float | None = None
    ) -> bool:
        """Claim ``key`` and enqueue ``data`` in one transaction (both or neither)."""

        def claim_and_enqueue(conn: Any) -> bool:
            if not self._claim_row(conn, key, ttl):
                return False
            conn.execute(
                "insert into task (queue, data, priority) values (?, ?, ?)",
                (self.name, data, float(priority or 0)),
            )
            return True

        return self._ng_write(claim_and_enqueue)

    def ack(self, token: str | None) -> None:
        """Forget a leased message and its delivery count (unknown tokens are ignored)."""
        if token:
            self._ng_write(lambda conn: self._ack_rows(conn, [token]))

    def extend_leases(self, tokens: Iterable[str], lease_seconds: float) -> None:
        """Push the expiry of these leases to ``lease_seconds`` from now."""
        token_list = [token for token in tokens if token]
        if not token_list:
            return

        def extend(conn: Any) -> None:
            expiry = time.time() + lease_seconds
            for start in range(0, len(token_list), DELETE_CHUNK):
                chunk = token_list[start : start + DELETE_CHUNK]
                marks = ", ".join("?" * len(chunk))
                conn.execute(
                    "update hueyng_lease set expires_at = ? "
                    f"where queue = ? and token in ({marks})",
                    (expiry, self.name, *chunk),
                )

        self._ng_write(extend)

    def release(self, token: str | None) -> None:
        """Put a leased, unstarted message back in the queue now; it does not count."""
        if not token:
            return

        def give_back(conn: Any) -> None:
            row = conn.execute(
                "select data, digest, priority, count from hueyng_lease "
                "where queue = ? and token = ?",
                (self.name, token),
            ).fetchone()
            if row is None:
                return
            conn.execute("delete from hueyng_lease where token = ?", (token,))
            conn.execute(
                "insert into task (queue, data, priority) values (?, ?, ?)",
                (self.name, row[0], row[2]),
            )
            key = (self.name, row[1])
            if row[3] > 1:
                conn.execute(
                    "update hueyng_delivery set count = ? where queue = ? and digest = ?",
                    (row[3] - 1, *key),
                )
            else:
                conn.execute("delete from hueyng_delivery where queue = ? and digest = ?", key)

        self._ng_write(give_back)

    def requeue_expired(self) -> int:
        """Put every expired lease back in the queue (same priority); return how many.

        The move is one exclusive transaction, so concurrent callers in several processes
        requeue each expired lease exactly once.
        """
        if not self._ng_exists() or not self._read(
            "select 1 from hueyng_lease where queue = ? and expires_at <= ? limit 1",
            (self.name, time.time()),
        ):
            return 0

        def requeue(conn: Any) -> int:
            params = (self.name, time.time())
            conn.execute(
                "insert into task (queue, data, priority) select queue, data, priority "
                "from hueyng_lease where queue = ? and expires_at <= ? order by expires_at, token",
                params,
            )
            # The delivery count outlives the lease ("where true" disambiguates the upsert).
            conn.execute(
                "insert into hueyng_delivery (queue, digest, count) select queue, digest, count "
                "from hueyng_lease where queue = ? and expires_at <= ? and count > 0 "
                "on conflict (queue, digest) do update set count = excluded.count",
                params,
            )
            cursor = conn.execute(
                "delete from hueyng_lease where queue = ? and expires_at <= ?", params
            )
            return int(cursor.rowcount)

        return self._ng_write(requeue)

    # -- dead letters, claims, named leases ----------------------------------------------
    def add_dead_letter(self, data: bytes, reason: str) -> str:
        """Set ``data`` aside with ``reason``; return its id (a decimal string)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"add_dead_letter() data must be bytes, got {type(data).__name__}")
        if not isinstance(reason, str):
            raise TypeError(f"add_dead_letter() reason must be a str, got {type(reason).__name__}")
        message = bytes(data)

        def add(conn: Any) -> str:
            cursor = conn.execute(
                "insert into hueyng_dead_letter (queue, data, reason, timestamp) "
                "values (?, ?, ?, ?)",
                (self.name, message, reason, time.time()),
            )
            conn.execute(
                "delete from hueyng_delivery where queue = ? and digest = ?",
                (self.name, hashlib.sha1(message).digest()),
            )
            return str(cursor.lastrowid)

        return self._ng_write(add)

    def dead_letters(self, limit: int | None = None) -> list[DeadLetter]:
        """The first ``limit`` dead letters, oldest first."""
        if not self._ng_exists():
            return []
        rows = self._read(
            "select id, data, reason, timestamp from hueyng_dead_letter where queue = ? "
            "order by id limit ?",
            (self.name, -1 if limit is None else limit),
        )
        return [DeadLetter(str(row[0]), bytes(row[1]), str(row[2]), row[3]) for row in rows]

    def dead_letter_count(self) -> int:
        """Number of dead letters of this queue."""
        if not self._ng_exists():
            return 0
        rows = self._read("select count(*) from hueyng_dead_letter where queue = ?", (self.name,))
        return int(rows[0][0])

    def pop_dead_letter(self, id: str) -> DeadLetter | None:
        """Remove and return the dead letter ``id``; None when there is none."""
        # Ids are canonical decimal strings: "01" or "1.0" is no id at all.
        if not isinstance(id, str) or not id.isascii() or not id.isdigit():
            return None
        if str(int(id)) != id or not self._ng_exists():
            return None

        def pop(conn: Any) -> DeadLetter | None:
            params = (self.name, int(id))
            row = conn.execute(
                "select id, data, reason, timestamp from hueyng_dead_letter "
                "where queue = ? and id = ?",
                params,
            ).fetchone()
            if row is None:
                return None
            conn.execute("delete from hueyng_dead_letter where queue = ? and id = ?", params)
            return DeadLetter(str(row[0]), bytes(row[1]), str(row[2]), row[3])

        return self._ng_write(pop)

    def flush_dead_letters(self) -> None:
        """Delete every dead letter of this queue."""
        if self._ng_exists():
            self._write(
                lambda c: c.execute("delete from hueyng_dead_letter where queue = ?", (self.name,))
            )

    def claim(self, key: str, ttl: float) -> bool:
        """Atomically take ``key`` for ``ttl`` seconds; False while someone else holds it."""
        return self._ng_write(lambda conn: self._claim_row(conn, key, ttl))

    def _claim_row(self, conn: Any, key: str, ttl: float) -> bool:
        """Insert the claim row unless an unexpired one exists (inside a write)."""
        now = time.time()
        # Claim keys are usually one-off (a periodic tick each), so expired ones are
        # swept here and the table stays small.
        conn.execute(
            "delete from hueyng_claim where queue = ? and expires_at <= ?", (self.name, now)
        )
        cursor = conn.execute(
            "insert or ignore into hueyng_claim (queue, key, expires_at) values (?, ?, ?)",
            (self.name, key, now + ttl),
        )
        return bool(cursor.rowcount == 1)

    def acquire_lease(self, key: str, owner: str, ttl: float) -> bool:
        """Take the named lease if it is free, expired or already ``owner``'s (renewal)."""

        def take(conn: Any) -> bool:
            now = time.time()
            cursor = conn.execute(
                "insert into hueyng_named_lease (queue, key, owner, expires_at) "
                "values (?, ?, ?, ?) on conflict (queue, key) do update "
                "set owner = excluded.owner, expires_at = excluded.expires_at "
                "where hueyng_named_lease.owner = excluded.owner "
                "or hueyng_named_lease.expires_at <= ?",
                (self.name, key, owner, now + ttl, now),
            )
            return bool(cursor.rowcount == 1)

        return self._ng_write(take)

    def release_lease(self, key: str, owner: str) -> None:
        """Give up the named lease if ``owner`` holds it."""
        if self._ng_exists():
            params = (self.name, key, owner)
            self._write(
                lambda c: c.execute(
                    "delete from hueyng_named_lease where queue = ? and key = ? and owner = ?",
                    params,
                )
            )

    def flush_all(self) -> None:
        """Clear upstream's structures of this queue and huey-ng's state beside them."""
        super().flush_all()  # type: ignore[misc]
        if self._ng_exists():

            def flush(conn: Any) -> None:
                for table in NG_TABLES:
                    conn.execute(f"delete from {table} where queue = ?", (self.name,))

            self._write(flush)
