"""huey-ng's delivery state for the Redis storages: leases, delivery counts, dead letters,
claims and named leases, in ``hueyng.*`` keys beside upstream's layout (one Lua script per
operation, timed by the server clock, so hosts never disagree):

=============================  ==============================================================
``hueyng.leases.<name>``       zset: lease token -> expiry (server epoch ms)
``hueyng.leased.<name>``       hash: lease token -> ``<score>:<queue member>``, to requeue it
``hueyng.deliveries.<name>``   hash: sha1 hex of a message -> deliveries so far
``hueyng.dead.<name>``         stream of dead letters (fields ``data``, ``reason``, ``ts``)
``hueyng.claim.<name>.<key>``  string with an expiry (``SET NX PX``)
``hueyng.lease.<name>.<key>``  string naming the owner of a named lease, with an expiry
=============================  ==============================================================

Mixed into :class:`~huey.storage._redis.RedisStorage`, whose connection, queue key and
``_scan`` it uses. ``_redis_module`` and ``_positive_ms`` are defined here because both
modules need them and ``_redis.py`` imports this one (not the other way round).
"""

from __future__ import annotations

import datetime
import re
import time
import uuid
from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING, Any

from huey.exceptions import ConfigurationError
from huey.storage._base import DeadLetter, Delivery
from huey.storage._redis_wait import wait_and_take
from huey.storage._wakeup import take_waiting

# -- huey-ng leased delivery (Lua; the helpers below are prepended to each script) --------
# A leased queue member is kept as "<score>:<member>" (score "0" for the list queue), so it
# goes back exactly as it was: same priority and, for the zset, the same FIFO stamp.
_LUA_HELPERS = """\
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function member_of(payload)
  return string.sub(payload, string.find(payload, ':', 1, true) + 1)
end
local function body(member, zset)
  if zset then return string.sub(member, 9) end
  return member
end
local function requeue(queue, payload, zset)
  local member = member_of(payload)
  if zset then
    redis.call('ZADD', queue, string.sub(payload, 1, string.find(payload, ':', 1, true) - 1),
               member)
  else
    redis.call('RPUSH', queue, member)  -- the consuming end: it is taken next
  end
end
"""

# KEYS: queue, leases, leased, deliveries. ARGV: lease ms, token, zset flag.
_TAKE_LUA = """\
local zset = ARGV[3] == '1'
local member, score
if zset then
  local popped = redis.call('ZPOPMIN', KEYS[1])
  if #popped == 0 then return false end
  member, score = popped[1], popped[2]
else
  member = redis.call('RPOP', KEYS[1])
  if not member then return false end
  score = '0'
end
local data = body(member, zset)
local count = redis.call('HINCRBY', KEYS[4], redis.sha1hex(data), 1)
redis.call('ZADD', KEYS[2], now_ms() + tonumber(ARGV[1]), ARGV[2])
redis.call('HSET', KEYS[3], ARGV[2], score .. ':' .. member)
return {data, count}
"""

# KEYS: queue, leases, leased, deliveries. ARGV: lease ms, zset flag, token... (one token
# per message wanted). Returns {data1, count1, data2, count2, ...} for the messages taken.
_TAKE_MANY_LUA = """\
local zset = ARGV[2] == '1'
local expiry = now_ms() + tonumber(ARGV[1])
local out = {}
for i = 3, #ARGV do
  local member, score
  if zset then
    local popped = redis.call('ZPOPMIN', KEYS[1])
    if #popped == 0 then break end
    member, score = popped[1], popped[2]
  else
    member = redis.call('RPOP', KEYS[1])
    if not member then break end
    score = '0'
  end
  local data = body(member, zset)
  out[#out + 1] = data
  out[#out + 1] = redis.call('HINCRBY', KEYS[4], redis.sha1hex(data), 1)
  redis.call('ZADD', KEYS[2], expiry, ARGV[i])
  redis.call('HSET', KEYS[3], ARGV[i], score .. ':' .. member)
end
return out
"""

# KEYS: leases, leased, deliveries. ARGV: zset flag, token... Acknowledges every token.
_ACK_MANY_LUA = """\
local zset = ARGV[1] == '1'
for i = 2, #ARGV do
  local payload = redis.call('HGET', KEYS[2], ARGV[i])
  if payload then
    redis.call('HDEL', KEYS[2], ARGV[i])
    redis.call('ZREM', KEYS[1], ARGV[i])
    redis.call('HDEL', KEYS[3], redis.sha1hex(body(member_of(payload), zset)))
  end
end
return 1
"""

# KEYS: leases, leased, deliveries. ARGV: token, zset flag.
_ACK_LUA = """\
local payload = redis.call('HGET', KEYS[2], ARGV[1])
if not payload then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[3], redis.sha1hex(body(member_of(payload), ARGV[2] == '1')))
return 1
"""

# KEYS: leases. ARGV: lease ms, token... (XX: an acked or requeued lease stays gone).
_EXTEND_LUA = """\
local expiry = now_ms() + tonumber(ARGV[1])
local n = 0
for i = 2, #ARGV do n = n + redis.call('ZADD', KEYS[1], 'XX', 'CH', expiry, ARGV[i]) end
return n
"""

# KEYS: queue, leases, leased, deliveries. ARGV: token, zset flag.
_RELEASE_LUA = """\
local payload = redis.call('HGET', KEYS[3], ARGV[1])
if not payload then return 0 end
local zset = ARGV[2] == '1'
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
local digest = redis.sha1hex(body(member_of(payload), zset))
if redis.call('HINCRBY', KEYS[4], digest, -1) <= 0 then redis.call('HDEL', KEYS[4], digest) end
requeue(KEYS[1], payload, zset)
return 1
"""

# KEYS: queue, leases, leased. ARGV: zset flag, batch size. Returns {seen, requeued}.
_REQUEUE_LUA = """\
local zset = ARGV[1] == '1'
local tokens = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now_ms(), 'LIMIT', 0, ARGV[2])
local n = 0
for i = #tokens, 1, -1 do  -- RPUSH in reverse: the lease that expired first is taken first
  local payload = redis.call('HGET', KEYS[3], tokens[i])
  if payload then
    requeue(KEYS[1], payload, zset)
    redis.call('HDEL', KEYS[3], tokens[i])
    n = n + 1
  end
  redis.call('ZREM', KEYS[2], tokens[i])
end
return {#tokens, n}
"""

# KEYS: schedule, leases, leased. ARGV: due score, lease ms, zset flag, token prefix, limit,
# FIFO stamp. Moves due messages from the schedule into leases (as if taken from the queue,
# at priority 0) and returns {token1, data1, ...}; an expired one is requeued like any lease.
_SCHEDULE_TAKE_LUA = """\
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[5]))
local expiry = now_ms() + tonumber(ARGV[2])
local out = {}
for i, data in ipairs(due) do
  redis.call('ZREM', KEYS[1], data)
  local token = ARGV[4] .. i
  local member = data
  if ARGV[3] == '1' then member = ARGV[6] .. data end
  redis.call('ZADD', KEYS[2], expiry, token)
  redis.call('HSET', KEYS[3], token, '0:' .. member)
  out[#out + 1] = token
  out[#out + 1] = data
end
return out
"""

# KEYS: claim key, queue. ARGV: claim ms, zset flag, queue member, zset score.
_ENQUEUE_ONCE_LUA = """\
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 0 end
if ARGV[2] == '1' then
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
else
  redis.call('LPUSH', KEYS[2], ARGV[3])
end
return 1
"""

# KEYS: dead, deliveries. ARGV: data, reason.
_ADD_DEAD_LUA = """\
local t = redis.call('TIME')
local ts = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
local id = redis.call('XADD', KEYS[1], '*', 'data', ARGV[1], 'reason', ARGV[2], 'ts', ts)
redis.call('HDEL', KEYS[2], redis.sha1hex(ARGV[1]))
return id
"""

# KEYS: dead. ARGV: id.
_POP_DEAD_LUA = """\
local found = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #found == 0 then return false end
redis.call('XDEL', KEYS[1], ARGV[1])
return found[1]
"""

# KEYS: lease key. ARGV: owner, ttl ms. Take when free (expired keys are gone) or renew.
_ACQUIRE_LUA = """\
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

_RELEASE_NAMED_LUA = """\
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""

_INSTALL_HINT = "pip install 'huey-ng[redis]'"
#: Expired leases requeued per script call (bounds the time one call blocks the server).
_REQUEUE_BATCH = 500
#: Due scheduled messages leased per script call (same reason).
_SCHEDULE_BATCH = 500
_STREAM_ID = re.compile(r"\d+-\d+")


def _redis_module() -> Any:
    """Import redis-py, or explain which extra to install."""
    try:
        import redis
    except ImportError as exc:  # pragma: no cover - exercised without the extra only
        raise ConfigurationError(
            f"the Redis storages need the redis package: {_INSTALL_HINT}"
        ) from exc
    return redis


def _schedule_score(ts: datetime.datetime) -> float:
    """Schedule score: the naive ``ts`` read as local time, with its microseconds."""
    return time.mktime(ts.timetuple()) + ts.microsecond / 1e6


def _positive_ms(ttl: float) -> int:
    if ttl <= 0:
        raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
    return max(1, int(ttl * 1000))


class RedisLeasesMixin:
    """Leased delivery and huey-ng state for the Redis storages."""

    name: str
    conn: Any
    queue_key: str
    priority: bool
    blocking: bool
    read_timeout: float

    if TYPE_CHECKING:

        def _queue_put(self, pipe: Any, key: str, value: bytes, is_result: bool) -> None: ...

        def _queue_delete(self, pipe: Any, key: str) -> None:
            ...
            # provided by RedisStorage

        def queue_size(self) -> int: ...

        def _stamp(self) -> bytes: ...  # the priority (zset) queue's FIFO stamp

        schedule_key: str

        def _scan(self, prefix: str) -> list[bytes]: ...

    supports_leases = True

    # -- leased delivery -----------------------------------------------------------------
    def _init_leases(self) -> None:
        ng = f"hueyng.%s.{self.name}"
        self.leases_key, self.leased_key = ng % "leases", ng % "leased"
        self.deliveries_key, self.dead_key = ng % "deliveries", ng % "dead"
        self.claim_prefix, self.lease_prefix = ng % "claim" + ".", ng % "lease" + "."
        self._blmove: bool | None = None  # server has BLMOVE (Redis >= 6.2); probed lazily

        def script(body: str) -> Any:
            return self.conn.register_script(_LUA_HELPERS + body)

        self._take_lua, self._ack_lua = script(_TAKE_LUA), script(_ACK_LUA)
        self._extend_lua, self._release_lua = script(_EXTEND_LUA), script(_RELEASE_LUA)
        self._requeue_lua, self._add_dead_lua = script(_REQUEUE_LUA), script(_ADD_DEAD_LUA)
        self._pop_dead_lua, self._acquire_lua = script(_POP_DEAD_LUA), script(_ACQUIRE_LUA)
        self._release_named_lua = script(_RELEASE_NAMED_LUA)
        self._take_many_lua, self._ack_many_lua = script(_TAKE_MANY_LUA), script(_ACK_MANY_LUA)
        self._schedule_take_lua = script(_SCHEDULE_TAKE_LUA)
        self._enqueue_once_lua = script(_ENQUEUE_ONCE_LUA)

    @property
    def _zset(self) -> str:
        """Lua flag: "1" when the queue is a priority zset, "0" for upstream's list."""
        return "1" if self.priority else "0"

    def _take(self, lease_ms: int) -> Delivery | None:
        keys = [self.queue_key, self.leases_key, self.leased_key, self.deliveries_key]
        token = uuid.uuid4().hex
        taken = self._take_lua(keys=keys, args=[lease_ms, token, self._zset])
        return None if taken is None else Delivery(bytes(taken[0]), token, int(taken[1]))

    def dequeue_leased(self, lease_seconds: float) -> Delivery | None:
        """Move the next message into a lease (one Lua script); block like ``dequeue``."""
        if not lease_seconds > 0:
            raise ValueError(f"lease_seconds must be a positive number, got {lease_seconds!r}")
        lease_ms = max(1, int(lease_seconds * 1000))
        if not self.blocking:
            return self._take(lease_ms)
        wait = partial(wait_and_take, self, lease_ms=lease_ms, limit=1)
        taken = take_waiting(self, self.read_timeout, partial(self._take_many, lease_ms, 1), wait)
        return taken[0] if taken else None

    def _take_many(self, lease_ms: int, limit: int) -> list[Delivery]:
        keys = [self.queue_key, self.leases_key, self.leased_key, self.deliveries_key]
        tokens = [uuid.uuid4().hex for _ in range(limit)]
        flat = self._take_many_lua(keys=keys, args=[lease_ms, self._zset, *tokens])
        return [
            Delivery(bytes(flat[i]), tokens[i // 2], int(flat[i + 1]))
            for i in range(0, len(flat), 2)
        ]

    def dequeue_leased_many(self, lease_seconds: float, limit: int) -> list[Delivery]:
        """Lease up to ``limit`` messages in one Lua script; block like ``dequeue`` when the
        queue is empty (one thread of the process waits on the server: see ``_wakeup``)."""
        if not lease_seconds > 0:
            raise ValueError(f"lease_seconds must be a positive number, got {lease_seconds!r}")
        lease_ms, limit = max(1, int(lease_seconds * 1000)), max(1, limit)
        if not self.blocking:
            return self._take_many(lease_ms, limit)
        now = partial(self._take_many, lease_ms, limit)
        wait = partial(wait_and_take, self, lease_ms=lease_ms, limit=limit)
        if self.priority or not self._blmove:  # polling waits: always look first
            return take_waiting(self, self.read_timeout, now, wait)
        return take_waiting(self, self.read_timeout, now, wait, lambda t: len(t) < limit)

    def apply_writes(self, ops: Iterable[tuple[Any, ...]]) -> None:
        """Store results, clear flags and acknowledge, all in one MULTI/EXEC round trip."""
        ops = list(ops)
        try:
            self._pipeline_writes(ops).execute()
        except _redis_module().exceptions.NoScriptError:
            # The server lost its script cache (a restart): load it and apply again; puts,
            # deletes and acks are idempotent.
            self.conn.script_load(self._ack_many_lua.script)
            self._pipeline_writes(ops).execute()

    def _pipeline_writes(self, ops: list[tuple[Any, ...]]) -> Any:
        pipe = self.conn.pipeline(transaction=True)
        tokens = []
        for op in ops:
            if op[0] == "put":
                self._queue_put(pipe, op[1], op[2], op[3])
            elif op[0] == "delete":
                self._queue_delete(pipe, op[1])
            elif op[0] == "enqueue":
                member, score = self._queue_member(op[1], op[2])
                if self.priority:
                    pipe.zadd(self.queue_key, {member: score})
                else:
                    pipe.lpush(self.queue_key, member)
            elif op[0] == "ack":
                if op[1]:
                    tokens.append(op[1])
            else:
                raise ValueError(f"unknown write operation {op[0]!r}")
        if tokens:
            # EVALSHA directly: a Script called on a pipeline costs a SCRIPT EXISTS each time.
            keys = [self.leases_key, self.leased_key, self.deliveries_key]
            pipe.evalsha(self._ack_many_lua.sha, len(keys), *keys, self._zset, *tokens)
        return pipe

    def _queue_member(self, data: bytes, priority: float | None) -> tuple[bytes, float]:
        """The queue member and zset score of a message, as ``enqueue`` stores it."""
        if not self.priority:
            if priority:
                raise NotImplementedError(
                    f"{type(self).__name__} has no priority support; "
                    "use PriorityRedisStorage (PriorityRedisHuey)"
                )
            return data, 0.0
        return self._stamp() + data, -(priority or 0)

    def read_schedule_leased(self, ts: datetime.datetime, lease_seconds: float) -> list[Delivery]:
        """Move the due messages from the schedule into leases (a Lua script per 500)."""
        lease_ms = _positive_ms(lease_seconds)
        keys = [self.schedule_key, self.leases_key, self.leased_key]
        score = repr(_schedule_score(ts))
        stamp = self._stamp() if self.priority else b""
        taken: list[Delivery] = []
        while True:
            prefix = f"s{uuid.uuid4().hex}."
            args = [score, lease_ms, self._zset, prefix, _SCHEDULE_BATCH, stamp]
            flat = self._schedule_take_lua(keys=keys, args=args)
            taken += [
                Delivery(bytes(flat[i + 1]), bytes(flat[i]).decode(), 0)
                for i in range(0, len(flat), 2)
            ]
            if len(flat) < 2 * _SCHEDULE_BATCH:
                return taken

    def enqueue_once(
        self, key: str, ttl: float, data: bytes, priority: float | None = None
    ) -> bool:
        """Claim ``key`` and enqueue ``data`` in one Lua script (both or neither)."""
        member, score = self._queue_member(data, priority)
        keys = [self.claim_prefix + key, self.queue_key]
        args = [_positive_ms(ttl), self._zset, member, repr(score)]
        return bool(self._enqueue_once_lua(keys=keys, args=args))

    def _wait_for_message(self, timeout: float) -> bool:
        """Block until the queue is not empty, without taking anything; False on timeout.

        ``BLMOVE q q RIGHT RIGHT`` moves the next message onto itself (the list is left as
        it was) and wakes as soon as one is pushed. Lua scripts cannot block, so the take
        itself is a second step, retried if another consumer was quicker.
        """
        if self._blmove is not False:
            try:
                # A timeout rounding to 0 ms would block forever: never go below 10 ms.
                args = (self.queue_key, self.queue_key, max(timeout, 0.01), "RIGHT", "RIGHT")
                moved = self.conn.blmove(*args)
                self._blmove = True
                return moved is not None
            except _redis_module().ResponseError:
                if self._blmove:
                    raise
                self._blmove = False  # an old server: poll instead
        return self._poll(timeout)

    def _poll(self, timeout: float) -> bool:
        """Wait (polling 10 ms to 100 ms apart) until the queue has a message."""
        deadline = time.monotonic() + timeout
        delay = 0.01
        while not self.queue_size():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(delay, remaining))
            delay = min(delay * 1.5, 0.1)
        return True

    def ack(self, token: str | None) -> None:
        if token:
            keys = [self.leases_key, self.leased_key, self.deliveries_key]
            self._ack_lua(keys=keys, args=[token, self._zset])

    def extend_leases(self, tokens: Iterable[str], lease_seconds: float) -> None:
        tokens = [t for t in tokens if t]
        if tokens:
            lease_ms = max(1, int(lease_seconds * 1000))
            self._extend_lua(keys=[self.leases_key], args=[lease_ms, *tokens])

    def release(self, token: str | None) -> None:
        if token:
            keys = [self.queue_key, self.leases_key, self.leased_key, self.deliveries_key]
            self._release_lua(keys=keys, args=[token, self._zset])

    def requeue_expired(self) -> int:
        keys = [self.queue_key, self.leases_key, self.leased_key]
        total = 0
        while True:
            seen, requeued = self._requeue_lua(keys=keys, args=[self._zset, _REQUEUE_BATCH])
            total += int(requeued)
            if int(seen) < _REQUEUE_BATCH:
                return total

    # -- dead letters, claims, named leases ----------------------------------------------
    def add_dead_letter(self, data: bytes, reason: str) -> str:
        keys = [self.dead_key, self.deliveries_key]
        return bytes(self._add_dead_lua(keys=keys, args=[data, reason])).decode()

    @staticmethod
    def _dead_letter(entry: Any) -> DeadLetter:
        raw_id, raw_fields = entry
        if isinstance(raw_fields, dict):  # redis-py parses XRANGE replies into dicts
            fields = {bytes(k): v for k, v in raw_fields.items()}
        else:  # a Lua reply is a flat [field, value, ...] list
            fields = dict(zip(raw_fields[::2], raw_fields[1::2], strict=True))
        return DeadLetter(
            bytes(raw_id).decode(),
            bytes(fields[b"data"]),
            bytes(fields[b"reason"]).decode(),
            float(fields[b"ts"]),
        )

    def dead_letters(self, limit: int | None = None) -> list[DeadLetter]:
        if limit is not None and limit <= 0:
            return []
        entries = self.conn.xrange(self.dead_key, "-", "+", count=limit)
        return [self._dead_letter(entry) for entry in entries]

    def dead_letter_count(self) -> int:
        return int(self.conn.xlen(self.dead_key))

    def pop_dead_letter(self, id: str) -> DeadLetter | None:
        if not _STREAM_ID.fullmatch(id):
            return None  # not an id this storage hands out
        entry = self._pop_dead_lua(keys=[self.dead_key], args=[id])
        return None if entry is None else self._dead_letter(entry)

    def flush_dead_letters(self) -> None:
        self.conn.delete(self.dead_key)

    def claim(self, key: str, ttl: float) -> bool:
        return bool(self.conn.set(self.claim_prefix + key, b"1", nx=True, px=_positive_ms(ttl)))

    def acquire_lease(self, key: str, owner: str, ttl: float) -> bool:
        keys = [self.lease_prefix + key]
        return bool(self._acquire_lua(keys=keys, args=[owner, _positive_ms(ttl)]))

    def release_lease(self, key: str, owner: str) -> None:
        self._release_named_lua(keys=[self.lease_prefix + key], args=[owner])

    def flush_all(self) -> None:
        """Clear upstream's data and huey-ng's state (leases, dead letters, claims...)."""
        super().flush_all()  # type: ignore[misc]
        doomed: list[str | bytes] = [self.leases_key, self.leased_key, self.deliveries_key]
        doomed.append(self.dead_key)
        doomed += self._scan(self.claim_prefix) + self._scan(self.lease_prefix)
        for start in range(0, len(doomed), 500):
            self.conn.delete(*doomed[start : start + 500])
