"""The benchmark harness runs end to end (quick mode, huey-ng side, SQLite and Redis).

Figures are not checked: speed targets are checked by the benchmarks themselves
(``make bench``), never by timed assertions in tests.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(300)
def test_quick_benchmark_runs(tmp_path: Path, redis_url: str) -> None:
    output = tmp_path / "bench.md"
    run = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "run.py"),
            "--quick",
            "--backends",
            "sqlite,redis",
            "--implementations",
            "huey-ng",
            "--redis-url",
            redis_url,
            "--output",
            str(output),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=280,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    table = output.read_text()
    for row in ("enqueue", "drain", "latency"):
        assert row in table
    assert "| sqlite |" in table and "| redis |" in table
