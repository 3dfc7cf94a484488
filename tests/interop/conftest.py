"""A separate virtualenv with upstream huey 3.5.4, run only from outside (clean room)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_service

REPO = Path(__file__).resolve().parents[2]
UPSTREAM_VENV = REPO / ".venv-upstream"
UPSTREAM_REQUIREMENTS = ["huey==3.5.4", "redis>=5", "psycopg[binary]>=3.2"]


@pytest.fixture(scope="session")
def upstream_python() -> Path:
    """The interpreter of a virtualenv holding upstream huey 3.5.4 (created once)."""
    python = UPSTREAM_VENV / "bin" / "python"
    stamp = UPSTREAM_VENV / ".installed"
    if not stamp.exists():
        subprocess.run([sys.executable, "-m", "venv", str(UPSTREAM_VENV)], check=True)
        install = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", *UPSTREAM_REQUIREMENTS],
            capture_output=True,
            text=True,
            timeout=300,
        )
        require_service(
            "PyPI (to install upstream huey 3.5.4)",
            install.returncode == 0,
            install.stderr.strip()[-300:],
        )
        stamp.touch()
    return python


@pytest.fixture(scope="session")
def huey_ng_python() -> Path:
    """The interpreter that has huey-ng installed (this test run's)."""
    return Path(sys.executable)


def run_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(extra)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent)
    return env
