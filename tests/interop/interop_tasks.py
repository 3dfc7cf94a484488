"""Tasks shared by upstream huey and huey-ng in the interoperability test.

This module is imported by BOTH implementations (each from its own interpreter), so it uses
only the public API common to both. The backend comes from the environment:
INTEROP_BACKEND (redis | sqlite | postgres), INTEROP_NAME, INTEROP_TARGET (url / file / dsn).
"""

import os

import huey as huey_module

BACKEND = os.environ["INTEROP_BACKEND"]
NAME = os.environ["INTEROP_NAME"]
TARGET = os.environ["INTEROP_TARGET"]

if BACKEND == "redis":
    huey = huey_module.RedisHuey(NAME, url=TARGET)
elif BACKEND == "sqlite":
    huey = huey_module.SqliteHuey(NAME, filename=TARGET)
elif BACKEND == "postgres":
    huey = huey_module.PostgresHuey(NAME, dsn=TARGET)
else:  # pragma: no cover - a wrong test parameter
    raise SystemExit(f"unknown INTEROP_BACKEND {BACKEND!r}")


@huey.task()
def add(a, b):
    return a + b


@huey.task()
def fail(message):
    raise ValueError(message)
