"""huey-ng demo: a real consumer process runs real tasks on SqliteHuey (``make demo``).

1. a temporary SQLite file is shared by this script and the consumer;
2. ``python -m huey.bin.huey_consumer demo_tasks.huey -w 2`` starts as a subprocess;
3. tasks are enqueued here: plain, scheduled, retrying, a pipeline and a map;
4. each result is printed as it arrives; then SIGINT stops the consumer gracefully.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def start_consumer(env: dict[str, str], logfile: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "huey.bin.huey_consumer", "demo_tasks.huey",
        "-w", "2", "-d", "0.05", "-m", "0.5", "-l", str(logfile),
    ]  # fmt: skip
    print("$ python", " ".join(command[1:]))
    return subprocess.Popen(command, cwd=HERE, env=env)


def show_log(logfile: Path) -> None:
    """Print a few telling lines of the consumer's log."""
    wanted = ("consumer started", "Enqueueing scheduled", "Unhandled exception", "Received")
    print("consumer log (excerpt):")
    for line in logfile.read_text().splitlines():
        if any(word in line for word in wanted):
            print("   ", line)


def main() -> int:
    tmp = tempfile.TemporaryDirectory(prefix="huey-demo-")
    os.environ["HUEY_DEMO_DB"] = str(Path(tmp.name) / "demo.db")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
    }
    sys.path.insert(0, str(HERE))
    import demo_tasks as t

    logfile = Path(tmp.name) / "consumer.log"
    consumer = start_consumer(env, logfile)
    started = time.monotonic()
    try:
        wait = {"blocking": True, "timeout": 20, "max_delay": 0.1}
        results = {
            "add(1, 2)": t.add(1, 2),
            "reminder in 2 s": t.reminder.schedule(("hello from the schedule",), delay=2),
            "flaky() with 2 retries": t.flaky(),
            "pipeline add(3, 4) -> multiply(10)": t.huey.enqueue(
                t.add.s(3, 4).then(t.multiply, 10)
            ),
            "map slow_square over 0..5": t.slow_square.map(range(6)),
        }
        for label, result in results.items():
            value = result.get(**wait)
            print(f"[{time.monotonic() - started:5.2f}s] {label:36} = {value!r}")
    finally:
        consumer.send_signal(signal.SIGINT)
        code = consumer.wait(15)
        show_log(logfile)
        tmp.cleanup()
    print(f"consumer stopped with SIGINT (exit status {code})")
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
