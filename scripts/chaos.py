"""The large "no task is lost" chaos run (issue 5), outside CI: ``make chaos``.

Two parts, on Redis, PostgreSQL and SQLite (``--backends``):

1. **Kill matrix.** ``--tasks`` (20,000) ``job`` tasks are queued with ``task.map()`` (of
   which ``--scheduled``, 2,000, are eta tasks due over the first 20 s, so the schedulers
   move them to the queue while consumers are killed); a
   consumer drains them while this script SIGKILLs the whole consumer process group
   ``--kills`` times (restarting it each time, alternating ``-w 2 -k process`` and ``-w 4 -k
   thread``) and, between those, single process workers. Kills are spread over the run by
   progress (one every ``tasks / (2 * kills + 2)`` completions: every few seconds), so each
   lands mid-run. Then the queue drains and the events file the tasks append to is counted:
   enqueued, completed (distinct ids), lost (must be 0), ran more than once.
2. **Periodic ticks.** Three consumers per backend with periodic scheduling on and *real*
   one-minute crontab ticks (no test knob), for the tick of the start minute and the next
   two minute boundaries; the leader is SIGKILLed after the first tick. Each minute's
   ``tick`` must be enqueued exactly once.

Consumers run as ``python -m huey.bin.huey_consumer tasks_reliable.huey`` (the task module of
``tests/reliability``, configured by ``RELIABLE_*`` variables) with a 1 s visibility timeout.
Every process started here runs in its own process group and is SIGKILLed in a ``finally``
block; every queue is flushed at the end. The exit status is non-zero when a task was lost,
a task went to the dead-letter store, a tick was not enqueued exactly once, or a wait ran out.
Progress goes to stderr, the report to stdout; logs are kept (path printed) when a part fails.
"""

from __future__ import annotations

import argparse
import collections
import importlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import types
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TASKS_DIR = ROOT / "tests" / "reliability"
BACKENDS = ("redis", "postgres", "sqlite")
DEFAULT_TARGETS = {
    "redis": "redis://127.0.0.1:6379/13",
    "postgres": "postgresql://127.0.0.1:5432/test",
}
WORKER_MIXES = (("-w", "2", "-k", "process"), ("-w", "4", "-k", "thread"))
# 1 s leases and a health check every second: a killed worker's tasks come back within ~2 s.
COMMON_ARGS = ("-T", "1", "-c", "1", "-d", "0.05", "-m", "0.5")
REQUEUED = re.compile(r"Requeued (\d+) task")
STARTED = time.monotonic()


def say(message: str) -> None:
    """A progress line on stderr, stamped with the seconds since the script started."""
    print(f"[{time.monotonic() - STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    """Poll ``predicate`` until it is truthy; raise TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


class Events:
    """The events file the tasks append to, read incrementally (it grows to 20,000+ lines)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self.done: collections.Counter[int] = collections.Counter()
        self.ticks: list[tuple[int, int]] = []  # (scheduler pid, minute)
        self.tick_runs = 0

    def refresh(self) -> Events:
        """Read the lines appended since the last call (whole lines only)."""
        if not self.path.exists():
            return self
        with open(self.path, "rb") as fh:
            fh.seek(self._offset)
            chunk = fh.read()
        end = chunk.rfind(b"\n") + 1
        self._offset += end
        for line in chunk[:end].decode().splitlines():
            parts = line.split()
            if parts and parts[0] == "done":
                self.done[int(parts[1])] += 1
            elif parts and parts[0] == "tick-enqueued":
                self.ticks.append((int(parts[1]), int(parts[2])))
            elif parts and parts[0] == "tick-run":
                self.tick_runs += 1
        return self


class Consumer:
    """``huey_consumer tasks_reliable.huey`` in its own process group."""

    def __init__(self, env: dict[str, str], workdir: Path, args: tuple[str, ...], tag: str) -> None:
        self.log_path = workdir / f"consumer-{tag}.log"
        self.args = args
        self._output = open(workdir / f"consumer-{tag}.out", "ab")
        argv = [sys.executable, "-m", "huey.bin.huey_consumer", "tasks_reliable.huey"]
        argv += ["-l", str(self.log_path), *COMMON_ARGS, *args]
        self.proc = subprocess.Popen(
            argv, env=env, cwd=str(workdir), stdout=self._output, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def is_process_kind(self) -> bool:
        return "process" in self.args

    def workers(self) -> list[int]:
        """The pids of the consumer's direct children (its process workers)."""
        try:
            with open(f"/proc/{self.pid}/task/{self.pid}/children") as fh:
                return [int(pid) for pid in fh.read().split()]
        except FileNotFoundError:
            return []

    def kill(self) -> None:
        """SIGKILL the consumer and all its workers at once (an OOM kill, a lost node)."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            say(f"consumer {self.pid} did not die within 15 s of SIGKILL")
        self._output.close()

    def stop(self, timeout: float = 60) -> None:
        """Stop gracefully (SIGINT), then SIGKILL whatever is left of the group."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                say(f"consumer {self.pid} did not stop within {timeout:.0f} s; killing it")
        self.kill()

    def requeued(self) -> int:
        """Tasks this consumer's scheduler gave back after their lease expired."""
        if not self.log_path.exists():
            return 0
        return sum(int(n) for n in REQUEUED.findall(self.log_path.read_text(errors="replace")))


@dataclass
class Backend:
    """One backend's store: the environment its consumers share, and the task module."""

    name: str
    target: str
    workdir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    consumers: list[Consumer] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.events = Events(self.workdir / "events.txt")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RELIABLE_")}
        self.env.update(
            RELIABLE_BACKEND=self.name,
            RELIABLE_TARGET=self.target,
            RELIABLE_NAME="chaos" + uuid.uuid4().hex[:10],
            RELIABLE_EVENTS=str(self.events.path),
            RELIABLE_VISIBILITY="1",
            **self.extra_env,
        )
        self.env["PYTHONPATH"] = os.pathsep.join(
            [str(TASKS_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
        self.tasks = import_tasks(self.env)

    @property
    def huey(self) -> Any:
        return self.tasks.huey

    def start(self, args: tuple[str, ...]) -> Consumer:
        consumer = Consumer(self.env, self.workdir, args, str(len(self.consumers)))
        self.consumers.append(consumer)
        return consumer

    def requeued(self) -> int:
        return sum(consumer.requeued() for consumer in self.consumers)

    def cleanup(self) -> None:
        """Kill every consumer left and flush the queue and huey-ng's state."""
        for consumer in self.consumers:
            consumer.kill()
        try:
            self.huey.flush()
        except Exception as exc:  # report, but keep cleaning the other backends
            say(f"{self.name}: flush failed: {exc!r}")


def import_tasks(env: dict[str, str]) -> types.ModuleType:
    """Import ``tasks_reliable`` with ``env``'s settings (a fresh module each time)."""
    for key in [key for key in os.environ if key.startswith("RELIABLE_")]:
        del os.environ[key]
    os.environ.update({k: v for k, v in env.items() if k.startswith("RELIABLE_")})
    if str(TASKS_DIR) not in sys.path:
        sys.path.insert(0, str(TASKS_DIR))
    sys.modules.pop("tasks_reliable", None)
    return importlib.import_module("tasks_reliable")


def make_backend(name: str, args: argparse.Namespace, workdir: Path, **extra: str) -> Backend:
    workdir.mkdir(parents=True)
    if name == "sqlite":
        target = str(workdir / "chaos.db")
    else:
        target = args.redis_url if name == "redis" else args.pg_dsn
    return Backend(name, target, workdir, dict(extra))


# -- part 1: the kill matrix ---------------------------------------------------------------
@dataclass
class KillResult:
    backend: str
    enqueued: int = 0
    completed: int = 0
    ran_twice: int = 0
    extra_runs: int = 0
    dead_letters: int = 0
    group_kills: int = 0
    worker_kills: int = 0
    requeued: int = 0
    enqueue_seconds: float = 0.0
    seconds: float = 0.0
    error: str = ""

    @property
    def lost(self) -> int:
        return self.enqueued - self.completed

    @property
    def ok(self) -> bool:
        return not self.error and self.enqueued > 0 and self.lost == 0 and not self.dead_letters


def enqueue_jobs(backend: Backend, total: int, duration: float, scheduled: int) -> int:
    """Queue ``total - scheduled`` jobs through ``job.map()`` in chunks and schedule the
    last ``scheduled`` ones (eta spread over the next 20 s, so the scheduler moves some
    while consumers are being killed); return the queued and scheduled count."""
    job = backend.tasks.job
    queued = total - scheduled
    for start in range(0, queued, 1000):
        job.map([(i, duration) for i in range(start, min(start + 1000, queued))])
    for n, i in enumerate(range(queued, total)):
        job.schedule(args=(i, duration), delay=1 + 20 * n / max(scheduled, 1))
    return int(backend.huey.pending_count()) + int(backend.huey.scheduled_count())


def done_at_least(backend: Backend, count: int) -> Callable[[], bool]:
    """A predicate: at least ``count`` distinct jobs have recorded their completion."""
    return lambda: len(backend.events.refresh().done) >= count


def run_kills(backend: Backend, args: argparse.Namespace, result: KillResult) -> None:
    """Drain the queue while killing consumers and workers; fill ``result`` as it goes."""
    total, stages = args.tasks, 2 * args.kills
    started = time.monotonic()
    consumer = backend.start(WORKER_MIXES[0])
    for stage in range(1, stages + 1):
        target = total * stage // (stages + 2)
        wait_for(done_at_least(backend, target), args.stage_timeout, f"{target} jobs done")
        if stage % 2 == 0:
            consumer.kill()
            result.group_kills += 1
            mix = WORKER_MIXES[(stage // 2) % len(WORKER_MIXES)]
            say(f"{backend.name}: {target} done; SIGKILLed consumer group, restart {mix}")
            consumer = backend.start(mix)
        elif consumer.is_process_kind and consumer.workers():
            pid = random.choice(consumer.workers())
            os.kill(pid, signal.SIGKILL)
            result.worker_kills += 1
            say(f"{backend.name}: {target} done; SIGKILLed process worker {pid}")
    wait_for(done_at_least(backend, total), args.drain_timeout, f"all {total} jobs done", 0.5)
    result.seconds = time.monotonic() - started
    # Tasks run but not acknowledged when their consumer died come back after their lease
    # expires and run again: let them, so "ran twice" is final. Queue empty for 5 s (lease
    # 1 s + scheduler 1 s, twice over) means every lease was acknowledged or requeued and run.
    quiet_since = [time.monotonic()]

    def settled() -> bool:
        if backend.huey.pending_count() or backend.huey.scheduled_count():
            quiet_since[0] = time.monotonic()
        return time.monotonic() - quiet_since[0] > 5

    wait_for(settled, 120, f"the queue to stay empty on {backend.name}", every=0.5)
    consumer.stop()


def kill_matrix(name: str, args: argparse.Namespace, workdir: Path) -> KillResult:
    """Part 1 on one backend."""
    result = KillResult(name)
    backend: Backend | None = None
    try:
        backend = make_backend(name, args, workdir)
        backend.huey.flush()
        t0 = time.monotonic()
        result.enqueued = enqueue_jobs(backend, args.tasks, args.duration, args.scheduled)
        result.enqueue_seconds = time.monotonic() - t0
        say(f"{name}: {result.enqueued} jobs queued in {result.enqueue_seconds:.1f} s")
        if result.enqueued != args.tasks:
            raise RuntimeError(f"queued {args.tasks} but the queue holds {result.enqueued}")
        run_kills(backend, args, result)
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        say(f"{name}: FAILED: {result.error}")
    finally:
        if backend is not None:
            counts = backend.events.refresh().done
            result.completed = len(set(counts) & set(range(args.tasks)))
            result.ran_twice = sum(1 for n in counts.values() if n > 1)
            result.extra_runs = sum(n - 1 for n in counts.values())
            result.requeued = backend.requeued()
            try:
                result.dead_letters = int(backend.huey.dead_letter_count())
            except Exception as exc:
                result.error = result.error or f"dead_letter_count: {exc!r}"
            backend.cleanup()
    return result


# -- part 2: periodic ticks ----------------------------------------------------------------
@dataclass
class TickResult:
    backend: str
    per_minute: dict[int, int] = field(default_factory=dict)
    tick_runs: int = 0
    leader_killed: int = 0
    later_leaders: set[int] = field(default_factory=set)
    error: str = ""

    @property
    def ok(self) -> bool:
        counts = list(self.per_minute.values())
        return not self.error and len(counts) >= 3 and all(n == 1 for n in counts)


class TickWatch:
    """Three periodic consumers on one backend; kills the leader after the first tick."""

    def __init__(self, name: str, args: argparse.Namespace, workdir: Path) -> None:
        self.result = TickResult(name)
        self.backend = make_backend(name, args, workdir, RELIABLE_PERIODIC="1")
        self.first_minute: int | None = None
        try:
            self.backend.huey.flush()
            for _ in range(3):
                self.backend.start(("-w", "1"))
        except BaseException:
            self.backend.cleanup()
            raise
        self.deadline = time.time() + 75  # the first tick comes within a few seconds

    def poll(self) -> bool:
        """Check the events; kill the leader after the first tick. True when finished."""
        ticks = self.backend.events.refresh().ticks
        if self.first_minute is None:
            if ticks:
                self._kill_leader(*ticks[0])
            elif time.time() > self.deadline:
                raise TimeoutError("no periodic tick within 75 s of starting three consumers")
            return False
        if time.time() > self.deadline:
            return True
        return False

    def _kill_leader(self, pid: int, minute: int) -> None:
        self.first_minute = minute
        leader = next(c for c in self.backend.consumers if c.pid == pid)
        leader.kill()
        self.result.leader_killed = pid
        # Watch the start minute and the next two boundaries, until 20 s into the last one
        # (time for a second enqueue of that tick, if any, to show up).
        self.deadline = (minute + 2) * 60 + 20
        say(f"{self.backend.name}: tick of minute {minute} by {pid}; SIGKILLed that leader")

    def finish(self) -> TickResult:
        """Stop the consumers, count ticks per minute, flush."""
        try:
            for consumer in self.backend.consumers:
                if consumer.proc.poll() is None:
                    consumer.stop(30)
            events = self.backend.events.refresh()
            minutes = collections.Counter(minute for _, minute in events.ticks)
            if self.first_minute is not None:
                for minute in range(self.first_minute, self.first_minute + 3):
                    minutes.setdefault(minute, 0)  # a missed tick shows as 0
            self.result.per_minute = dict(sorted(minutes.items()))
            self.result.tick_runs = events.tick_runs
            first = self.first_minute
            self.result.later_leaders = {pid for pid, m in events.ticks if first and m > first}
        finally:
            self.backend.cleanup()
        return self.result


def periodic_ticks(names: list[str], args: argparse.Namespace, workdir: Path) -> list[TickResult]:
    """Part 2 on every backend at once (the consumers mostly sleep between ticks)."""
    watches: list[TickWatch] = []
    failed: list[TickResult] = []
    try:
        for name in names:
            try:
                watches.append(TickWatch(name, args, workdir / f"periodic-{name}"))
            except Exception as exc:
                failed.append(TickResult(name, error=f"{type(exc).__name__}: {exc}"))
        running = list(watches)
        while running:
            for watch in list(running):
                try:
                    if watch.poll():
                        running.remove(watch)
                except Exception as exc:
                    watch.result.error = f"{type(exc).__name__}: {exc}"
                    running.remove(watch)
            time.sleep(0.5)
    finally:
        results = []
        for watch in watches:
            try:
                results.append(watch.finish())
            except Exception as exc:
                watch.result.error = watch.result.error or f"{type(exc).__name__}: {exc}"
                results.append(watch.result)
    return results + failed


# -- report --------------------------------------------------------------------------------
def report_kills(results: list[KillResult], args: argparse.Namespace) -> None:
    print(f"\nKill matrix: {args.tasks} tasks per backend, {args.kills} whole-consumer "
          "SIGKILLs plus single process-worker SIGKILLs, 1 s visibility timeout\n")  # fmt: skip
    print("| backend | enqueued | completed | lost | ran twice | extra runs | dead letters "
          "| consumer kills | worker kills | requeued leases | enqueue time "
          "| drain time |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r.backend} | {r.enqueued:,} | {r.completed:,} | {r.lost:,} | {r.ran_twice:,} "
              f"| {r.extra_runs:,} | {r.dead_letters} | {r.group_kills} | {r.worker_kills} "
              f"| {r.requeued:,} | {r.enqueue_seconds:.0f} s | {r.seconds:.0f} s |")  # fmt: skip
    for r in results:
        if r.error:
            print(f"{r.backend}: ERROR {r.error}")


def report_ticks(results: list[TickResult]) -> None:
    print("\nPeriodic ticks: 3 consumers per backend, real one-minute crontab ticks, "
          "leader SIGKILLed after the first tick\n")  # fmt: skip
    print("| backend | tick enqueued, per minute (UTC) | tick runs | leader killed | "
          "later ticks enqueued by |")  # fmt: skip
    print("|---|---|---:|---|---|")
    for r in results:
        minutes = ", ".join(
            f"{time.strftime('%H:%M', time.gmtime(m * 60))}: {n}" for m, n in r.per_minute.items()
        )
        later = ", ".join(map(str, sorted(r.later_leaders))) or "-"
        print(f"| {r.backend} | {minutes or '-'} | {r.tick_runs} | pid {r.leader_killed} "
              f"| pid {later} |")  # fmt: skip
    for r in results:
        if r.error:
            print(f"{r.backend}: ERROR {r.error}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated")
    parser.add_argument("--tasks", type=int, default=20_000, help="jobs per backend")
    parser.add_argument("--kills", type=int, default=6, help="whole-consumer kills")
    parser.add_argument("--duration", type=float, default=0.0, help="seconds each job sleeps")
    parser.add_argument(
        "--scheduled", type=int, default=2_000, help="of the jobs, how many are eta tasks"
    )
    parser.add_argument("--parts", default="kills,periodic", help="kills, periodic or both")
    parser.add_argument("--stage-timeout", type=float, default=300, help="seconds per stage")
    parser.add_argument("--drain-timeout", type=float, default=600, help="seconds to drain")
    parser.add_argument("--redis-url", default=DEFAULT_TARGETS["redis"])
    parser.add_argument("--pg-dsn", default=DEFAULT_TARGETS["postgres"])
    args = parser.parse_args(argv)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = sorted(set(args.backends) - set(BACKENDS))
    if unknown:
        parser.error(f"unknown backend(s) {unknown}; choose from {', '.join(BACKENDS)}")
    args.parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if not args.parts or args.parts - {"kills", "periodic"}:
        parser.error("--parts takes kills, periodic or kills,periodic")
    if args.tasks < 1 or args.kills < 0:
        parser.error("--tasks must be at least 1 and --kills at least 0")
    if not 0 <= args.scheduled <= args.tasks:
        parser.error("--scheduled must be from 0 to --tasks")
    return args


@contextmanager
def terminated_cleanly() -> Iterator[None]:
    """Turn SIGTERM / SIGHUP into SystemExit, so the ``finally`` blocks kill the consumers."""

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="huey-chaos-"))
    kills: list[KillResult] = []
    ticks: list[TickResult] = []
    with terminated_cleanly():
        if "kills" in args.parts:
            for name in args.backends:
                say(f"{name}: kill matrix, {args.tasks} tasks")
                kills.append(kill_matrix(name, args, workdir / f"kills-{name}"))
        if "periodic" in args.parts:
            say(f"periodic ticks on {', '.join(args.backends)} (about three minutes)")
            ticks = periodic_ticks(args.backends, args, workdir)
    if kills:
        report_kills(kills, args)
    if ticks:
        report_ticks(ticks)
    ok = all(r.ok for r in kills) and all(r.ok for r in ticks)
    if ok:
        shutil.rmtree(workdir, ignore_errors=True)
        checked = ["nothing lost"] if kills else []
        checked += ["every tick enqueued exactly once"] if ticks else []
        print(f"\nOK: {', '.join(checked)}.")
        return 0
    print(f"\nFAILED (lost tasks, dead letters, a tick not exactly once, or an error); "
          f"consumer logs and events are kept in {workdir}")  # fmt: skip
    return 1


if __name__ == "__main__":
    sys.exit(main())
