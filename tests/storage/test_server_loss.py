"""What the Redis and PostgreSQL storages do when their server goes away and comes back.

Redis: a throwaway ``redis-server`` started by the test on a free port (killed, frozen with
SIGSTOP, restarted; always killed in ``finally``). PostgreSQL: the storage's sessions are
cut with ``pg_terminate_backend``. The machine's shared servers are never stopped.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from huey.storage import PostgresStorage, RedisStorage
from tests.conftest import require_service

WAIT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_bounded(fn: Callable[[], Any], timeout: float = WAIT) -> tuple[Any, BaseException | None]:
    """Run ``fn`` in a thread; fail the test if it is still running after ``timeout``."""
    outcome: dict[str, Any] = {"error": None, "value": None}

    def target() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"call still running after {timeout}s (hangs)"
    return outcome["value"], outcome["error"]


# -- Redis ---------------------------------------------------------------------------------
redis = pytest.importorskip("redis")


@contextmanager
def redis_server(port: int) -> Iterator[subprocess.Popen[bytes]]:
    """A throwaway redis-server on ``port``; killed on exit whatever happens."""
    binary = shutil.which("redis-server")
    require_service("redis-server binary", binary is not None, "install redis-server")
    assert binary is not None
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        probe = redis.Redis(port=port, socket_connect_timeout=1)
        deadline = time.monotonic() + WAIT
        while True:
            try:
                probe.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        probe.close()
        yield proc
    finally:
        proc.send_signal(signal.SIGCONT)  # in case the test froze it
        proc.kill()
        proc.wait(WAIT)


class CountingConnection(redis.Connection):  # type: ignore[misc]
    """A real redis-py connection that counts its attempts to open a socket."""

    attempts = 0

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        if getattr(self, "_sock", None) is None:
            CountingConnection.attempts += 1
        return super().connect(*args, **kwargs)


def test_redis_server_killed_and_restarted() -> None:
    port = free_port()
    name = "loss" + uuid.uuid4().hex[:8]
    with redis_server(port) as proc:
        storage = RedisStorage(
            name, host="127.0.0.1", port=port, read_timeout=0.5, connection_class=CountingConnection
        )
        storage.enqueue(b"before")
        assert storage.dequeue() == b"before"
        proc.kill()
        proc.wait(WAIT)

        # One dequeue: a ConnectionError (the consumer logs it and backs off), after a
        # bounded number of connection attempts - the storage itself never spins.
        CountingConnection.attempts = 0
        value, error = run_bounded(storage.dequeue)
        assert isinstance(error, redis.ConnectionError), (value, error)
        assert 1 <= CountingConnection.attempts <= 5

        # A consumer-like loop for ~2 s with a 0.2 s back-off: attempts grow with the calls.
        CountingConnection.attempts = 0
        calls = 0
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            calls += 1
            _, error = run_bounded(storage.dequeue)
            assert isinstance(error, redis.ConnectionError)
            time.sleep(0.2)
        assert CountingConnection.attempts <= calls * 5

        # The application's enqueue fails fast with a clear error instead of hanging.
        _, error = run_bounded(lambda: storage.enqueue(b"lost"))
        assert isinstance(error, redis.ConnectionError)
        assert str(port) in str(error)

    with redis_server(port):  # same port: the same storage object works again
        storage.enqueue(b"after")
        assert storage.queue_size() == 1
        assert storage.dequeue() == b"after"
        storage.put_data("k", b"v", is_result=True)
        assert storage.wait_result("k", timeout=1) is True
        storage.close()


def test_redis_frozen_server_times_out_instead_of_hanging() -> None:
    port = free_port()
    with redis_server(port) as proc:
        storage = RedisStorage(
            "frozen", host="127.0.0.1", port=port, read_timeout=0.5, socket_timeout=1
        )
        storage.enqueue(b"a")
        proc.send_signal(signal.SIGSTOP)  # accepts TCP, never answers
        try:
            _, error = run_bounded(lambda: storage.enqueue(b"b"))
            assert isinstance(error, redis.RedisError)  # TimeoutError / ConnectionError
            _, error = run_bounded(lambda: storage.wait_result("x", timeout=None))
            assert error is None  # a lost connection ends the wait with False
        finally:
            proc.send_signal(signal.SIGCONT)
        assert storage.dequeue() == b"a"
        storage.close()


# -- PostgreSQL ----------------------------------------------------------------------------
psycopg = pytest.importorskip("psycopg")


def terminate(pg_dsn: str, application_name: str) -> int:
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        rows = admin.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where application_name = %s",
            (application_name,),
        ).fetchall()
        # Wait until the sessions are really gone, so the storage meets dead sockets.
        deadline = time.monotonic() + WAIT
        while admin.execute(
            "select count(*) from pg_stat_activity where application_name = %s",
            (application_name,),
        ).fetchone()[0]:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    return len(rows)


@pytest.fixture
def app_storage(pg_dsn: str, unique_name: str) -> Iterator[PostgresStorage]:
    store = PostgresStorage(
        unique_name, dsn=pg_dsn, read_timeout=60, application_name=f"hueyng-{unique_name}"
    )
    yield store
    store.flush_all()
    store.close()


def test_postgres_connection_cut_reconnects(app_storage: PostgresStorage, pg_dsn: str) -> None:
    app = f"hueyng-{app_storage.name}"
    app_storage.enqueue(b"one")
    assert terminate(pg_dsn, app) >= 1
    app_storage.enqueue(b"two")  # the dead connection is replaced, the insert retried
    assert app_storage.enqueued_items() == [b"one", b"two"]
    assert terminate(pg_dsn, app) >= 1
    assert app_storage.dequeue() == b"one"
    app_storage.put_data("k", b"v")
    assert terminate(pg_dsn, app) >= 1
    assert app_storage.peek_data("k") == b"v"
    assert app_storage.incr("c") == 1
    assert terminate(pg_dsn, app) >= 1
    # incr is not retried (a retry could count twice): it fails once, then reconnects.
    with pytest.raises(psycopg.OperationalError):
        app_storage.incr("c")
    assert app_storage.incr("c") == 2


def test_postgres_listener_cut_ends_the_wait(app_storage: PostgresStorage, pg_dsn: str) -> None:
    app = f"hueyng-{app_storage.name}"
    started = threading.Event()
    outcome: dict[str, Any] = {}

    def consume() -> None:
        started.set()
        outcome["first"] = app_storage.dequeue()  # blocks in LISTEN on an empty queue

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    started.wait(WAIT)
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        deadline = time.monotonic() + WAIT
        while not admin.execute(
            "select count(*) from pg_stat_activity where application_name = %s "
            "and query ilike 'LISTEN%%'",
            (app,),
        ).fetchone()[0]:
            assert time.monotonic() < deadline, "the dequeue never started listening"
            time.sleep(0.02)
    terminate(pg_dsn, app)
    thread.join(WAIT)  # well inside the 60 s read_timeout
    assert not thread.is_alive() and outcome["first"] is None
    app_storage.enqueue(b"after")
    value, error = run_bounded(app_storage.dequeue)
    assert error is None and value == b"after"


def test_postgres_unreachable_fails_fast(unique_name: str) -> None:
    dsn = f"postgresql://127.0.0.1:{free_port()}/test"
    _, error = run_bounded(lambda: PostgresStorage(unique_name, dsn=dsn))
    assert isinstance(error, psycopg.OperationalError)
    storage = PostgresStorage(unique_name, dsn=dsn, create_tables=False)
    _, error = run_bounded(lambda: storage.enqueue(b"x"))
    assert isinstance(error, psycopg.OperationalError)
    assert "127.0.0.1" in str(error)
    storage.close()
