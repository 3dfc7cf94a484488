"""``huey info`` and ``huey dead-letters ...`` against a real SQLite store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from huey import SqliteHuey
from huey.cli import main

TASKS = """
import os
from huey import SqliteHuey
huey = SqliteHuey("cli-inspect", filename=os.environ["CLI_DB"])

@huey.task()
def add(a, b):
    return a + b
"""


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SqliteHuey:
    (tmp_path / "cli_app.py").write_text(TASKS)
    monkeypatch.setenv("CLI_DB", str(tmp_path / "cli.db"))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("cli_app", None)
    import cli_app  # type: ignore[import-not-found]

    return cli_app.huey  # type: ignore[no-any-return]


def set_aside(app: SqliteHuey, count: int) -> list[str]:
    add = app._registry.string_to_task("cli_app.add")
    return [
        app.storage.add_dead_letter(app.serialize_task(add((i, i))), f"crashed ({i})")
        for i in range(count)
    ] + [app.storage.add_dead_letter(b"\x00junk", "undecodable message")]


def test_info(app: SqliteHuey, capsys: pytest.CaptureFixture[str]) -> None:
    add = app._registry.string_to_task("cli_app.add")
    app.enqueue(add((1, 2)))
    set_aside(app, 1)
    assert main(["info", "cli_app.huey"]) == 0
    out = capsys.readouterr().out
    assert "pending:       1" in out
    assert "dead letters:  2" in out
    assert "cli_app.add" in out
    assert "at least once" in out


def test_dead_letters_list_count_requeue_delete(
    app: SqliteHuey, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = set_aside(app, 2)
    assert main(["dead-letters", "count", "cli_app.huey"]) == 0
    assert capsys.readouterr().out.strip() == "3"
    assert main(["dead-letters", "list", "cli_app.huey"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ids
    assert "cli_app.add" in lines[0] and "crashed (0)" in lines[0]
    assert "<undecodable, 5 bytes>" in lines[2]
    assert main(["dead-letters", "requeue", ids[0], "cli_app.huey"]) == 0
    assert "requeued 1" in capsys.readouterr().out
    assert app.pending_count() == 1
    assert main(["dead-letters", "delete", ids[2], "cli_app.huey"]) == 0
    assert main(["dead-letters", "requeue", "missing-id", "cli_app.huey"]) == 1
    assert "no dead letter with id missing-id" in capsys.readouterr().err
    assert main(["dead-letters", "requeue", "--all", "cli_app.huey"]) == 0
    assert app.pending_count() == 2 and app.dead_letter_count() == 0
    set_aside(app, 1)
    assert main(["dead-letters", "delete", "--all", "cli_app.huey"]) == 0
    assert app.dead_letter_count() == 0


def test_bad_path_is_one_clear_line(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "huey.cli", "dead-letters", "count", "no_such_module.huey"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1
    assert "could not import 'no_such_module.huey'" in out.stderr
