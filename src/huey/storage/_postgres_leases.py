"""huey-ng's delivery state for :class:`~huey.storage._postgres.PostgresStorage`: leases,
delivery counts, dead letters, claims and named leases, with their SQL.

They live in tables of their own, created on first use: ``<prefix>ng_lease`` (taken
messages: token, data, priority, expiry), ``<prefix>ng_delivery`` (deliveries per message
digest), ``<prefix>ng_dead_letter``, ``<prefix>ng_claim`` and ``<prefix>ng_named_lease``.
Each operation is one statement timed by the server clock: the take deletes the task row
(``for update skip locked``), inserts the lease and counts the delivery at once, so a
message is never in both places, nor in neither.

Mixed into ``PostgresStorage``, whose connection helpers (``_run``, ``_fetchone``,
``_fetchall``, ``_rowcount``), blocking take (``_take_blocking``) and statements
(``_sql``, which includes :func:`_ng_queries`) it uses. ``_NOW`` and ``Params`` are defined
here because both modules need them and ``_postgres.py`` imports this one.
"""

from __future__ import annotations

import datetime
import hashlib
import time
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from huey.storage._base import DeadLetter, Delivery

T = TypeVar("T")
Params = tuple[Any, ...] | dict[str, Any]
#: The server clock, in epoch seconds: every expiry is set and compared with it.
_NOW = "extract(epoch from clock_timestamp())"
#: Joined into a take: this statement's transaction commits without waiting for the WAL
#: flush (``synchronous_commit`` is read at commit time). Safe for a take: if the server
#: crashes before the WAL reaches the disk, the message is still queued, unleased, and is
#: delivered again; any later durable commit (the task's result and ack) flushes it first.
_ASYNC_COMMIT = "(select set_config('synchronous_commit', 'off', true)) async_commit"
#: Due scheduled messages leased per statement.
_SCHEDULE_BATCH = 500


class PostgresLeasesMixin:
    """Leased delivery and huey-ng state for :class:`~huey.storage._postgres.PostgresStorage`."""

    name: str
    queue_channel: str
    _sql: dict[str, str]
    _ng_ready: bool
    _claims_purged: float

    if TYPE_CHECKING:  # provided by PostgresStorage

        def _run(self, fn: Callable[[Any], T], retry: bool = True) -> T: ...

        def _fetchall(self, query: str, params: Params = (), retry: bool = True) -> Any: ...

        def _fetchone(self, query: str, params: Params = (), retry: bool = True) -> Any: ...

        def _rowcount(self, query: str, params: Params = ()) -> int: ...

        def _take_blocking(self, take: Callable[[], T | None]) -> T | None: ...

        def _put_statement(self, key: str, value: bytes, is_result: bool) -> tuple[str, Any]: ...

        def _q(self, name: str) -> str: ...

    supports_leases = True

    # -- leased delivery -----------------------------------------------------------------
    def _ng(self) -> None:
        """Create huey-ng's tables on first use (upstream's four are never altered)."""
        if self._ng_ready:
            return
        if self._fetchone("select to_regclass(%s)", (self._sql["ng_probe"],))[0] is None:

            def ddl(conn: Any) -> None:
                with conn.transaction():
                    conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (self._sql["lock"],))
                    for statement in self._sql["ng_schema"].split(";"):
                        if statement.strip():
                            conn.execute(statement)

            self._run(ddl)
        self._ng_ready = True

    def _take_leased(self, lease_seconds: float) -> Delivery | None:
        token = uuid.uuid4().hex
        params = {"q": self.name, "t": token, "s": lease_seconds}
        row = self._fetchone(self._sql["take"], params)
        return None if row is None else Delivery(bytes(row[0]), token, int(row[1]))

    def dequeue_leased(self, lease_seconds: float) -> Delivery | None:
        """Move the next message into a lease (one statement); block like ``dequeue``."""
        if not lease_seconds > 0:
            raise ValueError(f"lease_seconds must be a positive number, got {lease_seconds!r}")
        self._ng()
        return self._take_blocking(lambda: self._take_leased(lease_seconds))

    def dequeue_leased_many(self, lease_seconds: float, limit: int) -> list[Delivery]:
        """Lease up to ``limit`` messages in one statement; block like ``dequeue`` when the
        queue is empty."""
        if not lease_seconds > 0:
            raise ValueError(f"lease_seconds must be a positive number, got {lease_seconds!r}")
        self._ng()
        limit = max(1, limit)

        def take() -> list[Delivery] | None:
            tokens = [uuid.uuid4().hex for _ in range(limit)]
            params = {"q": self.name, "n": limit, "t": tokens, "s": lease_seconds}
            rows = self._fetchall(self._sql["take_many"], params)
            taken = [Delivery(bytes(data), tokens[rn - 1], int(n)) for rn, data, n in rows]
            return taken or None

        return self._take_blocking(take) or []

    def apply_writes(self, ops: Iterable[tuple[Any, ...]]) -> None:
        """Store results, clear flags and acknowledge in one transaction (pipelined)."""
        ops = list(ops)
        tokens = [op[1] for op in ops if op[0] == "ack" and op[1]]
        if tokens:
            self._ng()

        def run(conn: Any) -> None:
            with conn.transaction(), conn.pipeline():
                for op in ops:
                    if op[0] == "put":
                        conn.execute(*self._put_statement(op[1], op[2], op[3]))
                    elif op[0] == "delete":
                        conn.execute(self._q("pop"), (self.name, op[1]))
                    elif op[0] == "enqueue":
                        params = (self.name, op[1], float(op[2] or 0), self.queue_channel)
                        conn.execute(self._sql["enqueue"], params)
                    elif op[0] != "ack":
                        raise ValueError(f"unknown write operation {op[0]!r}")
                if tokens:
                    conn.execute(self._sql["ack_many"], (self.name, tokens))

        self._run(run)

    def read_schedule_leased(self, ts: datetime.datetime, lease_seconds: float) -> list[Delivery]:
        """Move the due messages from the schedule into leases (one statement per 500)."""
        if not lease_seconds > 0:
            raise ValueError(f"lease_seconds must be a positive number, got {lease_seconds!r}")
        self._ng()
        taken: list[Delivery] = []
        while True:
            prefix = f"s{uuid.uuid4().hex}."
            params = {"q": self.name, "ts": ts.timestamp(), "n": _SCHEDULE_BATCH}
            params |= {"p": prefix, "s": lease_seconds}
            rows = self._fetchall(self._sql["schedule_take"], params)
            taken += [Delivery(bytes(data), f"{prefix}{rn}", 0) for rn, data in rows]
            if len(rows) < _SCHEDULE_BATCH:
                return taken

    def enqueue_once(
        self, key: str, ttl: float, data: bytes, priority: float | None = None
    ) -> bool:
        """Claim ``key`` and enqueue ``data`` in one statement (both or neither)."""
        if not ttl > 0:
            raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
        self._purge_claims()
        params = {"q": self.name, "k": key, "ttl": ttl, "b": data, "p": float(priority or 0)}
        params["ch"] = self.queue_channel
        return int(self._fetchone(self._sql["enqueue_once"], params)[0]) > 0

    def ack(self, token: str | None) -> None:
        if token:
            self._ng()
            self._rowcount(self._sql["ack"], (self.name, token))

    def extend_leases(self, tokens: Iterable[str], lease_seconds: float) -> None:
        tokens = [t for t in tokens if t]
        if tokens:
            self._ng()
            self._rowcount(self._sql["extend"], (lease_seconds, self.name, tokens))

    def release(self, token: str | None) -> None:
        if token:
            self._ng()
            self._fetchall(self._sql["release"], (self.name, token, self.queue_channel))

    def requeue_expired(self) -> int:
        self._ng()
        return int(self._fetchone(self._sql["requeue"], (self.name, self.queue_channel))[0])

    # -- dead letters, claims, named leases ----------------------------------------------
    def add_dead_letter(self, data: bytes, reason: str) -> str:
        self._ng()
        digest = hashlib.sha256(data).hexdigest()  # as the SQL side computes it
        params = {"q": self.name, "b": data, "r": reason, "d": digest}
        return str(self._fetchone(self._sql["add_dead"], params)[0])

    @staticmethod
    def _dead_letter(row: Any) -> DeadLetter:
        return DeadLetter(str(row[0]), bytes(row[1]), row[2], float(row[3]))

    def dead_letters(self, limit: int | None = None) -> list[DeadLetter]:
        if limit is not None and limit <= 0:
            return []
        self._ng()
        return [self._dead_letter(r) for r in self._fetchall(self._sql["dead"], (self.name, limit))]

    def dead_letter_count(self) -> int:
        self._ng()
        return int(self._fetchone(self._sql["dead_count"], (self.name,))[0])

    def pop_dead_letter(self, id: str) -> DeadLetter | None:
        if not id.isdigit() or len(id) > 18:
            return None  # not an id this storage hands out (a bigserial)
        self._ng()
        row = self._fetchone(self._sql["pop_dead"], (self.name, int(id)))
        return None if row is None else self._dead_letter(row)

    def flush_dead_letters(self) -> None:
        self._ng()
        self._rowcount(self._sql["flush_dead"], (self.name,))

    def claim(self, key: str, ttl: float) -> bool:
        if not ttl > 0:
            raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
        self._purge_claims()
        return self._fetchone(self._sql["claim"], (self.name, key, ttl)) is not None

    def _purge_claims(self) -> None:
        """Create the tables if needed; drop expired claims (one row per periodic tick)
        now and then."""
        self._ng()
        if time.monotonic() - self._claims_purged > 60:
            self._claims_purged = time.monotonic()
            self._rowcount(self._sql["purge_claims"], (self.name,))

    def acquire_lease(self, key: str, owner: str, ttl: float) -> bool:
        if not ttl > 0:
            raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
        self._ng()
        return self._fetchone(self._sql["acquire"], (self.name, key, owner, ttl)) is not None

    def release_lease(self, key: str, owner: str) -> None:
        self._ng()
        self._rowcount(self._sql["release_named"], (self.name, key, owner))

    def flush_all(self) -> None:
        """Clear upstream's data and huey-ng's state (leases, dead letters, claims...)."""
        super().flush_all()  # type: ignore[misc]
        if not self._ng_ready:
            self._ng_ready = (
                self._fetchone("select to_regclass(%s)", (self._sql["ng_probe"],))[0] is not None
            )
        if self._ng_ready:
            self._rowcount(self._sql["flush_ng"], (self.name,) * 5)


def _ng_queries(p: str) -> dict[str, str]:
    """huey-ng's statements (leases, deliveries, dead letters, claims, named leases)."""
    task, lease, dlv, dead, claim, named = (f"{p}_task", f"{p}ng_lease", f"{p}ng_delivery",
        f"{p}ng_dead_letter", f"{p}ng_claim", f"{p}ng_named_lease")  # fmt: skip
    sched = f"{p}_schedule"
    digest = "encode(sha256(g.data), 'hex')"  # built in since PostgreSQL 11 (sha1 is not)
    # Requeued messages wake blocked takers like an enqueue does.
    notify = "select n, case when n > 0 then pg_notify(%s, '') end from (select count(*) n"
    return {
        "ng_probe": named,  # created last, so its presence means every table exists
        "ng_schema": f"""
            create table if not exists {lease} (queue text not null, token text primary key,
                data bytea not null, priority double precision not null,
                expires_at double precision not null);
            create index if not exists {lease}_queue_expires_at on {lease} (queue, expires_at);
            create table if not exists {dlv} (queue text not null, digest text not null,
                count integer not null, primary key (queue, digest));
            create table if not exists {dead} (id bigserial primary key, queue text not null,
                data bytea not null, reason text not null, "timestamp" double precision not null);
            create index if not exists {dead}_queue_id on {dead} (queue, id);
            create table if not exists {claim} (queue text not null, key text not null,
                expires_at double precision not null, primary key (queue, key));
            create table if not exists {named} (queue text not null, key text not null,
                owner text not null, expires_at double precision not null,
                primary key (queue, key))""",
        # One statement: the row leaves the queue, becomes a lease, its delivery is counted.
        "take": f"""with g as (delete from {task} where id = (select id from {task}
                where queue = %(q)s order by priority desc, id limit 1 for update skip locked)
                returning data, priority),
            l as (insert into {lease} (queue, token, data, priority, expires_at)
                select %(q)s, %(t)s, data, priority, {_NOW} + %(s)s from g),
            c as (insert into {dlv} (queue, digest, count) select %(q)s, {digest}, 1 from g
                on conflict (queue, digest) do update set count = {dlv}.count + 1
                returning count)
            select g.data, c.count from g, c, {_ASYNC_COMMIT}""",
        "ack": f"""with g as (delete from {lease} where queue = %s and token = %s
                returning queue, data)
            delete from {dlv} d using g where d.queue = g.queue and d.digest = {digest}""",
        "ack_many": f"""with g as (delete from {lease} where queue = %s and token = any(%s)
                returning queue, data)
            delete from {dlv} d using g where d.queue = g.queue and d.digest = {digest}""",
        # A batch in one statement: rows numbered in queue order get the tokens in order;
        # deliveries are counted per distinct message (identical bytes count together).
        "take_many": f"""with g as (delete from {task} where id in (select id from {task}
                where queue = %(q)s order by priority desc, id limit %(n)s
                for update skip locked) returning id, data, priority),
            r as (select row_number() over (order by priority desc, id) as rn, data, priority,
                encode(sha256(data), 'hex') as digest from g),
            l as (insert into {lease} (queue, token, data, priority, expires_at)
                select %(q)s, (%(t)s::text[])[rn], data, priority, {_NOW} + %(s)s from r),
            c as (insert into {dlv} (queue, digest, count)
                select %(q)s, digest, count(*) from r group by digest
                on conflict (queue, digest) do update set count = {dlv}.count + excluded.count
                returning digest, count)
            select r.rn, r.data, c.count from r join c on c.digest = r.digest, {_ASYNC_COMMIT}
            order by r.rn""",
        # Due messages leave the schedule as leases at priority 0 (requeued if not acked).
        "schedule_take": f"""with g as (delete from {sched} where id in (select id from {sched}
                where queue = %(q)s and "timestamp" <= %(ts)s order by "timestamp", id
                limit %(n)s for update skip locked) returning id, data, "timestamp"),
            r as (select row_number() over (order by "timestamp", id) as rn, data from g),
            l as (insert into {lease} (queue, token, data, priority, expires_at)
                select %(q)s, %(p)s || rn, data, 0, {_NOW} + %(s)s from r)
            select rn, data from r order by rn""",
        # The claim and the enqueue in one statement: a tick is enqueued once, never lost.
        "enqueue_once": f"""with c as (insert into {claim} (queue, key, expires_at)
                values (%(q)s, %(k)s, {_NOW} + %(ttl)s) on conflict (queue, key) do update
                set expires_at = excluded.expires_at where {claim}.expires_at <= {_NOW}
                returning 1),
            b as (insert into {task} (queue, data, priority) select %(q)s, %(b)s, %(p)s from c
                returning 1)
            select n, case when n > 0 then pg_notify(%(ch)s, '') end
            from (select count(*) n from b) s""",
        "extend": f"""update {lease} set expires_at = {_NOW} + %s
            where queue = %s and token = any(%s)""",
        # Never started, so this delivery does not count against the message.
        "release": f"""with g as (delete from {lease} where queue = %s and token = %s
                returning queue, data, priority),
            b as (insert into {task} (queue, data, priority)
                select queue, data, priority from g returning 1),
            d as (update {dlv} d set count = d.count - 1 from g
                where d.queue = g.queue and d.digest = {digest})
            {notify} from b) s""",
        "requeue": f"""with g as (delete from {lease} where token in (select token from {lease}
                where queue = %s and expires_at <= {_NOW} for update skip locked)
                returning queue, data, priority, expires_at),
            b as (insert into {task} (queue, data, priority)
                select queue, data, priority from g order by expires_at returning 1)
            {notify} from b) s""",
        "add_dead": f"""with d as (delete from {dlv} where queue = %(q)s and digest = %(d)s)
            insert into {dead} (queue, data, reason, "timestamp")
            values (%(q)s, %(b)s, %(r)s, {_NOW}) returning id""",
        "dead": f"""select id, data, reason, "timestamp" from {dead} where queue = %s
            order by id limit %s""",
        "dead_count": f"select count(*) from {dead} where queue = %s",
        "pop_dead": f"""delete from {dead} where queue = %s and id = %s
            returning id, data, reason, "timestamp" """,
        "flush_dead": f"delete from {dead} where queue = %s",
        "claim": f"""insert into {claim} (queue, key, expires_at) values (%s, %s, {_NOW} + %s)
            on conflict (queue, key) do update set expires_at = excluded.expires_at
            where {claim}.expires_at <= {_NOW} returning 1""",
        "purge_claims": f"delete from {claim} where queue = %s and expires_at <= {_NOW}",
        "acquire": f"""insert into {named} (queue, key, owner, expires_at)
            values (%s, %s, %s, {_NOW} + %s) on conflict (queue, key) do update
            set owner = excluded.owner, expires_at = excluded.expires_at
            where {named}.owner = excluded.owner or {named}.expires_at <= {_NOW} returning 1""",
        "release_named": f"delete from {named} where queue = %s and key = %s and owner = %s",
        "flush_ng": f"""with a as (delete from {lease} where queue = %s),
            b as (delete from {dlv} where queue = %s), c as (delete from {dead} where queue = %s),
            d as (delete from {claim} where queue = %s)
            delete from {named} where queue = %s""",
    }
