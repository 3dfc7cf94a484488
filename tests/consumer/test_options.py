"""The option table: every huey_consumer flag (short and long) and ``huey run``, the
ConsumerConfig validation and logger set-up, and the Consumer's own option checks."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from huey import MemoryHuey, SqliteHuey
from huey.cli import build_parser
from huey.consumer import Consumer, ConsumerOptionError, ForkSafeFlag
from huey.consumer_options import (
    ConsumerConfig,
    OptionParserHandler,
    config_defaults,
    config_keys,
    option,
)
from huey.exceptions import ConfigurationError

# (short, long, argument or None, dest, parsed value) for EVERY flag of spec section 16.3.
FLAGS: list[tuple[str, str, str | None, str, Any]] = [
    ("-l", "--logfile", "out.log", "logfile", "out.log"),
    ("-v", "--verbose", None, "verbose", True),
    ("-q", "--quiet", None, "verbose", False),
    ("-S", "--simple", None, "simple_log", True),
    ("-w", "--workers", "4", "workers", 4),
    ("-k", "--worker-type", "process", "worker_type", "process"),
    ("-d", "--delay", "0.5", "initial_delay", 0.5),
    ("-m", "--max-delay", "3.5", "max_delay", 3.5),
    ("-b", "--backoff", "2", "backoff", 2.0),
    ("-c", "--health-check-interval", "2.5", "health_check_interval", 2.5),
    ("-C", "--disable-health-check", None, "check_worker_health", False),
    ("-f", "--flush-locks", None, "flush_locks", True),
    ("-L", "--extra-locks", "a,b", "extra_locks", "a,b"),
    ("-M", "--max-tasks", "20", "max_tasks", 20),
    ("-t", "--shutdown-timeout", "7.5", "shutdown_timeout", 7.5),
    ("-g", "--graceful-signal", "TERM", "graceful_signal", "TERM"),
    ("-s", "--scheduler-interval", "5", "scheduler_interval", 5),
    ("-n", "--no-periodic", None, "periodic", False),
    # huey-ng additions
    ("-T", "--visibility-timeout", "12.5", "visibility_timeout", 12.5),
]
SPEC_DEFAULTS = {
    "logfile": None,
    "verbose": None,
    "simple_log": None,
    "workers": 1,
    "worker_type": "thread",
    "initial_delay": 0.1,
    "max_delay": 10.0,
    "backoff": 1.15,
    "health_check_interval": 10,
    "check_worker_health": True,
    "flush_locks": False,
    "extra_locks": None,
    "max_tasks": None,
    "shutdown_timeout": None,
    "graceful_signal": "INT",
    "scheduler_interval": 1,
    "periodic": True,
}
# Options huey-ng adds beyond upstream's (spec section 16.3 lists only the ones above).
HUEY_NG_DEFAULTS = {"visibility_timeout": None}
ALL_DEFAULTS = {**SPEC_DEFAULTS, **HUEY_NG_DEFAULTS}


def parse_optparse(args: list[str]) -> Any:
    options, positional = OptionParserHandler().get_option_parser().parse_args(args)
    assert positional == ["app.huey"]
    return options


def parse_huey_run(args: list[str]) -> Any:
    namespace = build_parser().parse_args(["run", *args])
    assert namespace.huey_path == "app.huey"
    return namespace


PARSERS = pytest.mark.parametrize("parse", [parse_optparse, parse_huey_run])


@pytest.mark.timeout(10)
@PARSERS
@pytest.mark.parametrize("spelling", ["short", "long"])
@pytest.mark.parametrize("flag", FLAGS, ids=[f[1] for f in FLAGS])
def test_every_flag_parses(parse: Any, spelling: str, flag: tuple[Any, ...]) -> None:
    short, long, argument, dest, expected = flag
    name = short if spelling == "short" else long
    args = [name] if argument is None else [name, argument]
    options = parse([*args, "app.huey"])
    assert getattr(options, dest) == expected
    assert type(getattr(options, dest)) is type(expected)
    # Every other setting keeps its default.
    for key, default in SPEC_DEFAULTS.items():
        if key != dest:
            assert getattr(options, key) == default, key


@pytest.mark.timeout(10)
@PARSERS
def test_defaults_match_the_spec(parse: Any) -> None:
    options = parse(["app.huey"])
    assert {key: getattr(options, key) for key in SPEC_DEFAULTS} == SPEC_DEFAULTS


@pytest.mark.timeout(10)
def test_table_covers_every_option_and_config_key() -> None:
    parser = OptionParserHandler().get_option_parser()
    strings = {
        s
        for opt in parser.option_list + sum((g.option_list for g in parser.option_groups), [])
        for s in opt._short_opts + opt._long_opts
    } - {"-h", "--help"}
    assert strings == {f[0] for f in FLAGS} | {f[1] for f in FLAGS}
    assert set(config_keys) == set(ALL_DEFAULTS)
    assert dict(config_defaults) == ALL_DEFAULTS
    assert ConsumerConfig()._asdict() == ALL_DEFAULTS


@pytest.mark.timeout(10)
def test_option_helper_derives_flags() -> None:
    assert option("workers", type="int") == (
        ("-w", "--workers"),
        {"type": "int", "dest": "workers"},
    )
    flags, kwargs = option(("k", "worker-type"))
    assert flags == ("-k", "--worker-type") and kwargs["dest"] == "worker_type"


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "settings,message",
    [
        ({"backoff": 0.5}, "backoff (-b) must be >= 1"),
        ({"scheduler_interval": 7}, "scheduler interval (-s) must be between 1 and 60"),
        ({"scheduler_interval": 0}, "scheduler interval"),
        ({"scheduler_interval": 120}, "scheduler interval"),
        ({"graceful_signal": "HUP"}, "graceful signal (-g) must be INT or TERM"),
        ({"workers": 0}, "number of workers (-w) must be >= 1"),
        ({"health_check_interval": 0}, "health check interval (-c) must be > 0"),
    ],
)
def test_config_validate_rejects_bad_values(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ConsumerConfig(**settings).validate()


@pytest.mark.timeout(10)
def test_config_loglevel_and_values() -> None:
    assert ConsumerConfig().loglevel == logging.INFO
    assert ConsumerConfig(verbose=True).loglevel == logging.DEBUG
    assert ConsumerConfig(verbose=False).loglevel == logging.WARNING
    values = ConsumerConfig(workers=3, logfile="x.log").values
    assert values["workers"] == 3
    assert not {"logfile", "verbose", "simple_log"} & set(values)
    # values are exactly the Consumer's keyword arguments.
    consumer = Consumer(MemoryHuey("cfg"), **values)
    assert consumer.workers == 3


def format_line(config: ConsumerConfig, logger: logging.Logger) -> str:
    handler = logger.handlers[-1]
    record = logger.makeRecord(logger.name, logging.INFO, __file__, 1, "hello %s", ("x",), None)
    return handler.format(record)


@pytest.mark.timeout(10)
def test_setup_logger_formats_and_levels(tmp_path: Path) -> None:
    logger = logging.getLogger("huey-options-test")
    try:
        config = ConsumerConfig()
        config.setup_logger(logger)
        assert logger.level == logging.INFO
        line = format_line(config, logger)
        assert line.endswith("] INFO:huey-options-test:MainThread:hello x") and line[0] == "["
        process = ConsumerConfig(worker_type="process", verbose=True)
        process.setup_logger(logger)
        assert len(logger.handlers) == 1, "a second set-up replaces the handler"
        assert logger.level == logging.DEBUG
        assert f":{os.getpid()}:hello x" in format_line(process, logger)
        simple = ConsumerConfig(simple_log=True, verbose=False, logfile=str(tmp_path / "c.log"))
        simple.setup_logger(logger)
        assert logger.level == logging.WARNING
        assert isinstance(logger.handlers[0], logging.FileHandler)
        line = format_line(simple, logger)
        assert line[2] == ":" and line[5] == ":" and line[8:] == " hello x"  # HH:MM:SS msg
        logger.warning("to the file")
        logger.handlers[0].flush()
        assert "to the file" in (tmp_path / "c.log").read_text()
    finally:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        ({"worker_type": "fiber"}, ValueError, "worker_type must be one of"),
        ({"scheduler_interval": 7}, ConfigurationError, "divides 60"),
        ({"max_tasks": 5, "check_worker_health": False}, ConfigurationError, "health check"),
        ({"graceful_signal": "HUP"}, ValueError, "'INT' or 'TERM'"),
        ({"workers": 0}, ConfigurationError, "workers must be a whole number >= 1"),
        ({"backoff": 0.9}, ValueError, "backoff must be >= 1"),
        ({"health_check_interval": 0}, ValueError, "health_check_interval must be > 0"),
    ],
)
def test_consumer_rejects_bad_options(kwargs: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        Consumer(MemoryHuey("bad"), **kwargs)


@pytest.mark.timeout(10)
def test_consumer_option_normalisation() -> None:
    huey = MemoryHuey("norm")
    assert Consumer(huey, scheduler_interval=0).scheduler_interval == 1  # clamped
    assert Consumer(huey, scheduler_interval=120).scheduler_interval == 60
    assert Consumer(huey, worker_type="gevent").worker_type == "greenlet"
    consumer = Consumer(huey, graceful_signal="TERM")
    assert (consumer.graceful_signal, consumer.interrupt_signal) == (15, 2)
    assert issubclass(ConsumerOptionError, ConfigurationError)
    assert issubclass(ConsumerOptionError, ValueError)


@pytest.mark.timeout(10)
def test_start_refuses_immediate_mode() -> None:
    huey = MemoryHuey("imm", immediate=True)
    with pytest.raises(ConfigurationError, match="immediate mode"):
        Consumer(huey).start()


@pytest.mark.timeout(10)
def test_flush_locks_at_init(tmp_path: Path) -> None:
    huey = SqliteHuey("locks", filename=str(tmp_path / "l.db"))
    huey.lock_task("registered")  # registered in huey._locks, as a decorator would be
    for name in ("registered", "extra", "kept"):
        huey.put_if_empty(f"locks.lock.{name}", "1")
    Consumer(huey, flush_locks=True)
    assert not huey.is_locked("registered") and huey.is_locked("extra")
    Consumer(huey, extra_locks="extra, missing")
    assert not huey.is_locked("extra") and huey.is_locked("kept")


@pytest.mark.timeout(10)
def test_fork_safe_flag_crosses_fork_and_sees_parent_death() -> None:
    flag = ForkSafeFlag()
    assert not flag.is_set() and not flag.wait(0.01)
    pid = os.fork()
    if pid == 0:  # child: wait for the parent's set()
        os._exit(0 if flag.wait(10) else 1)
    flag.set()
    assert os.waitpid(pid, 0)[1] == 0
    flag.clear()
    assert not flag.is_set()

    # A child that dropped its write end sees the flag set once no writer is left.
    orphan = ForkSafeFlag()
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        orphan.close_writer()
        os.close(reader)
        os.write(writer, b"1")
        os._exit(0 if orphan.wait(10) else 1)
    os.close(writer)
    os.read(reader, 1)
    os.close(orphan._write_fd)  # the "parent dies": its write end goes away
    assert os.waitpid(pid, 0)[1] == 0


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=30
    )


@pytest.mark.timeout(60)
def test_command_line_errors(tmp_path: Path) -> None:
    consumer = ("-m", "huey.bin.huey_consumer")
    missing = run_cli(*consumer, cwd=tmp_path)
    assert missing.returncode == 1
    assert "missing the import path of the Huey instance" in missing.stderr

    for command in (consumer, ("-m", "huey.cli", "run")):
        bad = run_cli(*command, "no_such_module.huey", cwd=tmp_path)
        assert bad.returncode == 1
        lines = bad.stderr.strip().splitlines()
        assert len(lines) == 1 and "cannot load the Huey instance 'no_such_module.huey'" in lines[0]

    not_huey = run_cli(*consumer, "os.sep", cwd=tmp_path)
    assert not_huey.returncode == 1 and "is a str, not a Huey instance" in not_huey.stderr

    invalid = run_cli(*consumer, "-s", "7", "app.huey", cwd=tmp_path)
    assert invalid.returncode == 1 and "scheduler interval (-s)" in invalid.stderr

    no_command = run_cli("-m", "huey.cli", cwd=tmp_path)
    assert no_command.returncode == 2 and "run" in no_command.stderr
