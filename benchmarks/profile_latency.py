"""Where one enqueue + blocking ``Result.get()`` round trip spends its time (huey-ng).

Runs the latency scenario (an idle consumer, sequential ``task(i)`` +
``get(blocking=True)``) with a tracer loaded into the producer *and* the consumer through a
``sitecustomize`` module: every redis-py command sent and reply read, every psycopg
statement and notification wait, is stamped with ``time.monotonic()`` (one clock for all
processes on Linux). It prints the merged timeline of a few trips and, per trip, how many
round trips each process made::

    .venv/bin/python benchmarks/profile_latency.py --backend redis --trips 60 --show 2
    .venv/bin/python benchmarks/profile_latency.py --backend postgres --workers 1

The tracer adds a little to every round trip: compare timelines, not absolute latencies,
with ``benchmarks/run.py``. Queue names are fresh per run and flushed at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

TRACER = """\
import atexit, os, threading, time
OUT = os.environ.get("LATENCY_TRACE_DIR")
if OUT:
    _events = []
    def _rec(what):
        _events.append((time.monotonic(), threading.current_thread().name, what))
    def _dump():
        with open(os.path.join(OUT, "trace-%d.txt" % os.getpid()), "w") as fh:
            for t, thread, what in _events:
                clean = what.replace("\\n", " ")
                fh.write("%.6f\\t%d\\t%s\\t%s\\n" % (t, os.getpid(), thread, clean))
    atexit.register(_dump)
    import builtins
    builtins._latency_rec = _rec
    try:
        import redis.connection as _rc
        _conn = _rc.AbstractConnection
        _send, _read = _conn.send_packed_command, _conn.read_response
        def _name(command):
            first = command[0] if isinstance(command, (list, tuple)) and command else command
            parts = bytes(first)[:80].split(b"\\r\\n")
            return " ".join(p.decode(errors="replace") for p in parts[2:7:2])
        def send(self, command, check_health=True):
            _rec("redis> " + _name(command))
            return _send(self, command, check_health)
        def read(self, *args, **kwargs):
            reply = _read(self, *args, **kwargs)
            _rec("redis<")
            return reply
        _conn.send_packed_command, _conn.read_response = send, read
    except ImportError:
        pass
    try:
        import psycopg
        for _cls in {psycopg.Cursor, psycopg.ClientCursor}:
            if "execute" not in vars(_cls):
                continue  # inherits the wrapped one
            def _wrap(orig):
                def execute(self, query, *args, **kwargs):
                    if isinstance(query, bytes):
                        text = query.decode(errors="replace")
                    elif isinstance(query, str):
                        text = query
                    else:
                        text = query.as_string(self.connection)
                    _rec("pg> " + " ".join(text.split())[:70])
                    try:
                        return orig(self, query, *args, **kwargs)
                    finally:
                        _rec("pg<")
                return execute
            _cls.execute = _wrap(_cls.execute)
        _notifies = psycopg.Connection.notifies
        def notifies(self, *args, **kwargs):
            _rec("pg wait>")
            for note in _notifies(self, *args, **kwargs):
                _rec("pg notified " + note.channel)
                yield note
        psycopg.Connection.notifies = notifies
    except ImportError:
        pass
"""


def child(args: argparse.Namespace) -> None:
    """The producer: start a consumer (traced too) and run the round trips."""
    import time

    sys.path.insert(0, str(HERE))
    import builtins

    import bench_tasks
    import scenarios

    rec = builtins._latency_rec  # type: ignore[attr-defined]  # set by the tracer
    with scenarios.consumer(args.workers, args.worker_type, []) as (proc, _spawned):
        proc.wait_ready(args.workers)
        for i in range(10):
            bench_tasks.noop(i).get(blocking=True, timeout=30)
        for i in range(args.trips):
            rec(f"TRIP {i} start")
            bench_tasks.noop(i).get(blocking=True, timeout=30)
            rec(f"TRIP {i} end")
            time.sleep(0.02)  # let the consumer settle back to idle
    bench_tasks.huey.flush()


def load(trace_dir: Path) -> list[tuple[float, str, str, str]]:
    """Every stamped event of every traced process, in time order."""
    events = []
    for path in trace_dir.glob("trace-*.txt"):
        for line in path.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) == 4:
                events.append((float(parts[0]), parts[1], parts[2], parts[3]))
    return sorted(events)


def report(events: list[tuple[float, str, str, str]], show: int) -> None:
    """Print the p50, round trips per trip and process, and a few timelines."""
    trips: dict[int, dict[str, float]] = {}
    for t, _pid, _thread, what in events:
        if what.startswith("TRIP "):
            _, number, edge = what.split()
            trips.setdefault(int(number), {})[edge] = t
    spans = sorted((v["start"], v["end"]) for v in trips.values() if len(v) == 2)
    if not spans:
        raise SystemExit("no trip was traced")
    latencies = sorted((end - start) * 1000 for start, end in spans)
    print(f"{len(spans)} trips traced, p50 {statistics.median(latencies):.3f} ms (with tracing)")
    sends: dict[str, list[int]] = {}
    for start, end in spans:
        counts: dict[str, int] = {}
        for t, pid, _thread, what in events:
            if start <= t <= end and what.startswith(("redis>", "pg>")):
                counts[pid] = counts.get(pid, 0) + 1
        for pid, count in counts.items():
            sends.setdefault(pid, []).append(count)
    for pid, counts in sends.items():
        print(f"process {pid}: median {statistics.median(counts)} requests sent per trip")
    for start, end in spans[len(spans) // 2 : len(spans) // 2 + show]:
        print(f"--- one trip: {1000 * (end - start):.3f} ms")
        for t, pid, thread, what in events:
            if start - 0.0001 <= t <= end + 0.0003:
                print(f"{1000 * (t - start):8.3f} ms  {pid:>7} {thread[:20]:20} {what[:90]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("redis", "postgres", "sqlite"), default="redis")
    parser.add_argument("--trips", type=int, default=60)
    parser.add_argument("--show", type=int, default=2, help="timelines printed")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--worker-type", default="thread")
    parser.add_argument("--source", type=Path, default=ROOT / "src", help="dir holding huey/")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    with tempfile.TemporaryDirectory(prefix="huey-latency-") as tmp:
        tmp_path = Path(tmp)
        (tmp_path / "sitecustomize.py").write_text(TRACER)
        traces = tmp_path / "traces"
        traces.mkdir()
        env = dict(os.environ, LATENCY_TRACE_DIR=str(traces), BENCH_BACKEND=args.backend)
        env["BENCH_NAME"] = f"latprof_{os.getpid()}"
        env["BENCH_SQLITE_FILE"] = str(tmp_path / "latency.db")
        env["PYTHONPATH"] = os.pathsep.join([tmp, str(args.source.resolve()), str(HERE)])
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child"]
        cmd += ["--backend", args.backend, "--trips", str(args.trips)]
        cmd += ["--workers", str(args.workers), "--worker-type", args.worker_type]
        subprocess.run(cmd, env=env, cwd=HERE, check=True)
        report(load(traces), args.show)


if __name__ == "__main__":
    main()
