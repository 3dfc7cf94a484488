"""Unit tests for ``huey.utils`` (spec §7.4 and §17).

Time-zone tests run with a non-UTC local zone (``TZ`` + ``time.tzset()``), so that local and
UTC conversions really differ.
"""

from __future__ import annotations

import copy
import datetime
import multiprocessing
import os
import pickle
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from huey import utils
from huey.utils import (
    SKIPPED,
    ChordConfig,
    Error,
    FileLock,
    aware_to_utc,
    decode,
    encode,
    is_naive,
    load_class,
    local_to_utc,
    make_naive,
    noop_context,
    normalize_expire_time,
    normalize_time,
    utcnow,
)

UTC = datetime.timezone.utc
PLUS_2 = datetime.timezone(datetime.timedelta(hours=2))
IST_OFFSET = datetime.timedelta(hours=5, minutes=30)


def _set_tz(value: str | None) -> None:
    if value is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = value
    time.tzset()


@pytest.fixture
def local_ist() -> Iterator[None]:
    """Local time is UTC+05:30 with no DST (POSIX TZ string: needs no tz database)."""
    old = os.environ.get("TZ")
    _set_tz("IST-5:30")
    assert time.timezone == -(5 * 3600 + 1800)
    try:
        yield
    finally:
        _set_tz(old)


@pytest.fixture
def local_us_eastern() -> Iterator[None]:
    """Local time is US Eastern with DST (UTC-5 in winter, UTC-4 in summer)."""
    old = os.environ.get("TZ")
    _set_tz("EST+5EDT,M3.2.0,M11.1.0")
    try:
        yield
    finally:
        _set_tz(old)


def real_utc_now() -> datetime.datetime:
    return datetime.datetime.now(UTC).replace(tzinfo=None)


# --- utcnow / is_naive / conversions -------------------------------------------------------


def test_utcnow_is_naive_utc(local_ist: None) -> None:
    before = real_utc_now()
    now = utcnow()
    after = real_utc_now()
    assert now.tzinfo is None
    assert before <= now <= after
    # It is not local time: local is 5:30 ahead.
    local = datetime.datetime.now()
    assert local - now > datetime.timedelta(hours=5)


def test_is_naive() -> None:
    class NoOffset(datetime.tzinfo):
        def utcoffset(self, dt: datetime.datetime | None) -> None:
            return None

    assert is_naive(datetime.datetime(2024, 1, 1))
    assert not is_naive(datetime.datetime(2024, 1, 1, tzinfo=UTC))
    assert not is_naive(datetime.datetime(2024, 1, 1, tzinfo=PLUS_2))
    assert is_naive(datetime.datetime(2024, 1, 1, tzinfo=NoOffset()))


def test_make_naive_gives_local_time(local_ist: None) -> None:
    aware = datetime.datetime(2024, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
    naive = make_naive(aware)
    assert naive.tzinfo is None
    assert naive == datetime.datetime(2024, 1, 1, 17, 30, 0, 123456)
    assert make_naive(datetime.datetime(2024, 1, 1, 14, 0, tzinfo=PLUS_2)) == naive.replace(
        microsecond=0
    )


def test_aware_to_utc(local_ist: None) -> None:
    aware = datetime.datetime(2024, 6, 1, 1, 30, 5, 7, tzinfo=PLUS_2)
    result = aware_to_utc(aware)
    assert result.tzinfo is None
    assert result == datetime.datetime(2024, 5, 31, 23, 30, 5, 7)
    assert aware_to_utc(datetime.datetime(2024, 1, 1, tzinfo=UTC)) == datetime.datetime(2024, 1, 1)


def test_local_to_utc(local_ist: None) -> None:
    local = datetime.datetime(2024, 1, 1, 5, 0, 0, 250000)
    result = local_to_utc(local)
    assert result.tzinfo is None
    assert result == datetime.datetime(2023, 12, 31, 23, 30, 0, 250000)


def test_local_to_utc_follows_dst(local_us_eastern: None) -> None:
    assert local_to_utc(datetime.datetime(2024, 1, 15, 12, 0)) == datetime.datetime(
        2024, 1, 15, 17, 0
    )
    assert local_to_utc(datetime.datetime(2024, 7, 15, 12, 0)) == datetime.datetime(
        2024, 7, 15, 16, 0
    )


def test_local_and_make_naive_are_inverse(local_us_eastern: None) -> None:
    for month in (1, 4, 7, 10, 12):
        local = datetime.datetime(2024, month, 10, 8, 45, 1)
        utc_naive = local_to_utc(local)
        assert make_naive(utc_naive.replace(tzinfo=UTC)) == local


# --- normalize_time -------------------------------------------------------------------------


def test_normalize_time_requires_exactly_one() -> None:
    with pytest.raises(ValueError):
        normalize_time()
    with pytest.raises(ValueError):
        normalize_time(eta=datetime.datetime(2024, 1, 1), delay=5)


@pytest.mark.parametrize("eta", [datetime.date(2024, 1, 1), "2024-01-01", 1700000000, 1.5])
def test_normalize_time_rejects_non_datetime_eta(eta: object) -> None:
    with pytest.raises(ValueError, match="eta must be a datetime"):
        normalize_time(eta=eta)  # type: ignore[arg-type]


@pytest.mark.parametrize("delay", ["10", [1], True])
def test_normalize_time_rejects_bad_delay(delay: object) -> None:
    with pytest.raises(ValueError, match="delay"):
        normalize_time(delay=delay)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "delay", [60, 60.0, datetime.timedelta(seconds=60)], ids=["int", "float", "timedelta"]
)
def test_normalize_time_delay_utc(local_ist: None, delay: float | datetime.timedelta) -> None:
    before = real_utc_now()
    result = normalize_time(delay=delay, utc=True)
    after = real_utc_now()
    minute = datetime.timedelta(seconds=60)
    assert result.tzinfo is None
    assert before + minute <= result <= after + minute


def test_normalize_time_delay_local(local_ist: None) -> None:
    before = datetime.datetime.now()
    result = normalize_time(delay=datetime.timedelta(hours=1), utc=False)
    after = datetime.datetime.now()
    hour = datetime.timedelta(hours=1)
    assert result.tzinfo is None
    assert before + hour <= result <= after + hour


@pytest.mark.parametrize("utc", [True, False])
def test_normalize_time_delay_zero_means_now(local_ist: None, utc: bool) -> None:
    clock = real_utc_now if utc else datetime.datetime.now
    before = clock()
    result = normalize_time(delay=0, utc=utc)
    after = clock()
    assert before <= result <= after
    # A zero timedelta is the same.
    before = clock()
    assert before <= normalize_time(delay=datetime.timedelta(0), utc=utc) <= clock()


def test_normalize_time_naive_eta_utc_is_read_as_local(local_ist: None) -> None:
    eta = datetime.datetime(2024, 3, 1, 12, 0)
    assert normalize_time(eta=eta, utc=True) == eta - IST_OFFSET


def test_normalize_time_aware_eta_utc(local_ist: None) -> None:
    eta = datetime.datetime(2024, 3, 1, 12, 0, tzinfo=PLUS_2)
    result = normalize_time(eta=eta, utc=True)
    assert result.tzinfo is None
    assert result == datetime.datetime(2024, 3, 1, 10, 0)


def test_normalize_time_naive_eta_local_is_unchanged(local_ist: None) -> None:
    eta = datetime.datetime(2024, 3, 1, 12, 0, 0, 5)
    assert normalize_time(eta=eta, utc=False) == eta


def test_normalize_time_aware_eta_local(local_ist: None) -> None:
    eta = datetime.datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    result = normalize_time(eta=eta, utc=False)
    assert result.tzinfo is None
    assert result == datetime.datetime(2024, 3, 1, 17, 30)


def test_normalize_time_defaults_to_utc(local_ist: None) -> None:
    eta = datetime.datetime(2024, 3, 1, 12, 0)
    assert normalize_time(eta) == normalize_time(eta=eta, utc=True)


def test_normalize_expire_time(local_ist: None) -> None:
    eta = datetime.datetime(2024, 3, 1, 12, 0)
    assert normalize_expire_time(eta, utc=True) == eta - IST_OFFSET
    assert normalize_expire_time(eta, utc=False) == eta
    aware = datetime.datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    assert normalize_expire_time(aware, utc=True) == datetime.datetime(2024, 3, 1, 12, 0)

    for expires in (30, 30.0, datetime.timedelta(seconds=30)):
        before = real_utc_now()
        result = normalize_expire_time(expires, utc=True)
        assert before + datetime.timedelta(seconds=30) <= result
        assert result <= real_utc_now() + datetime.timedelta(seconds=30)

    before = datetime.datetime.now()
    result = normalize_expire_time(30, utc=False)
    assert before + datetime.timedelta(seconds=30) <= result
    assert result <= datetime.datetime.now() + datetime.timedelta(seconds=30)


# --- load_class, encode, decode -------------------------------------------------------------


def test_load_class() -> None:
    assert load_class("huey.utils.Error") is Error
    assert load_class("os.path.join") is os.path.join
    assert load_class("collections.OrderedDict").__name__ == "OrderedDict"


@pytest.mark.parametrize(
    "path", ["no_such_module_xyz.Thing", "huey.utils.NoSuchThing", "nodots", "", ".x"]
)
def test_load_class_bad_path(path: str) -> None:
    with pytest.raises(ImportError):
        load_class(path)


def test_encode() -> None:
    raw = b"\x00\xff"
    assert encode(raw) is raw
    assert encode("héllo") == "héllo".encode()
    assert encode(None) is None
    assert encode(42) == b"42"
    assert encode(1.5) == b"1.5"


def test_decode() -> None:
    text = "abc"
    assert decode(text) is text
    assert decode("héllo".encode()) == "héllo"
    assert decode(None) is None
    assert decode(7) == "7"


# --- FileLock -------------------------------------------------------------------------------


def test_file_lock_creates_parent_directory(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "huey.lock"
    lock = FileLock(str(path))
    assert path.parent.is_dir()
    with lock as held:
        assert held is lock
        assert path.exists()
    # Releasing twice (or without acquiring) is harmless.
    lock.release()
    lock.release()


def test_file_lock_without_directory_part(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with FileLock("plain.lock"):
        assert (tmp_path / "plain.lock").exists()


def _count_under_lock(lock_path: str, counter_path: str, rounds: int) -> None:
    """Read-modify-write a counter file ``rounds`` times, each under the file lock."""
    lock = FileLock(lock_path)
    for _ in range(rounds):
        with lock:
            with open(counter_path) as f:
                value = int(f.read())
            time.sleep(0)  # invite a context switch between the read and the write
            with open(counter_path, "w") as f:
                f.write(str(value + 1))


def _hold_then_log(lock_path: str, log_path: str, ready: object) -> None:
    lock = FileLock(lock_path)
    ready.set()  # type: ignore[attr-defined]
    with lock:
        with open(log_path, "a") as f:
            f.write("child-acquired\n")


def test_file_lock_excludes_other_process(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    lock_path = str(tmp_path / "locks" / "x.lock")
    log_path = str(tmp_path / "log.txt")
    lock = FileLock(lock_path)
    ready = ctx.Event()
    lock.acquire()
    child = ctx.Process(target=_hold_then_log, args=(lock_path, log_path, ready))
    child.start()
    try:
        assert ready.wait(30), "child process did not start within 30 s"
        time.sleep(0.2)  # give the child a chance to (wrongly) get the lock
        with open(log_path, "a") as f:
            f.write("parent-released\n")
    finally:
        lock.release()
    child.join(30)
    assert child.exitcode == 0
    with open(log_path) as f:
        assert f.read().splitlines() == ["parent-released", "child-acquired"]


def test_file_lock_counter_between_processes(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    lock_path = str(tmp_path / "counter.lock")
    counter_path = tmp_path / "counter"
    counter_path.write_text("0")
    rounds = 200
    procs = [
        ctx.Process(target=_count_under_lock, args=(lock_path, str(counter_path), rounds))
        for _ in range(2)
    ]
    for proc in procs:
        proc.start()
    _count_under_lock(lock_path, str(counter_path), rounds)
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    assert int(counter_path.read_text()) == 3 * rounds


def test_file_lock_excludes_other_thread(tmp_path: Path) -> None:
    # One FileLock object shared by threads: each thread has its own descriptor.
    lock = FileLock(str(tmp_path / "t.lock"))
    counter_path = tmp_path / "counter"
    counter_path.write_text("0")
    rounds = 200

    def work() -> None:
        for _ in range(rounds):
            with lock:
                value = int(counter_path.read_text())
                time.sleep(0)
                counter_path.write_text(str(value + 1))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive()
    assert int(counter_path.read_text()) == 3 * rounds


# --- noop_context, wire tuples and SKIPPED ----------------------------------------------------


def test_noop_context() -> None:
    with noop_context() as value:
        assert value is None
    with pytest.raises(KeyError):
        with noop_context():
            raise KeyError("not swallowed")


def test_error_namedtuple() -> None:
    assert Error._fields == ("metadata",)
    assert Error.__module__ == "huey.utils"
    err = Error({"error": "boom"})
    assert err.metadata == {"error": "boom"}
    assert pickle.loads(pickle.dumps(err)) == err
    assert type(pickle.loads(pickle.dumps(err))) is Error


def test_chord_config_namedtuple() -> None:
    assert ChordConfig._fields == ("cid", "size", "idx", "callback")
    assert ChordConfig.__module__ == "huey.utils"
    config = ChordConfig("cid-1", 3, 0, None)
    assert (config.cid, config.size, config.idx, config.callback) == ("cid-1", 3, 0, None)
    assert config == ("cid-1", 3, 0, None)
    assert pickle.loads(pickle.dumps(config)) == config


def test_skipped_repr_and_identity() -> None:
    assert repr(SKIPPED) == "SKIPPED"
    assert utils.SKIPPED is SKIPPED
    assert type(SKIPPED)() is SKIPPED
    assert copy.copy(SKIPPED) is SKIPPED
    assert copy.deepcopy([SKIPPED])[0] is SKIPPED
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        data = pickle.dumps(SKIPPED, protocol)
        assert pickle.loads(data) is SKIPPED
        # Pickled as a global reference to huey.utils.SKIPPED (wire format).
        assert b"huey.utils" in data and b"SKIPPED" in data


def test_skipped_inside_containers_round_trips() -> None:
    value = pickle.loads(pickle.dumps([1, SKIPPED, Error({})]))
    assert value[1] is SKIPPED
    assert value[2] == Error({})
