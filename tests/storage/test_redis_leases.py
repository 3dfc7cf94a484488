"""Leased delivery on the Redis storages: real processes, real kills, the ``hueyng.*`` keys.

The generic multi-process scenarios (``kill_scenario``, ``reaper_scenario``,
``wake_scenario``) take a storage factory, so ``test_postgres_leases.py`` runs them too.
Every wait is bounded (``WAIT``); nothing asserts on timing beyond generous bounds.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import select
import signal
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import pytest

from huey.storage import (
    BaseStorage,
    PriorityRedisExpireStorage,
    PriorityRedisStorage,
    RedisExpireStorage,
    RedisStorage,
)

redis = pytest.importorskip("redis")

WAIT = 30.0
ALL_CLASSES = [RedisStorage, RedisExpireStorage, PriorityRedisStorage, PriorityRedisExpireStorage]
QUEUE_KINDS = [RedisStorage, PriorityRedisStorage]  # the lease design differs by queue type
Factory = Callable[[], BaseStorage]
_FORK = multiprocessing.get_context("fork")


# -- processes -----------------------------------------------------------------------------
def fork(target: Callable[[], None]) -> int:
    """Run ``target`` in a forked child that exits with 0, or 1 if it raised."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 0
        try:
            target()
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    return pid


def reap(pids: list[int], deadline: float) -> list[int]:
    """Wait for the children until ``deadline``, then kill the stragglers; exit codes."""
    codes: dict[int, int] = {}
    while len(codes) < len(pids) and time.monotonic() < deadline:
        for pid in pids:
            if pid not in codes:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    codes[pid] = os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    for pid in pids:
        if pid not in codes:
            os.kill(pid, signal.SIGKILL)
            codes[pid] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    return [codes[pid] for pid in pids]


def read_lines(fd: int, count: int, deadline: float) -> list[bytes]:
    """Read ``count`` newline-terminated records from a pipe, giving up at ``deadline``."""
    buffer = b""
    while buffer.count(b"\n") < count:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        buffer += chunk
    return buffer.splitlines()


# -- scenarios shared with test_postgres_leases.py -----------------------------------------
def kill_scenario(factory: Factory, n: int = 40, held: int = 5, survivors: int = 3) -> None:
    """A worker SIGKILLed while holding leases loses nothing; survivors ack each message once.

    Messages the dead worker held come back with delivery count 2, the others with 1.
    """
    store = factory()
    messages = [b"msg-%03d" % i for i in range(n)]
    for message in messages:
        store.enqueue(message)
    deadline = time.monotonic() + WAIT
    victim_r, victim_w = os.pipe()

    def victim() -> None:
        own = factory()
        for _ in range(held):
            delivery = own.dequeue_leased(1.0)
            assert delivery is not None
            os.write(victim_w, delivery.data + b"\n")
        time.sleep(WAIT)  # "busy" until killed

    victim_pid = fork(victim)
    taken_by_victim = read_lines(victim_r, held, deadline)
    os.kill(victim_pid, signal.SIGKILL)
    os.waitpid(victim_pid, 0)
    assert len(taken_by_victim) == held

    acked = _FORK.Value("i", 0)
    out_r, out_w = os.pipe()

    def survivor() -> None:
        own = factory()
        while acked.value < n and time.monotonic() < deadline:
            delivery = own.dequeue_leased(WAIT)
            if delivery is None:
                own.requeue_expired()  # every survivor reaps: each lease comes back once
                continue
            os.write(out_w, b"%d %s\n" % (delivery.count, delivery.data))
            own.ack(delivery.token)
            with acked.get_lock():
                acked.value += 1

    pids = [fork(survivor) for _ in range(survivors)]
    records = read_lines(out_r, n, deadline)
    assert reap(pids, deadline + 5) == [0] * survivors
    for fd in (victim_r, victim_w, out_r, out_w):
        os.close(fd)
    done = [record.split(b" ", 1) for record in records]
    assert sorted(data for _, data in done) == messages  # all of them, each exactly once
    assert {data for count, data in done if count == b"2"} == set(taken_by_victim)
    assert {count for count, _ in done} == {b"1", b"2"}
    assert store.requeue_expired() == 0
    assert store.queue_size() == 0


def reaper_scenario(factory: Factory, n: int = 50, reapers: int = 4) -> None:
    """Concurrent ``requeue_expired`` calls in separate processes requeue each lease once."""
    store = factory()
    messages = [b"job-%03d" % i for i in range(n)]
    for message in messages:
        store.enqueue(message)
    assert all(store.dequeue_leased(0.2) is not None for _ in range(n))
    time.sleep(0.6)  # every lease has expired
    go = _FORK.Event()
    out_r, out_w = os.pipe()

    def reaper() -> None:
        own = factory()
        own.queue_size()  # connect before the start signal, so the calls really overlap
        assert go.wait(WAIT)
        os.write(out_w, b"%d\n" % own.requeue_expired())

    pids = [fork(reaper) for _ in range(reapers)]
    deadline = time.monotonic() + WAIT
    go.set()
    counts = [int(line) for line in read_lines(out_r, reapers, deadline)]
    assert reap(pids, deadline) == [0] * reapers
    os.close(out_r)
    os.close(out_w)
    assert sum(counts) == n and len(counts) == reapers
    assert store.queue_size() == n
    assert sorted(store.enqueued_items()) == messages  # no duplicates, none missing
    assert store.requeue_expired() == 0
    again = store.dequeue_leased(5)
    assert again is not None and again.count == 2


def wake_scenario(waiter: BaseStorage, other: BaseStorage) -> None:
    """A blocking leased take wakes when another client enqueues (long before its timeout)."""
    found: list[Any] = []
    started = time.monotonic()
    thread = threading.Thread(target=lambda: found.append(waiter.dequeue_leased(30)))
    thread.start()
    time.sleep(0.3)  # let it block first
    other.enqueue(b"wake up")
    thread.join(WAIT)
    assert not thread.is_alive()
    assert found and found[0] is not None and found[0].data == b"wake up"
    assert time.monotonic() - started < waiter.read_timeout / 2  # type: ignore[attr-defined]
    assert other.queue_size() == 0


# -- fixtures ------------------------------------------------------------------------------
def factory_for(cls: type[RedisStorage], name: str, url: str, **kwargs: Any) -> Factory:
    return lambda: cls(name, url=url, read_timeout=0.5, **kwargs)


# -- multi-process -------------------------------------------------------------------------
@pytest.mark.parametrize("cls", QUEUE_KINDS)
def test_killed_worker_loses_nothing(
    cls: type[RedisStorage], redis_url: str, unique_name: str, client: Any
) -> None:
    kill_scenario(factory_for(cls, unique_name, redis_url))
    assert client.zcard(f"hueyng.leases.{unique_name}") == 0
    assert client.hlen(f"hueyng.leased.{unique_name}") == 0
    assert client.hlen(f"hueyng.deliveries.{unique_name}") == 0  # acks drop the counters


@pytest.mark.parametrize("cls", QUEUE_KINDS)
def test_concurrent_reapers_requeue_each_lease_once(
    cls: type[RedisStorage], redis_url: str, unique_name: str, client: Any
) -> None:
    reaper_scenario(factory_for(cls, unique_name, redis_url))


@pytest.mark.parametrize("cls", QUEUE_KINDS)
def test_blocking_leased_take_wakes_on_enqueue(
    cls: type[RedisStorage], redis_url: str, unique_name: str, client: Any
) -> None:
    waiter = cls(unique_name, url=redis_url, read_timeout=20)
    wake_scenario(waiter, cls(unique_name, url=redis_url))


@pytest.mark.parametrize("cls", QUEUE_KINDS)
def test_blocking_leased_take_wakes_on_requeue(
    cls: type[RedisStorage], redis_url: str, unique_name: str, client: Any
) -> None:
    other = cls(unique_name, url=redis_url)
    other.enqueue(b"m")
    first = other.dequeue_leased(0.2)
    assert first is not None
    waiter = cls(unique_name, url=redis_url, read_timeout=20)
    found: list[Any] = []
    thread = threading.Thread(target=lambda: found.append(waiter.dequeue_leased(30)))
    thread.start()
    time.sleep(0.5)  # the lease has expired, but only a reaper makes it available
    assert other.requeue_expired() == 1
    thread.join(WAIT)
    assert found and found[0] is not None and found[0].data == b"m" and found[0].count == 2


def test_blocking_take_times_out_with_none(redis_url: str, unique_name: str, client: Any) -> None:
    for cls in QUEUE_KINDS:
        assert cls(unique_name, url=redis_url, read_timeout=0.2).dequeue_leased(5) is None


# -- layout --------------------------------------------------------------------------------
def test_waiting_leaves_the_list_as_it_was(redis_url: str, unique_name: str, client: Any) -> None:
    storage = RedisStorage(unique_name, url=redis_url)
    for data in (b"a", b"b", b"c"):
        storage.enqueue(data)
    assert storage._wait_for_message(5)
    assert storage.enqueued_items() == [b"a", b"b", b"c"]
    assert storage.dequeue() == b"a"  # an upstream consumer sees the same order


@pytest.mark.parametrize("cls", ALL_CLASSES)
def test_huey_ng_keys_are_beside_upstream_ones(
    cls: type[RedisStorage], redis_url: str, unique_name: str, client: Any
) -> None:
    storage = cls(unique_name, url=redis_url)
    storage.enqueue(b"kept")
    storage.enqueue(b"leased")
    upstream_before = {k for k in client.keys(f"*{unique_name}*") if k.startswith(b"huey.")}
    assert storage.dequeue_leased(30) is not None
    storage.add_dead_letter(b"poison", "crashed")
    assert storage.claim("tick", 30)
    assert storage.acquire_lease("scheduler", "me", 30)
    keys = {k.decode() for k in client.keys(f"*{unique_name}*")}
    ng = {k for k in keys if k.startswith("hueyng.")}
    assert {k.encode() for k in keys - ng} == upstream_before  # only the queue key
    assert ng == {
        f"hueyng.leases.{unique_name}",
        f"hueyng.leased.{unique_name}",
        f"hueyng.deliveries.{unique_name}",
        f"hueyng.dead.{unique_name}",
        f"hueyng.claim.{unique_name}.tick",
        f"hueyng.lease.{unique_name}.scheduler",
    }
    assert client.type(f"hueyng.dead.{unique_name}") == b"stream"
    assert 0 < client.pttl(f"hueyng.claim.{unique_name}.tick") <= 30_000
    assert client.get(f"hueyng.lease.{unique_name}.scheduler") == b"me"
    assert storage.queue_size() == 1 and storage.result_store_size() == 0
    storage.flush_all()
    assert client.keys(f"*{unique_name}*") == []


@pytest.mark.parametrize("cls", [PriorityRedisStorage, PriorityRedisExpireStorage])
def test_priority_member_comes_back_unchanged(
    cls: type[RedisStorage], redis_url: str, unique_name: str, client: Any
) -> None:
    storage = cls(unique_name, url=redis_url)
    for data, priority in ((b"low", 1), (b"high", 5), (b"low2", 1)):
        storage.enqueue(data, priority)
    before = client.zrange(storage.queue_key, 0, -1, withscores=True)
    high = storage.dequeue_leased(0.2)
    low = storage.dequeue_leased(30)
    assert high is not None and high.data == b"high" and low is not None and low.data == b"low"
    storage.release(low.token)
    time.sleep(0.6)
    assert storage.requeue_expired() == 1
    # Same members (FIFO stamp included) and the same scores: order and priority kept.
    assert client.zrange(storage.queue_key, 0, -1, withscores=True) == before


def test_list_requeue_goes_to_the_consuming_end(
    redis_url: str, unique_name: str, client: Any
) -> None:
    storage = RedisStorage(unique_name, url=redis_url)
    for data in (b"first", b"second", b"third"):
        storage.enqueue(data)
    assert storage.dequeue_leased(0.2) is not None
    time.sleep(0.01)  # distinct expiries, so the reaper knows which expired first
    assert storage.dequeue_leased(0.2) is not None
    time.sleep(0.6)
    assert storage.requeue_expired() == 2
    assert storage.enqueued_items() == [b"first", b"second", b"third"]


def test_lease_expiry_uses_the_server_clock(redis_url: str, unique_name: str, client: Any) -> None:
    storage = RedisStorage(unique_name, url=redis_url)
    storage.enqueue(b"m")
    seconds, micros = client.time()
    server_ms = seconds * 1000 + micros // 1000
    delivery = storage.dequeue_leased(100)
    assert delivery is not None
    expiry = client.zscore(f"hueyng.leases.{unique_name}", delivery.token)
    assert server_ms + 100_000 <= expiry <= server_ms + 100_000 + WAIT * 1000


# -- behaviour -----------------------------------------------------------------------------
@pytest.mark.parametrize("cls", QUEUE_KINDS)
def test_heartbeat_of_many_tokens_never_resurrects_an_ack(
    cls: type[RedisStorage], redis_url: str, unique_name: str, client: Any
) -> None:
    storage = cls(unique_name, url=redis_url)
    for i in range(5):
        storage.enqueue(b"m%d" % i)
    taken = [storage.dequeue_leased(0.3) for _ in range(5)]
    tokens = [d.token for d in taken if d is not None and d.token]
    storage.ack(tokens[0])
    storage.extend_leases(tokens + ["no-such-token"], 30)
    time.sleep(0.6)
    assert storage.requeue_expired() == 0  # all four live leases were renewed
    assert client.zcard(f"hueyng.leases.{unique_name}") == 4
    storage.extend_leases(tokens[1:3], 0.1)
    time.sleep(0.4)
    assert storage.requeue_expired() == 2


def test_ack_and_release_of_stale_tokens_are_harmless(
    redis_url: str, unique_name: str, client: Any
) -> None:
    storage = RedisStorage(unique_name, url=redis_url)
    storage.enqueue(b"m")
    first = storage.dequeue_leased(0.2)
    assert first is not None
    time.sleep(0.5)
    assert storage.requeue_expired() == 1
    second = storage.dequeue_leased(30)
    assert second is not None and second.count == 2
    storage.release(first.token)  # the old holder wakes up late: nothing happens
    storage.ack(first.token)
    storage.ack(None)
    assert storage.queue_size() == 0
    assert client.hget(f"hueyng.deliveries.{unique_name}", _sha1(b"m")) == b"2"
    storage.ack(second.token)
    assert client.hlen(f"hueyng.deliveries.{unique_name}") == 0


def test_dead_letter_drops_the_delivery_counter(
    redis_url: str, unique_name: str, client: Any
) -> None:
    storage = PriorityRedisStorage(unique_name, url=redis_url)
    storage.enqueue(b"poison")
    delivery = storage.dequeue_leased(30)
    assert delivery is not None
    assert client.hexists(f"hueyng.deliveries.{unique_name}", _sha1(b"poison"))
    letter_id = storage.add_dead_letter(delivery.data, "crashed 3 times")
    storage.ack(delivery.token)
    assert not client.exists(f"hueyng.deliveries.{unique_name}")
    assert storage.pop_dead_letter("not-an-id") is None
    assert storage.pop_dead_letter("1-0") is None
    letter = storage.pop_dead_letter(letter_id)
    assert letter is not None and letter.data == b"poison" and letter.reason == "crashed 3 times"
    assert storage.dead_letters() == [] and storage.dead_letter_count() == 0


def test_bad_lease_arguments(redis_url: str, unique_name: str, client: Any) -> None:
    storage = RedisStorage(unique_name, url=redis_url)
    with pytest.raises(ValueError, match="lease_seconds"):
        storage.dequeue_leased(0)
    with pytest.raises(ValueError, match="ttl"):
        storage.claim("k", 0)
    with pytest.raises(ValueError, match="ttl"):
        storage.acquire_lease("k", "me", -1)


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()
