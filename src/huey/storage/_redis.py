"""Redis storages (spec §15.4): plain, expiring results, and priority queues.

Key names and types are exactly upstream huey's, so upstream and huey-ng can share one
Redis (see ``wire-samples/redis-layout.txt``):

========================  ==============================  ============================
data                      key                             type
========================  ==============================  ============================
queue                     ``huey.redis.<name>``           list (zset for Priority*)
schedule                  ``huey.schedule.<name>``        zset, score = local epoch
results / KV              ``huey.results.<name>``         hash (``huey.r.<name>.<key>``
                                                          strings for the Expire kinds)
counters                  ``huey.counters.<name>``        hash (``huey.c.<name>.<key>``)
result notifications      ``huey.notify.<name>.<key>``    list
========================  ==============================  ============================

huey-ng addition: on servers without per-field hash expiry (Redis < 7.4), an item stored
with ``put_if_empty(..., ttl=...)`` lives in its own string key
``hueyng.kvttl.<name>.<key>`` (``SET NX PX``), beside the hash. Every KV read of
:class:`RedisStorage` looks at both, so a lock with a ttl behaves like any other key; upstream
readers only ever see the hash and are not confused by the extra keys.

Leased delivery and the rest of huey-ng's state live in ``hueyng.*`` keys beside upstream's
layout (one Lua script per operation, timed by the server clock, so hosts never disagree):

=============================  ==============================================================
``hueyng.leases.<name>``       zset: lease token -> expiry (server epoch ms)
``hueyng.leased.<name>``       hash: lease token -> ``<score>:<queue member>``, to requeue it
``hueyng.deliveries.<name>``   hash: sha1 hex of a message -> deliveries so far
``hueyng.dead.<name>``         stream of dead letters (fields ``data``, ``reason``, ``ts``)
``hueyng.claim.<name>.<key>``  string with an expiry (``SET NX PX``)
``hueyng.lease.<name>.<key>``  string naming the owner of a named lease, with an expiry
=============================  ==============================================================

The ``redis`` package is imported lazily, so ``import huey`` never needs it.
"""

from __future__ import annotations

import datetime
import re
import struct
import threading
import time
import uuid
from collections.abc import Iterable
from typing import Any

from huey.constants import EmptyData
from huey.exceptions import ConfigurationError
from huey.storage._base import BaseStorage, DeadLetter, Delivery

#: Atomically remove and return every schedule member with a score <= ARGV[1].
SCHEDULE_POP_LUA = """\
local key = KEYS[1]
local unix_ts = ARGV[1]
local res = redis.call('ZRANGEBYSCORE', key, '-inf', unix_ts)
if #res > 0 then
  if redis.call('ZREMRANGEBYSCORE', key, '-inf', unix_ts) == #res then
    return res
  end
  return {}
end
return res
"""

# put_if_empty without ttl on a server lacking hash-field expiry: a live ttl item counts.
_PUT_IF_EMPTY_LUA = """\
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
return redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
"""

# put_if_empty with ttl (no hash-field expiry): the hash entry must be absent too.
_PUT_IF_EMPTY_TTL_LUA = """\
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then return 1 end
return 0
"""

# put_if_empty with ttl on Redis >= 7.4 / Valkey >= 9: HSETNX then per-field expiry.
_PUT_IF_EMPTY_HFE_LUA = """\
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('HPEXPIRE', KEYS[1], ARGV[3], 'FIELDS', 1, ARGV[1])
  return 1
end
return 0
"""

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
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_]")
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")
#: Default seconds to wait for a TCP connect, so a dead server fails fast instead of hanging.
DEFAULT_CONNECT_TIMEOUT = 5.0
#: Longest single BLPOP of ``wait_result``; the hash is re-checked between rounds.
_MAX_WAIT_ROUND = 5.0
#: Expired leases requeued per script call (bounds the time one call blocks the server).
_REQUEUE_BATCH = 500
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


class _LazyRedisClient:
    """Class attribute that resolves to ``redis.Redis`` on first access (lazy import).

    Subclasses may still override ``redis_client`` with a plain class.
    """

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        return _redis_module().Redis


def _score(ts: datetime.datetime) -> float:
    """Schedule score: the naive ``ts`` read as local time, with its microseconds."""
    return time.mktime(ts.timetuple()) + ts.microsecond / 1e6


def _positive_ms(ttl: float) -> int:
    if ttl <= 0:
        raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
    return max(1, int(ttl * 1000))


class RedisStorage(BaseStorage):
    """Queue, schedule, results and counters in one Redis database.

    :param name: queue name; characters outside ``[A-Za-z0-9_]`` are removed unless
        ``clean_name=False``.
    :param blocking: dequeue with ``BRPOP`` (waits up to ``read_timeout``) instead of ``RPOP``.
    :param read_timeout: seconds a blocking dequeue waits; must be positive.
    :param connection_pool: a ready ``redis.ConnectionPool`` (e.g. a Sentinel pool).
    :param url: a ``redis://`` / ``rediss://`` / ``unix://`` URL.
    :param client_name: sent with ``CLIENT SETNAME`` on every connection.
    :param notify_result: push a wake-up onto ``huey.notify.<name>.<key>`` whenever a result
        is stored, so ``wait_result`` sleeps in ``BLPOP`` instead of polling (on by default in
        huey-ng).
    :param notify_result_ttl: seconds an unread wake-up list lives.
    :param clean_name: sanitise ``name`` as upstream does.
    :param connection_params: ``host``, ``port``, ``db``, ``password``, ``socket_timeout``,
        ``health_check_interval``, ... for ``redis.ConnectionPool``. Give only one of ``url``,
        ``connection_pool`` or connection params.
    """

    blocking = True
    priority = False
    supports_leases = True
    redis_client: Any = _LazyRedisClient()

    def __init__(
        self,
        name: str = "huey",
        blocking: bool = True,
        read_timeout: float = 1,
        connection_pool: Any = None,
        url: str | None = None,
        client_name: str | None = None,
        notify_result: bool = True,
        notify_result_ttl: float = 60,
        clean_name: bool = True,
        **connection_params: Any,
    ) -> None:
        redis = _redis_module()
        if clean_name:
            name = _UNSAFE_NAME.sub("", name)
        if not name:
            raise ConfigurationError("the queue name is empty (after removing unsafe characters)")
        super().__init__(name)
        if blocking and not read_timeout > 0:
            raise ConfigurationError(
                f"read_timeout must be a positive number of seconds, got {read_timeout!r} "
                "(0 would make a blocking dequeue wait forever)"
            )
        self.blocking = blocking
        self.read_timeout = read_timeout
        self.notify_result = notify_result
        self.notify_result_ttl = notify_result_ttl
        self.pool = self._make_pool(redis, connection_pool, url, client_name, connection_params)
        self.conn = self.redis_client(connection_pool=self.pool)
        if client_name is not None and connection_pool is not None:
            # A ready pool: ask it to name the connections it opens from now on.
            self.pool.connection_kwargs.setdefault("client_name", client_name)
        self._check_socket_timeout()
        self._schedule_pop = self.conn.register_script(SCHEDULE_POP_LUA)
        self._pie = self.conn.register_script(_PUT_IF_EMPTY_LUA)
        self._pie_ttl = self.conn.register_script(_PUT_IF_EMPTY_TTL_LUA)
        self._pie_hfe = self.conn.register_script(_PUT_IF_EMPTY_HFE_LUA)
        self._hfe: bool | None = None  # server has per-field hash expiry; probed lazily
        self.queue_key = f"huey.redis.{self.name}"
        self.schedule_key = f"huey.schedule.{self.name}"
        self.result_key = f"huey.results.{self.name}"
        self.counter_key = f"huey.counters.{self.name}"
        self.ttl_prefix = f"hueyng.kvttl.{self.name}."
        self._init_leases()

    def _make_pool(
        self,
        redis: Any,
        pool: Any,
        url: str | None,
        client_name: str | None,
        params: dict[str, Any],
    ) -> Any:
        for opt in ("host", "port", "db"):
            if opt in params and params[opt] is None:
                del params[opt]
        given = [n for n, v in (("url", url), ("connection_pool", pool)) if v is not None]
        if params:
            given.append("connection params (" + ", ".join(sorted(params)) + ")")
        if len(given) > 1:
            raise ConfigurationError(
                "give only one of url, connection_pool or connection params to "
                f"{type(self).__name__}; got {' and '.join(given)}"
            )
        if pool is not None:
            return pool
        defaults: dict[str, Any] = {
            "socket_connect_timeout": DEFAULT_CONNECT_TIMEOUT,
            # A blocking read must outlive its server-side timeout (redis-py >= 6 defaults
            # socket_timeout to 5 s, which would break a longer read_timeout).
            "socket_timeout": max(10.0, float(self.read_timeout) + 5.0),
        }
        if client_name is not None:
            defaults["client_name"] = client_name
        if url is not None:
            # Options in the URL's query string take precedence over these defaults.
            return redis.ConnectionPool.from_url(url, **defaults)
        return redis.ConnectionPool(**{**defaults, **params})

    def _socket_timeout(self) -> float | None:
        kwargs = getattr(self.pool, "connection_kwargs", {})
        value = kwargs.get("socket_timeout")
        return None if value is None else float(value)

    def _check_socket_timeout(self) -> None:
        limit = self._socket_timeout()
        if self.blocking and limit is not None and limit <= self.read_timeout:
            raise ConfigurationError(
                f"socket_timeout ({limit}) must be longer than read_timeout "
                f"({self.read_timeout}), or blocking dequeues fail with a TimeoutError"
            )

    def close(self) -> bool | None:
        """Close every pooled connection; they reopen lazily (e.g. in a forked child)."""
        self.pool.disconnect()
        return None

    # -- queue ---------------------------------------------------------------------------
    def enqueue(self, data: bytes, priority: float | None = None) -> None:
        if priority:
            raise NotImplementedError(
                f"{type(self).__name__} has no priority support; "
                "use PriorityRedisStorage (PriorityRedisHuey)"
            )
        self.conn.lpush(self.queue_key, data)

    def dequeue(self) -> bytes | None:
        # redis ConnectionError propagates on purpose: the consumer logs it and backs off.
        if self.blocking:
            popped = self.conn.brpop(self.queue_key, timeout=self.read_timeout)
            return None if popped is None else bytes(popped[1])
        data = self.conn.rpop(self.queue_key)
        return None if data is None else bytes(data)

    def queue_size(self) -> int:
        return int(self.conn.llen(self.queue_key))

    def enqueued_items(self, limit: int | None = None) -> list[bytes]:
        # LPUSH + RPOP: the next item to leave is the last one of the list.
        if limit is not None and limit <= 0:
            return []
        start = 0 if limit is None else -limit
        return list(reversed(self.conn.lrange(self.queue_key, start, -1)))

    def flush_queue(self) -> None:
        self.conn.delete(self.queue_key)

    # -- schedule ------------------------------------------------------------------------
    def add_to_schedule(self, data: bytes, ts: datetime.datetime) -> None:
        self.conn.zadd(self.schedule_key, {data: _score(ts)})

    def read_schedule(self, ts: datetime.datetime) -> list[bytes]:
        return list(self._schedule_pop(keys=[self.schedule_key], args=[repr(_score(ts))]))

    def schedule_size(self) -> int:
        return int(self.conn.zcard(self.schedule_key))

    def scheduled_items(self, limit: int | None = None) -> list[bytes]:
        if limit is not None and limit <= 0:
            return []
        end = -1 if limit is None else limit - 1
        return list(self.conn.zrange(self.schedule_key, 0, end))

    def flush_schedule(self) -> None:
        self.conn.delete(self.schedule_key)

    # -- results / key-value -------------------------------------------------------------
    def _has_hfe(self) -> bool:
        """Whether the server expires hash fields (Redis >= 7.4, Valkey >= 9)."""
        if self._hfe is None:
            try:
                probe = f"hueyng.probe.{self.name}"
                self.conn.execute_command("HPEXPIRE", probe, 1000, "FIELDS", 1, "x")
                self._hfe = True
            except _redis_module().ResponseError:
                self._hfe = False
        return self._hfe

    def _ttl_key(self, key: str) -> str:
        return self.ttl_prefix + key

    def _notify(self, pipe: Any, key: str) -> None:
        notify_key = f"huey.notify.{self.name}.{key}"
        pipe.lpush(notify_key, b"1")
        pipe.expire(notify_key, max(1, int(self.notify_result_ttl)))

    def put_data(self, key: str, value: bytes, is_result: bool = False) -> None:
        pipe = self.conn.pipeline(transaction=True)
        pipe.hset(self.result_key, key, value)
        if not self._has_hfe():
            pipe.delete(self._ttl_key(key))  # an upsert replaces an expiring item too
        if is_result and self.notify_result:
            self._notify(pipe, key)
        pipe.execute()

    def peek_data(self, key: str) -> bytes | type[EmptyData]:
        if self._has_hfe():
            value = self.conn.hget(self.result_key, key)
        else:
            pipe = self.conn.pipeline(transaction=False)
            pipe.hget(self.result_key, key).get(self._ttl_key(key))
            hashed, expiring = pipe.execute()
            value = hashed if hashed is not None else expiring
        return EmptyData if value is None else value

    def peek_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        keys = list(keys)
        if not keys:
            return {}
        values = self.conn.hmget(self.result_key, keys)
        found = {k: v for k, v in zip(keys, values, strict=True) if v is not None}
        missing = [k for k in keys if k not in found]
        if missing and not self._has_hfe():
            extra = self.conn.mget([self._ttl_key(k) for k in missing])
            found.update({k: v for k, v in zip(missing, extra, strict=True) if v is not None})
        return found

    def pop_data(self, key: str) -> bytes | type[EmptyData]:
        pipe = self.conn.pipeline(transaction=True)
        pipe.hget(self.result_key, key).hdel(self.result_key, key)
        if not self._has_hfe():
            # GET + DEL rather than GETDEL, which needs Redis 6.2.
            pipe.get(self._ttl_key(key)).delete(self._ttl_key(key))
        replies = pipe.execute()
        value = replies[0] if replies[0] is not None else (replies[2:] or [None])[0]
        return EmptyData if value is None else value

    def delete_data(self, key: str) -> bool:
        if self._has_hfe():
            return bool(self.conn.hdel(self.result_key, key))
        pipe = self.conn.pipeline(transaction=True)
        pipe.hdel(self.result_key, key).delete(self._ttl_key(key))
        return any(pipe.execute())

    def has_data_for_key(self, key: str) -> bool:
        if self._has_hfe():
            return bool(self.conn.hexists(self.result_key, key))
        pipe = self.conn.pipeline(transaction=False)
        pipe.hexists(self.result_key, key).exists(self._ttl_key(key))
        return any(pipe.execute())

    def put_if_empty(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        keys = [self.result_key, self._ttl_key(key)]
        if ttl is None:
            if self._has_hfe():
                return bool(self.conn.hsetnx(self.result_key, key, value))
            return bool(self._pie(keys=keys, args=[key, value]))
        script = self._pie_hfe if self._has_hfe() else self._pie_ttl
        return bool(script(keys=keys, args=[key, value, _positive_ms(ttl)]))

    def wait_result(
        self,
        key: str,
        timeout: float | None = None,
        backoff: float = 1.15,
        max_delay: float = 1.0,
    ) -> bool:
        """Wait for ``key``; with ``notify_result`` sleep in ``BLPOP`` instead of polling.

        ``timeout=None`` waits forever, ``timeout=0`` checks once. The key is re-checked
        after every BLPOP round (at most ``max_delay`` long), so a result stored by a writer
        that does not notify (e.g. upstream huey with notify_result off) is still seen.
        A lost or unresponsive connection returns False.
        """
        if not self.notify_result:
            return super().wait_result(key, timeout, backoff, max_delay)
        redis = _redis_module()
        notify_key = f"huey.notify.{self.name}.{key}"
        deadline = None if timeout is None else time.monotonic() + timeout
        round_limit = min(max(max_delay, 0.05), _MAX_WAIT_ROUND)
        socket_timeout = self._socket_timeout()
        if socket_timeout is not None:
            round_limit = min(round_limit, socket_timeout / 2)
        try:
            while not self.has_data_for_key(key):
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                # BLPOP timeout 0 means "forever": never let a round reach 0.
                wait = round_limit if remaining is None else min(round_limit, remaining)
                if self.conn.blpop(notify_key, timeout=max(wait, 0.01)) is not None:
                    self.conn.delete(notify_key)
            return True
        except (redis.ConnectionError, redis.TimeoutError):
            return False

    def _scan(self, prefix: str) -> list[bytes]:
        pattern = _GLOB_SPECIAL.sub(r"\\\1", prefix) + "*"
        return list(self.conn.scan_iter(match=pattern, count=500))

    def _expiring_items(self) -> dict[str, bytes]:
        if self._has_hfe():
            return {}
        keys = self._scan(self.ttl_prefix)
        if not keys:
            return {}
        size = len(self.ttl_prefix)
        values = self.conn.mget(keys)
        return {k.decode()[size:]: v for k, v in zip(keys, values, strict=True) if v is not None}

    def result_store_size(self) -> int:
        extra = 0 if self._has_hfe() else len(self._scan(self.ttl_prefix))
        return int(self.conn.hlen(self.result_key)) + extra

    def result_items(self) -> dict[str, bytes]:
        items = self._expiring_items()
        items.update({k.decode(): v for k, v in self.conn.hgetall(self.result_key).items()})
        return items

    def flush_results(self) -> None:
        doomed = [self.result_key] + ([] if self._has_hfe() else self._scan(self.ttl_prefix))
        for start in range(0, len(doomed), 500):
            self.conn.delete(*doomed[start : start + 500])

    # -- counters ------------------------------------------------------------------------
    def incr(self, key: str, amount: int = 1) -> int:
        return int(self.conn.hincrby(self.counter_key, key, amount))

    def delete_counter(self, key: str) -> None:
        self.conn.hdel(self.counter_key, key)

    def flush_counters(self) -> None:
        self.conn.delete(self.counter_key)

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
        delivery = self._take(lease_ms)
        if delivery is not None or not self.blocking:
            return delivery
        deadline = time.monotonic() + self.read_timeout
        while delivery is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._wait_for_message(remaining):
                return None
            delivery = self._take(lease_ms)
        return delivery

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
        super().flush_all()
        doomed: list[str | bytes] = [self.leases_key, self.leased_key, self.deliveries_key]
        doomed.append(self.dead_key)
        doomed += self._scan(self.claim_prefix) + self._scan(self.lease_prefix)
        for start in range(0, len(doomed), 500):
            self.conn.delete(*doomed[start : start + 500])


class RedisExpireStorage(RedisStorage):
    """Results as separate string keys ``huey.r.<name>.<key>`` that expire.

    Results (``is_result=True``) expire after ``expire_time`` seconds; other writes (locks,
    revocations) never expire. Reading a result does not delete it (``pop_data`` peeks).
    Counters are ``huey.c.<name>.<key>`` strings, each increment re-arming ``expire_time``.

    :param expire_time: lifetime in seconds of results and counters.
    """

    #: ``pop_data`` leaves the value in place (results expire instead).
    pop_is_peek = True

    def __init__(self, name: str = "huey", expire_time: int = 86400, *args: Any, **kwargs: Any):
        super().__init__(name, *args, **kwargs)
        if not expire_time or expire_time <= 0:
            raise ConfigurationError(f"expire_time must be a positive int, got {expire_time!r}")
        self.expire_time = int(expire_time)
        self.result_prefix = f"huey.r.{self.name}."
        self.counter_prefix = f"huey.c.{self.name}."

    def _rkey(self, key: str) -> str:
        return self.result_prefix + key

    def put_data(self, key: str, value: bytes, is_result: bool = False) -> None:
        pipe = self.conn.pipeline(transaction=True)
        pipe.set(self._rkey(key), value, ex=self.expire_time if is_result else None)
        if is_result and self.notify_result:
            self._notify(pipe, key)
        pipe.execute()

    def peek_data(self, key: str) -> bytes | type[EmptyData]:
        value = self.conn.get(self._rkey(key))
        return EmptyData if value is None else value

    def peek_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        keys = list(keys)
        if not keys:
            return {}
        values = self.conn.mget([self._rkey(k) for k in keys])
        return {k: v for k, v in zip(keys, values, strict=True) if v is not None}

    def pop_data(self, key: str) -> bytes | type[EmptyData]:
        # Results are not deleted on read; they expire instead (upstream semantics).
        return self.peek_data(key)

    def delete_data(self, key: str) -> bool:
        return bool(self.conn.delete(self._rkey(key)))

    def has_data_for_key(self, key: str) -> bool:
        return bool(self.conn.exists(self._rkey(key)))

    def put_if_empty(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        px = None if ttl is None else _positive_ms(ttl)
        return bool(self.conn.set(self._rkey(key), value, nx=True, px=px))

    def result_store_size(self) -> int:
        return len(self._scan(self.result_prefix))

    def result_items(self) -> dict[str, bytes]:
        keys = self._scan(self.result_prefix)
        if not keys:
            return {}
        size = len(self.result_prefix)
        values = self.conn.mget(keys)
        return {k.decode()[size:]: v for k, v in zip(keys, values, strict=True) if v is not None}

    def _delete_prefix(self, prefix: str) -> None:
        keys = self._scan(prefix)
        for start in range(0, len(keys), 500):
            self.conn.delete(*keys[start : start + 500])

    def flush_results(self) -> None:
        self._delete_prefix(self.result_prefix)

    def incr(self, key: str, amount: int = 1) -> int:
        ckey = self.counter_prefix + key
        pipe = self.conn.pipeline(transaction=True)
        pipe.incrby(ckey, amount).expire(ckey, self.expire_time)
        return int(pipe.execute()[0])

    def delete_counter(self, key: str) -> None:
        self.conn.delete(self.counter_prefix + key)

    def flush_counters(self) -> None:
        self._delete_prefix(self.counter_prefix)


class RedisPriorityQueue:
    """Mixin: the queue is a sorted set scored by ``-priority`` (needs Redis >= 5).

    Members are an 8-byte big-endian microsecond timestamp followed by the message, which
    keeps FIFO order among equal priorities and identical payloads distinct.
    """

    priority = True
    conn: Any
    queue_key: str
    blocking: bool
    read_timeout: float
    _clock_lock = threading.Lock()
    _last_us = 0

    @classmethod
    def _stamp(cls) -> bytes:
        # Strictly increasing within this process even if the wall clock steps back.
        with cls._clock_lock:
            now = max(int(time.time() * 1_000_000), RedisPriorityQueue._last_us + 1)
            RedisPriorityQueue._last_us = now
        return struct.pack(">Q", now)

    def enqueue(self, data: bytes, priority: float | None = None) -> None:
        self.conn.zadd(self.queue_key, {self._stamp() + data: -(priority or 0)})

    def dequeue(self) -> bytes | None:
        if self.blocking:
            popped = self.conn.bzpopmin(self.queue_key, timeout=self.read_timeout)
            return None if popped is None else popped[1][8:]
        popped = self.conn.zpopmin(self.queue_key)
        return popped[0][0][8:] if popped else None

    def queue_size(self) -> int:
        return int(self.conn.zcard(self.queue_key))

    def enqueued_items(self, limit: int | None = None) -> list[bytes]:
        if limit is not None and limit <= 0:
            return []
        end = -1 if limit is None else limit - 1
        return [member[8:] for member in self.conn.zrange(self.queue_key, 0, end)]

    def flush_queue(self) -> None:
        self.conn.delete(self.queue_key)

    def _wait_for_message(self, timeout: float) -> bool:
        # No blocking command waits on a zset without popping from it: poll.
        return self._poll(timeout)  # type: ignore[attr-defined,no-any-return]


class PriorityRedisStorage(RedisPriorityQueue, RedisStorage):
    """:class:`RedisStorage` with a priority queue (``huey.redis.<name>`` is a zset)."""


class PriorityRedisExpireStorage(RedisPriorityQueue, RedisExpireStorage):
    """:class:`RedisExpireStorage` with a priority queue (``huey.redis.<name>`` is a zset)."""
