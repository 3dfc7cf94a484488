"""Upstream huey 3.5.4 and huey-ng share one store, in both directions.

One implementation enqueues (plain, delayed, failing and a two-stage pipeline), the other's
consumer runs the tasks, and the first reads the results back. Upstream runs only as a
subprocess of its own virtualenv; its files are never opened.
"""

from __future__ import annotations

import json
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.interop.conftest import run_env

pytestmark = [pytest.mark.interop, pytest.mark.timeout(240)]

HERE = Path(__file__).resolve().parent


@pytest.fixture(params=["redis", "sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    name = "interop" + uuid.uuid4().hex[:8]
    if request.param == "redis":
        target = request.getfixturevalue("redis_url")
    elif request.param == "postgres":
        target = request.getfixturevalue("pg_dsn")
    else:
        target = str(tmp_path / "interop.db")
    return {"INTEROP_BACKEND": request.param, "INTEROP_NAME": name, "INTEROP_TARGET": target}


def consumer_command(python: Path) -> list[str]:
    code = "import sys; from huey.bin.huey_consumer import consumer_main; sys.exit(consumer_main())"
    return [str(python), "-c", code, "interop_tasks.huey", "-w", "2", "-s", "1"]


def run_direction(
    producer: Path, consumer: Path, env: dict[str, str], tmp_path: Path
) -> dict[str, object]:
    handles = tmp_path / "handles.json"
    driver = str(HERE / "interop_driver.py")
    subprocess.run(
        [str(producer), driver, "enqueue", str(handles)], env=env, check=True, timeout=60
    )
    log = open(tmp_path / "consumer.log", "w")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        consumer_command(consumer), env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path
    )
    try:
        out = subprocess.run(
            [str(producer), driver, "collect", str(handles)],
            env=env,
            check=True,
            timeout=120,
            capture_output=True,
            text=True,
        )
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def assert_report(report: dict[str, object]) -> None:
    assert report["plain"] == {"value": 3}
    assert report["delayed"] == {"value": 42}
    failing = report["failing"]
    assert isinstance(failing, dict)
    assert failing["error"] == "ValueError('boom')"
    assert {"error", "retries", "task_id", "traceback"} <= set(failing["metadata_keys"])
    assert report["pipeline"] == [{"value": 7}, {"value": 17}]


def cleanup(backend: dict[str, str], python: Path) -> None:
    code = "from interop_tasks import huey; huey.flush()"
    subprocess.run([str(python), "-c", code], env=run_env(backend), check=False, timeout=60)


@pytest.mark.parametrize("direction", ["upstream-to-huey-ng", "huey-ng-to-upstream"])
def test_both_implementations_share_a_store(
    direction: str,
    backend: dict[str, str],
    upstream_python: Path,
    huey_ng_python: Path,
    tmp_path: Path,
) -> None:
    if direction == "upstream-to-huey-ng":
        producer, consumer = upstream_python, huey_ng_python
    else:
        producer, consumer = huey_ng_python, upstream_python
    env = run_env(backend)
    try:
        report = run_direction(producer, consumer, env, tmp_path)
    finally:
        cleanup(backend, huey_ng_python)
    consumer_log = (tmp_path / "consumer.log").read_text()
    for problem in ("not found in TaskRegistry", "Unable to decode", "dead letter"):
        assert problem not in consumer_log, consumer_log
    assert_report(report)
