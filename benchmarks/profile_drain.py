"""Profile a consumer draining a queue, with py-spy, and summarise where the time goes.

Runs the ``drain`` scenario of ``scenarios.py`` (N tasks queued, then
``huey_consumer bench_tasks.huey``) while ``py-spy record`` samples the consumer
process, then prints the functions that hold the most samples, by own time
(the innermost frame) and by inclusive time::

    pip install py-spy            # into any virtualenv; it is a standalone binary
    .venv/bin/python benchmarks/profile_drain.py --backend redis --n 10000 \\
        --py-spy /path/to/py-spy [--gil]

``--gil`` samples only the thread holding the GIL (CPU time: what bounds a
thread-worker consumer on CPython); ``--idle`` also samples threads that wait
(wall time: where round trips to the server show up).  The raw collapsed stacks are kept in
``benchmarks/results/profile-<backend>.txt`` (feed them to a flame-graph tool).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
FRAME_RE = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")
HUEY_RE = re.compile(r"[(/]huey/")  # a frame in the huey package (py-spy shortens paths)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options of the profiler."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="redis", choices=["redis", "sqlite", "postgres"])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--worker-type", default="thread", choices=["thread", "process"])
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy")
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    parser.add_argument("--gil", action="store_true", help="sample only the GIL holder")
    parser.add_argument("--idle", action="store_true", help="also sample waiting threads")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--redis-url", help="default: a private redis-server on a free port (clean counts)"
    )
    parser.add_argument("--pg-dsn", default="postgresql://127.0.0.1:5432/test")
    parser.add_argument("--consumer-arg", action="append", default=[])
    return parser.parse_args(argv)


def frame_name(frame: str) -> str:
    """``func (path/to/file.py:12)`` -> ``file.py:func``, so lines of a function add up."""
    match = FRAME_RE.match(frame.strip())
    if not match:
        return frame.strip()
    return f"{Path(match['file']).name}:{match['func']}"


def summarise(collapsed: Path, top: int) -> str:
    """Own-time and inclusive-time tables from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    in_huey: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        # The first frame is the thread (or process) name when --threads is used.
        raw = [f for f in stack.split(";") if "(" in f]
        frames = [frame_name(f) for f in raw]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        # The innermost frame in the huey package says which step of a task's life it is.
        huey_frames = [name for f, name in zip(raw, frames, strict=True) if HUEY_RE.search(f)]
        in_huey[huey_frames[-1] if huey_frames else "(outside huey)"] += count
        for name in set(frames):
            inclusive[name] += count
    lines = [f"{total} samples"]
    tables = (
        ("own time", own),
        ("innermost huey function (own time of huey code and what it calls)", in_huey),
        ("inclusive time", inclusive),
    )
    for title, counter in tables:
        lines += ["", f"top {top} by {title}:"]
        for name, count in counter.most_common(top):
            lines.append(f"  {100 * count / max(total, 1):5.1f}%  {name}")
    return "\n".join(lines)


@contextmanager
def private_redis() -> Iterator[str]:
    """A throwaway ``redis-server`` on a free port, so command counts are ours alone."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    server = subprocess.Popen(cmd + ["--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=10)


def command_counts(url: str) -> Counter[str]:
    """Calls per command since the server started (Redis ``INFO commandstats``)."""
    import redis

    stats = redis.Redis.from_url(url).info("commandstats")
    return Counter({key.removeprefix("cmdstat_"): int(v["calls"]) for key, v in stats.items()})


def record(args: argparse.Namespace, out: Path) -> tuple[dict[str, float], Counter[str]]:
    """Run the drain scenario with py-spy attached to the consumer.

    Returns the drain rate and, on Redis, the commands the server ran meanwhile.
    """
    # Imported here: bench_tasks reads the BENCH_* variables profile() sets.
    import bench_tasks
    import scenarios

    huey, n = bench_tasks.huey, args.n
    scenarios._enqueue_n(n)
    # --nonblocking: do not pause the consumer for each sample (it would halve its speed).
    spy_cmd = [args.py_spy, "record", "--format", "raw", "--rate", str(args.rate), "--nonblocking"]
    spy_cmd += ["--subprocesses", "--output", str(out)]
    spy_cmd += ["--gil"] if args.gil else []
    spy_cmd += ["--idle"] if args.idle else []
    redis_url = os.environ["BENCH_REDIS_URL"] if args.backend == "redis" else None
    before = command_counts(redis_url) if redis_url else Counter()
    with scenarios.consumer(args.workers, args.worker_type, args.consumer_arg) as (proc, _t):
        # Attach once the workers run, so start-up imports stay out of the profile.
        proc.wait_ready(1)
        spy = subprocess.Popen(spy_cmd + ["--pid", str(proc.proc.pid)], stdout=subprocess.DEVNULL)
        try:
            ready = time.time()
            done = scenarios._wait_results(n, 120 + n / 20, proc.proc)
            # The drain rate is from the moment py-spy was started, so it is approximate.
        finally:
            spy.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
            spy.wait(timeout=60)
        after = command_counts(redis_url) if redis_url else Counter()
    if huey.result_count() != n:
        raise RuntimeError(f"expected {n} results, found {huey.result_count()}")
    return {"drain_tps_while_profiled": n / (done - ready)}, after - before


def main(argv: list[str] | None = None) -> int:
    """Set up a fresh queue, profile its drain, print the summary."""
    args = parse_args(argv)
    if args.backend == "redis" and args.redis_url is None:
        with private_redis() as url:
            args.redis_url = url
            return profile(args)
    return profile(args)


def profile(args: argparse.Namespace) -> int:
    """Profile one drain on the configured store and print the summary."""
    tmp = Path(tempfile.mkdtemp(prefix="huey-profile-"))
    os.environ.update(
        BENCH_BACKEND=args.backend,
        BENCH_NAME=f"profile_{os.getpid()}",
        BENCH_REDIS_URL=args.redis_url or "redis://127.0.0.1:6379/15",
        BENCH_PG_DSN=args.pg_dsn,
        BENCH_SQLITE_FILE=str(tmp / "profile.db"),
    )
    sys.path.insert(0, str(HERE))
    import bench_tasks

    out = HERE / "results" / f"profile-{args.backend}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        bench_tasks.huey.flush()
        metrics, commands = record(args, out)
    finally:
        bench_tasks.huey.flush()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{args.backend}, -w {args.workers} -k {args.worker_type}, N={args.n}: {metrics}")
    if commands:
        print("Redis commands per task during the drain (hlen: the harness counting results):")
        for name, calls in commands.most_common():
            print(f"  {calls / args.n:6.2f}  {name}")
    print(summarise(out, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
