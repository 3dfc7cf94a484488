"""One benchmark scenario, run by whichever Python interpreter executes this file.

``benchmarks/run.py`` runs this very file once under upstream huey's virtualenv
and once under huey-ng's, so it must only use the public API the two have in
common (``bench_tasks`` builds the Huey instance with each one's defaults).

Usage (the environment variables are described in ``bench_tasks``)::

    python benchmarks/scenarios.py enqueue --n 10000
    python benchmarks/scenarios.py drain --n 10000 --workers 4 --worker-type thread
    python benchmarks/scenarios.py latency --trips 200
    python benchmarks/scenarios.py memory --n 10000 --steps 10

The outcome is one line on stdout: ``BENCH_RESULT {"metrics": {...}}``.
Every consumer process this script starts is stopped in a ``finally`` block.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import huey as huey_pkg

HERE = Path(__file__).resolve().parent
# The consumer imports ``bench_tasks`` by name, so it must be importable from here.
sys.path.insert(0, str(HERE))

import bench_tasks  # noqa: E402

RESULT_PREFIX = "BENCH_RESULT "
POLL_INTERVAL = 0.01  # seconds between result counts while waiting for a drain


def _consumer_command() -> list[str]:
    """Return the ``huey_consumer`` command of the interpreter running this file."""
    script = Path(sys.executable).parent / "huey_consumer"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "huey.bin.huey_consumer"]


def _wait_for(
    predicate: Callable[[], bool], timeout: float, what: str, proc: subprocess.Popen[bytes] | None
) -> float:
    """Poll ``predicate`` until it is true; return the time it was first seen true.

    Raises ``RuntimeError`` on timeout, or at once if the consumer ``proc`` has died.
    """
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return time.time()
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"consumer exited with status {proc.returncode} while {what}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f}s while {what}")
        time.sleep(POLL_INTERVAL)


def _read_marks(marker: Path) -> list[float]:
    """Return the worker start times the ``on_startup`` hook wrote."""
    try:
        lines = marker.read_text().splitlines()
    except FileNotFoundError:
        return []
    return [float(line.split()[1]) for line in lines if len(line.split()) == 2]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a consumer and everything in its process group, gracefully first."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    # Process workers share the group: make sure none outlives the test.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


@contextmanager
def consumer(workers: int, worker_type: str, extra: list[str]) -> Iterator[tuple[Consumer, float]]:
    """Start ``huey_consumer bench_tasks.huey`` and yield it with its spawn time."""
    tmp = Path(tempfile.mkdtemp(prefix="huey-bench-"))
    marker = tmp / "ready"
    log = tmp / "consumer.log"
    env = dict(os.environ, BENCH_MARKER=str(marker))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    cmd = _consumer_command() + ["bench_tasks.huey", "-w", str(workers), "-k", worker_type]
    with open(log, "wb") as log_fh:
        spawned = time.time()
        proc = subprocess.Popen(
            cmd + extra, cwd=HERE, env=env, stdout=log_fh, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    handle = Consumer(proc, marker, log)
    _record_pid(proc.pid)
    try:
        yield handle, spawned
    except Exception as exc:
        raise RuntimeError(f"{exc}\n--- consumer log (tail) ---\n{handle.log_tail()}") from exc
    finally:
        _stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


def _record_pid(pid: int) -> None:
    """Tell the harness which process group to kill should this script be killed."""
    pidfile = os.environ.get("BENCH_PIDFILE")
    if pidfile:
        with open(pidfile, "a") as fh:
            fh.write(f"{pid}\n")


class Consumer:
    """A running consumer process: its marker file, log and process tree."""

    def __init__(self, proc: subprocess.Popen[bytes], marker: Path, log: Path) -> None:
        self.proc = proc
        self.marker = marker
        self.log = log

    def wait_ready(self, workers: int, timeout: float = 60) -> float:
        """Wait until ``workers`` workers ran their start-up hook; return the first's time."""
        _wait_for(lambda: len(_read_marks(self.marker)) >= workers, timeout, "starting", self.proc)
        return min(_read_marks(self.marker))

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the consumer's output, for error reports."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def memory_kb(self) -> tuple[int, int]:
        """Sum of (VmHWM, VmRSS) in KiB over the consumer's process tree."""
        hwm = rss = 0
        for pid in _process_tree(self.proc.pid):
            status = _proc_status(pid)
            hwm += status.get("VmHWM", 0)
            rss += status.get("VmRSS", 0)
        return hwm, rss


def _proc_status(pid: int) -> dict[str, int]:
    """The ``kB`` fields of /proc/<pid>/status (empty if the process is gone)."""
    fields: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return fields
    for line in text.splitlines():
        key, _, value = line.partition(":")
        parts = value.split()
        if len(parts) == 2 and parts[1] == "kB":
            fields[key] = int(parts[0])
    return fields


def _process_tree(root: int) -> list[int]:
    """``root`` and all its descendants, found through /proc/<pid>/stat."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may contain spaces: the ppid is the 2nd field after ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def _enqueue_n(n: int, start: int = 0) -> None:
    """Enqueue ``n`` no-op tasks, one call each (set-up work, not timed)."""
    for i in range(start, start + n):
        bench_tasks.noop(i)


def _wait_results(total: int, timeout: float, proc: subprocess.Popen[bytes]) -> float:
    """Wait until ``total`` results are stored; return the time that was first seen.

    Counting results costs CPU (about 1 ms for 10k rows on SQLite) on a 2-core
    machine that the consumer needs, so instead of counting at a fixed rate this
    sleeps for half the predicted remaining time (5-100 ms): few counts, and the
    end is still seen within about 5 ms.
    """
    huey = bench_tasks.huey
    deadline = time.monotonic() + timeout
    first_t, first_count = time.time(), huey.result_count()
    while True:
        count, now = huey.result_count(), time.time()
        if count >= total:
            return now
        if proc.poll() is not None:
            raise RuntimeError(f"consumer exited with status {proc.returncode} while draining")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f}s with {count}/{total} results")
        rate = (count - first_count) / (now - first_t) if now > first_t else 0
        remaining = (total - count) / rate if rate > 0 else 0.01
        time.sleep(min(0.1, max(0.005, remaining / 2)))


def run_enqueue(args: argparse.Namespace) -> dict[str, float]:
    """Enqueue N tasks one call at a time, then the same N through ``task.map()``."""
    huey, n = bench_tasks.huey, args.n
    _enqueue_n(50)  # warm up: connections, table creation
    huey.flush()
    start = time.perf_counter()
    _enqueue_n(n)
    single = time.perf_counter() - start
    if huey.pending_count() != n:
        raise RuntimeError(f"expected {n} queued tasks, found {huey.pending_count()}")
    huey.flush()
    start = time.perf_counter()
    bench_tasks.noop.map(range(n))
    mapped = time.perf_counter() - start
    if huey.pending_count() != n:
        raise RuntimeError(f"expected {n} queued tasks after map, found {huey.pending_count()}")
    return {"enqueue_tps": n / single, "map_tps": n / mapped}


def run_drain(args: argparse.Namespace) -> dict[str, float]:
    """Time a consumer draining N queued tasks, from its first ready worker."""
    huey, n = bench_tasks.huey, args.n
    _enqueue_n(n)
    if huey.pending_count() != n:
        raise RuntimeError(f"expected {n} queued tasks, found {huey.pending_count()}")
    timeout = 120 + n / 20
    with consumer(args.workers, args.worker_type, args.consumer_arg) as (proc, spawned):
        ready = proc.wait_ready(1)
        done = _wait_results(n, timeout, proc.proc)
    if huey.result_count() != n:
        raise RuntimeError(f"expected {n} results, found {huey.result_count()}")
    return {"drain_tps": n / (done - ready), "startup_s": ready - spawned}


def _percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile of ``values``."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def run_latency(args: argparse.Namespace) -> dict[str, float]:
    """Sequential enqueue + blocking ``Result.get()`` round trips on an idle consumer."""
    with consumer(args.workers, args.worker_type, args.consumer_arg) as (proc, _spawned):
        proc.wait_ready(args.workers)
        samples = []
        for i in range(args.warmup + args.trips):
            start = time.perf_counter()
            value = bench_tasks.noop(i).get(blocking=True, timeout=args.get_timeout)
            elapsed = time.perf_counter() - start
            if value != i:
                raise RuntimeError(f"round trip {i} returned {value!r}")
            if i >= args.warmup:
                samples.append(elapsed * 1000)
    return {f"p{p}_ms": _percentile(samples, p) for p in (50, 90, 99)}


def run_memory(args: argparse.Namespace) -> dict[str, float]:
    """Consumer peak RSS after N tasks and after N * steps tasks, fed N at a time."""
    n, steps = args.n, args.steps
    metrics: dict[str, float] = {}
    with consumer(args.workers, args.worker_type, args.consumer_arg) as (proc, _spawned):
        proc.wait_ready(args.workers)
        for step in range(1, steps + 1):
            _enqueue_n(n, start=(step - 1) * n)
            _wait_results(step * n, 120 + n / 20, proc.proc)
            hwm, rss = proc.memory_kb()
            # Every step in the progress log (the table shows the first and the last).
            metrics[f"hwm_{step * n // 1000}k_mb"] = hwm / 1024
            if step == 1:
                metrics.update(hwm_first_mb=hwm / 1024, rss_first_mb=rss / 1024)
        metrics.update(hwm_last_mb=hwm / 1024, rss_last_mb=rss / 1024)
    metrics["hwm_growth"] = metrics["hwm_last_mb"] / metrics["hwm_first_mb"]
    return metrics


SCENARIOS: dict[str, Callable[[argparse.Namespace], dict[str, float]]] = {
    "enqueue": run_enqueue,
    "drain": run_drain,
    "latency": run_latency,
    "memory": run_memory,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options of one scenario run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--n", type=int, default=10_000, help="tasks per run (or per step)")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--worker-type", default="thread", choices=["thread", "process"])
    parser.add_argument("--trips", type=int, default=200, help="latency: measured round trips")
    parser.add_argument("--warmup", type=int, default=10, help="latency: unmeasured round trips")
    parser.add_argument("--get-timeout", type=float, default=30.0)
    parser.add_argument("--steps", type=int, default=10, help="memory: batches of N tasks")
    parser.add_argument(
        "--consumer-arg", action="append", default=[], help="extra huey_consumer option"
    )
    return parser.parse_args(argv)


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM handler: raise so that ``finally`` blocks stop the consumer."""
    raise SystemExit(f"terminated by signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Run one scenario on a fresh queue and print its metrics as JSON."""
    args = parse_args(argv)
    # The harness stops an overrunning run with SIGTERM: unwind so consumers get stopped.
    signal.signal(signal.SIGTERM, _terminate)
    huey = bench_tasks.huey
    try:
        huey.flush()
        metrics = SCENARIOS[args.scenario](args)
    finally:
        try:
            huey.flush()
        finally:
            sqlite_file = os.environ.get("BENCH_SQLITE_FILE")
            if os.environ.get("BENCH_BACKEND") == "sqlite" and sqlite_file:
                for suffix in ("", "-wal", "-shm"):
                    Path(sqlite_file + suffix).unlink(missing_ok=True)
    version = getattr(huey_pkg, "__version__", "?")
    result = {
        "metrics": metrics,
        "version": version,
        "huey_dir": str(Path(huey_pkg.__file__).parent),
    }
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
