"""Shared fixtures: service probes (Redis, PostgreSQL) and unique queue names.

A missing service skips its tests locally but FAILS them when ``CI`` is set, so a green CI
run always means the real servers were exercised.
"""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest

#: Golden data recorded from upstream huey 3.5.4 (the project's shared references, beside
#: the checkout, as CI lays them out).
WIRE_SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "wire-samples"

REDIS_URL = os.environ.get("HUEY_REDIS_URL", "redis://127.0.0.1:6379/15")
PG_DSN = os.environ.get("HUEY_PG_DSN", "postgresql://127.0.0.1:5432/test")


def _port_open(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=2
        ):
            return True
    except OSError:
        return False


def require_service(name: str, available: bool, hint: str) -> None:
    """Skip (locally) or fail (when CI is set) if a service is not reachable."""
    if available:
        return
    message = f"{name} is not reachable ({hint})"
    if os.environ.get("CI"):
        pytest.fail(message + "; CI requires it")
    pytest.skip(message)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the test Redis (``HUEY_REDIS_URL``); skips or fails when it is down."""
    require_service("Redis", _port_open(REDIS_URL, 6379), REDIS_URL)
    return REDIS_URL


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    """DSN of the test PostgreSQL (``HUEY_PG_DSN``); skips or fails when it is down."""
    require_service("PostgreSQL", _port_open(PG_DSN, 5432), PG_DSN)
    return PG_DSN


@pytest.fixture
def unique_name() -> str:
    """A queue name no other test uses, so tests never see each other's data."""
    return "t" + uuid.uuid4().hex[:12]
