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
layout: see :mod:`huey.storage._redis_leases`. The waits (the waiting take, blocking result
reads) are in :mod:`huey.storage._redis_wait`.

The ``redis`` package is imported lazily, so ``import huey`` never needs it.
"""

from __future__ import annotations

import datetime
import re
import struct
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from huey.constants import EmptyData
from huey.exceptions import ConfigurationError
from huey.storage._base import BaseStorage
from huey.storage._redis_leases import (
    RedisLeasesMixin,
    _positive_ms,
    _redis_module,
    _schedule_score,
)
from huey.storage._redis_wait import RedisResultWaitMixin

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

# pop_data as one script, so that it can follow a BLPOP in a pipeline (a BLPOP inside MULTI
# does not block). KEYS: results hash[, ttl key]. ARGV: field.
_POP_LUA = """\
local value = redis.call('HGET', KEYS[1], ARGV[1])
if value then redis.call('HDEL', KEYS[1], ARGV[1]) end
if KEYS[2] then
  local expiring = redis.call('GET', KEYS[2])
  if expiring then
    redis.call('DEL', KEYS[2])
    if not value then value = expiring end
  end
end
return value
"""

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_]")
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")
#: Default seconds to wait for a TCP connect, so a dead server fails fast instead of hanging.
DEFAULT_CONNECT_TIMEOUT = 5.0


class _LazyRedisClient:
    """Class attribute that resolves to ``redis.Redis`` on first access (lazy import).

    Subclasses may still override ``redis_client`` with a plain class.
    """

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        return _redis_module().Redis


class RedisStorage(RedisResultWaitMixin, RedisLeasesMixin, BaseStorage):
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
        self._pop_lua = self.conn.register_script(_POP_LUA)
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
        self.conn.lpush(self.queue_key, self._queue_member(data, priority)[0])

    def enqueue_many(self, items: Iterable[tuple[bytes, float | None]]) -> None:
        """One LPUSH for every message (FIFO: the first given is taken first)."""
        members = [self._queue_member(data, priority)[0] for data, priority in items]
        if members:
            self.conn.lpush(self.queue_key, *members)

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
        self.conn.zadd(self.schedule_key, {data: _schedule_score(ts)})

    def read_schedule(self, ts: datetime.datetime) -> list[bytes]:
        return list(self._schedule_pop(keys=[self.schedule_key], args=[repr(_schedule_score(ts))]))

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

    def _queue_put(self, pipe: Any, key: str, value: bytes, is_result: bool) -> None:
        """Add the commands of ``put_data`` to ``pipe`` (shared with ``apply_writes``)."""
        pipe.hset(self.result_key, key, value)
        if not self._has_hfe():
            pipe.delete(self._ttl_key(key))  # an upsert replaces an expiring item too
        if is_result and self.notify_result:
            self._notify(pipe, key)

    def _queue_delete(self, pipe: Any, key: str) -> None:
        """Add the commands of ``delete_data`` to ``pipe``."""
        pipe.hdel(self.result_key, key)
        if not self._has_hfe():
            pipe.delete(self._ttl_key(key))

    def put_data(self, key: str, value: bytes, is_result: bool = False) -> None:
        pipe = self.conn.pipeline(transaction=True)
        self._queue_put(pipe, key, value, is_result)
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
        if self._has_hfe():
            values = self.conn.hmget(self.result_key, keys)
            return {k: v for k, v in zip(keys, values, strict=True) if v is not None}
        # One round trip: the hash and the separate expiring keys together.
        pipe = self.conn.pipeline(transaction=False)
        pipe.hmget(self.result_key, keys).mget([self._ttl_key(k) for k in keys])
        hashed, expiring = pipe.execute()
        return {
            k: h if h is not None else e
            for k, h, e in zip(keys, hashed, expiring, strict=True)
            if h is not None or e is not None
        }

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
        self._queue_has_data(pipe, key)
        return any(pipe.execute())

    def _queue_has_data(self, pipe: Any, key: str) -> None:
        """Add the look-up of ``has_data_for_key`` to ``pipe`` (any true reply: found)."""
        pipe.hexists(self.result_key, key)
        if not self._has_hfe():
            pipe.exists(self._ttl_key(key))

    def put_if_empty(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        keys = [self.result_key, self._ttl_key(key)]
        if ttl is None:
            if self._has_hfe():
                return bool(self.conn.hsetnx(self.result_key, key, value))
            return bool(self._pie(keys=keys, args=[key, value]))
        script = self._pie_hfe if self._has_hfe() else self._pie_ttl
        return bool(script(keys=keys, args=[key, value, _positive_ms(ttl)]))

    def _queue_read(self, pipe: Any, key: str, peek: bool) -> None:
        """Add ``peek_data`` (or ``pop_data``, as one script) to ``pipe``; the value is the
        first reply that is not None."""
        ttl_keys = [] if self._has_hfe() else [self._ttl_key(key)]
        if peek:
            pipe.hget(self.result_key, key)
            for ttl_key in ttl_keys:
                pipe.get(ttl_key)
        else:
            keys = [self.result_key, *ttl_keys]
            # EVALSHA directly: a Script called on a pipeline costs a SCRIPT EXISTS each time.
            pipe.evalsha(self._pop_lua.sha, len(keys), *keys, key)

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

    def _queue_put(self, pipe: Any, key: str, value: bytes, is_result: bool) -> None:
        pipe.set(self._rkey(key), value, ex=self.expire_time if is_result else None)
        if is_result and self.notify_result:
            self._notify(pipe, key)

    def _queue_delete(self, pipe: Any, key: str) -> None:
        pipe.delete(self._rkey(key))

    def put_data(self, key: str, value: bytes, is_result: bool = False) -> None:
        pipe = self.conn.pipeline(transaction=True)
        self._queue_put(pipe, key, value, is_result)
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

    def _queue_has_data(self, pipe: Any, key: str) -> None:
        pipe.exists(self._rkey(key))

    def _queue_read(self, pipe: Any, key: str, peek: bool) -> None:
        pipe.get(self._rkey(key))  # results are not deleted on read: they expire

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

    if TYPE_CHECKING:  # provided by RedisStorage (RedisLeasesMixin)

        def _queue_member(self, data: bytes, priority: float | None) -> tuple[bytes, float]: ...

    @classmethod
    def _stamp(cls) -> bytes:
        # Strictly increasing within this process even if the wall clock steps back.
        with cls._clock_lock:
            now = max(int(time.time() * 1_000_000), RedisPriorityQueue._last_us + 1)
            RedisPriorityQueue._last_us = now
        return struct.pack(">Q", now)

    def enqueue(self, data: bytes, priority: float | None = None) -> None:
        self.conn.zadd(self.queue_key, dict([self._queue_member(data, priority)]))

    def enqueue_many(self, items: Iterable[tuple[bytes, float | None]]) -> None:
        """One ZADD for every message; increasing stamps keep FIFO order among equals."""
        mapping = dict(self._queue_member(data, priority) for data, priority in items)
        if mapping:
            self.conn.zadd(self.queue_key, mapping)

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
