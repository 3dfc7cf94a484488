"""Every public name of upstream huey 3.5.4 (spec section 1) imports from the same path."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

PUBLIC_NAMES: dict[str, list[str]] = {
    "huey": [
        "BlackHoleHuey", "CySqliteHuey", "Huey", "FileHuey", "MemoryHuey", "PostgresHuey",
        "PriorityRedisExpireHuey", "PriorityRedisHuey", "RedisExpireHuey", "RedisHuey",
        "SqliteHuey", "chord", "crontab", "group", "CancelExecution", "RetryTask", "Error",
        "SKIPPED", "__version__", "__author__", "__license__",
    ],
    "huey.api": [
        "Huey", "Task", "PeriodicTask", "TaskWrapper", "TaskLock", "RateLimit", "group",
        "chord", "Result", "ResultGroup", "ChordResult", "crontab", "BlackHoleHuey",
        "CySqliteHuey", "FileHuey", "MemoryHuey", "PostgresHuey", "PriorityRedisExpireHuey",
        "PriorityRedisHuey", "RedisExpireHuey", "RedisHuey", "SqliteHuey", "Error",
        "EmptyData", "Consumer", "normalize_time", "dash_re", "every_re", "BaseStorage",
        "MemoryStorage", "RedisStorage", "SqliteStorage", "FileStorage",
    ],
    "huey.storage": [
        "BaseStorage", "BlackHoleStorage", "MemoryStorage", "RedisStorage",
        "RedisExpireStorage", "RedisPriorityQueue", "PriorityRedisStorage",
        "PriorityRedisExpireStorage", "BaseSqlStorage", "SqliteStorage", "CySqliteStorage",
        "PostgresStorage", "FileStorage", "SCHEDULE_POP_LUA",
    ],
    "huey.consumer": [
        "Consumer", "Worker", "Scheduler", "BaseProcess", "Environment", "ThreadEnvironment",
        "GreenletEnvironment", "ProcessEnvironment", "WORKER_TO_ENVIRONMENT",
        "ConsumerStopped", "WorkerRecycle", "ForkSafeFlag",
    ],
    "huey.consumer_options": [
        "config_defaults", "config_keys", "option", "OptionParserHandler", "ConsumerConfig",
    ],
    "huey.bin.huey_consumer": ["err", "load_huey", "consumer_main"],
    "huey.exceptions": [
        "HueyException", "ConfigurationError", "TaskLockedException", "ResultTimeout",
        "TaskTimeout", "RateLimitExceeded", "CancelExecution", "RetryTask", "TaskException",
        "RETRYING_EXCEPTIONS",
    ],
    "huey.signals": [
        "SIGNAL_CANCELED", "SIGNAL_COMPLETE", "SIGNAL_ERROR", "SIGNAL_EXECUTING",
        "SIGNAL_EXPIRED", "SIGNAL_LOCKED", "SIGNAL_SCHEDULED", "SIGNAL_RETRYING",
        "SIGNAL_REVOKED", "SIGNAL_INTERRUPTED", "SIGNAL_TIMEOUT", "SIGNAL_RATE_LIMITED",
        "SIGNAL_ENQUEUED", "Signal",
    ],
    "huey.constants": [
        "WORKER_THREAD", "WORKER_GREENLET", "WORKER_PROCESS", "WORKER_TYPES", "EmptyData",
    ],
    "huey.utils": [
        "utcnow", "Error", "ChordConfig", "SKIPPED", "load_class", "is_naive", "make_naive",
        "aware_to_utc", "local_to_utc", "normalize_expire_time", "normalize_time", "encode",
        "FileLock", "noop_context",
    ],
    "huey.serializer": [
        "Serializer", "SignedSerializer", "is_compressed", "constant_time_compare",
    ],
    "huey.registry": ["Message", "Registry"],
}  # fmt: skip


@pytest.mark.parametrize("module_name", sorted(PUBLIC_NAMES))
def test_module_exposes_upstream_names(module_name: str) -> None:
    module = importlib.import_module(module_name)
    missing = [name for name in PUBLIC_NAMES[module_name] if not hasattr(module, name)]
    assert missing == []


def test_top_level_does_not_reexport_task_or_result() -> None:
    import huey

    for name in ("Task", "Result", "TaskException"):
        assert not hasattr(huey, name)
    assert huey.__author__ == "Charles Leifer"
    assert huey.__license__ == "MIT"


def test_constants_values() -> None:
    from huey import constants

    assert constants.WORKER_TYPES == ("thread", "greenlet", "process")
    assert isinstance(constants.EmptyData, type)


def test_preset_class_hierarchy() -> None:
    import huey
    from huey import storage

    assert issubclass(huey.RedisExpireHuey, huey.RedisHuey)
    assert issubclass(huey.PriorityRedisHuey, huey.RedisHuey)
    # PriorityRedisExpireHuey subclasses RedisHuey, not PriorityRedisHuey (spec 3.1).
    assert huey.PriorityRedisExpireHuey.__bases__ == (huey.RedisHuey,)
    presets = {
        huey.BlackHoleHuey: storage.BlackHoleStorage,
        huey.MemoryHuey: storage.MemoryStorage,
        huey.SqliteHuey: storage.SqliteStorage,
        huey.CySqliteHuey: storage.CySqliteStorage,
        huey.PostgresHuey: storage.PostgresStorage,
        huey.RedisHuey: storage.RedisStorage,
        huey.RedisExpireHuey: storage.RedisExpireStorage,
        huey.PriorityRedisHuey: storage.PriorityRedisStorage,
        huey.PriorityRedisExpireHuey: storage.PriorityRedisExpireStorage,
        huey.FileHuey: storage.FileStorage,
    }
    for preset, storage_class in presets.items():
        assert preset.storage_class is storage_class


def test_import_huey_loads_only_the_standard_library() -> None:
    code = (
        "import sys, huey, huey.api, huey.storage; "
        "bad = [m for m in ('redis', 'psycopg', 'gevent', 'huey.consumer') if m in sys.modules]; "
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
