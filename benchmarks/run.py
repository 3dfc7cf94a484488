"""Side-by-side benchmark of huey-ng against upstream huey 3.5.4 (``make bench``).

Upstream huey is installed once into its own virtualenv, ``benchmarks/.venv-upstream``
(it is only ever *run*, as a subprocess); huey-ng is the project's ``.venv``.  Both
interpreters execute the same ``benchmarks/scenarios.py``, runs are interleaved
(upstream, huey-ng, upstream, huey-ng, ...), and the medians and the ratio
huey-ng / upstream are printed as one markdown table, also written to
``benchmarks/results/latest.md``.

Examples::

    make bench                                   # full run: N=10,000, 3 rounds, memory
    make bench BENCH_ARGS="--n 2000 --backends redis --scenarios drain-thread"
    .venv/bin/python benchmarks/run.py --quick --backends sqlite --implementations huey-ng

``--quick`` (N=500, one round, 50 latency round trips, no memory scenario) only checks that every
scenario runs end to end; a failed run is reported in the table and makes the
exit status non-zero.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
UPSTREAM_VENV = HERE / ".venv-upstream"
UPSTREAM_REQUIREMENTS = ["huey==3.5.4", "redis", "psycopg[binary]"]
RESULTS_DIR = HERE / "results"
IMPLEMENTATIONS = ("upstream", "huey-ng")
BACKENDS = ("redis", "sqlite", "postgres")
RESULT_PREFIX = "BENCH_RESULT "

# label, unit (with the better direction), higher_is_better, and the headline row of each.
METRICS: dict[str, tuple[str, str, bool]] = {
    "enqueue_tps": ("enqueue, one call per task", "tasks/s ↑", True),
    "map_tps": ("enqueue through task.map()", "tasks/s ↑", True),
    "drain_tps": ("drain", "tasks/s ↑", True),
    "startup_s": ("consumer start-up (left out of drain)", "s ↓", False),
    "p50_ms": ("enqueue + blocking get, p50", "ms ↓", False),
    "p90_ms": ("enqueue + blocking get, p90", "ms ↓", False),
    "p99_ms": ("enqueue + blocking get, p99", "ms ↓", False),
    "hwm_first_mb": ("consumer peak RSS (VmHWM) after 10k tasks", "MiB ↓", False),
    "hwm_last_mb": ("consumer peak RSS (VmHWM) after {total}k tasks", "MiB ↓", False),
    "hwm_growth": ("peak RSS after {total}k / after 10k", "ratio ↓", False),
}


@dataclass(frozen=True)
class Scenario:
    """One scenario as the table names it, and the scenarios.py arguments that run it."""

    key: str
    title: str
    argv: tuple[str, ...]
    metrics: tuple[str, ...]
    timeout: float


def build_scenarios(n: int, memory_steps: int, trips: int = 200) -> dict[str, Scenario]:
    """Every scenario the harness knows, keyed by its ``--scenarios`` name."""
    drain_timeout = 240 + n / 10
    threads = ("--workers", "4", "--worker-type", "thread")
    processes = ("--workers", "2", "--worker-type", "process")
    return {
        s.key: s
        for s in (
            Scenario("enqueue", "enqueue", ("enqueue", "--n", str(n)),
                     ("enqueue_tps", "map_tps"), 120 + n / 20),
            Scenario("drain-thread", "drain, -w 4 -k thread", ("drain", "--n", str(n), *threads),
                     ("drain_tps", "startup_s"), drain_timeout),
            Scenario("drain-process", "drain, -w 2 -k process",
                     ("drain", "--n", str(n), *processes), ("drain_tps", "startup_s"),
                     drain_timeout),
            Scenario("latency", f"latency, {trips} round trips, -w 4 -k thread",
                     ("latency", "--trips", str(trips), *threads),
                     ("p50_ms", "p90_ms", "p99_ms"), 600),
            Scenario("memory", f"memory, {memory_steps} x 10,000 tasks, -w 4 -k thread",
                     ("memory", "--n", "10000", "--steps", str(memory_steps), *threads),
                     ("hwm_first_mb", "hwm_last_mb", "hwm_growth"), 300 + memory_steps * 600),
        )
    }  # fmt: skip


@dataclass
class Outcome:
    """The results of one (backend, scenario, implementation) cell over all rounds."""

    values: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    version: str = "?"


def ensure_upstream_venv() -> Path:
    """Create ``benchmarks/.venv-upstream`` with upstream huey once; return its python."""
    python = UPSTREAM_VENV / "bin" / "python"
    stamp = UPSTREAM_VENV / ".bench-installed"
    wanted = " ".join(UPSTREAM_REQUIREMENTS)
    if stamp.exists() and stamp.read_text().strip() == wanted and python.exists():
        return python
    log(f"creating {UPSTREAM_VENV.relative_to(ROOT)} with {wanted} (once) ...")
    subprocess.run([sys.executable, "-m", "venv", str(UPSTREAM_VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        + UPSTREAM_REQUIREMENTS,
        check=True,
    )
    stamp.write_text(wanted + "\n")
    return python


def snapshot_source(into: Path, source: Path = ROOT / "src" / "huey") -> Path | None:
    """Copy ``src/huey`` (or ``source``) so that the whole run measures one version of huey-ng.

    huey-ng is installed editable; the copy goes first on ``PYTHONPATH`` of the
    huey-ng runs, so edits made to the work tree while the benchmark runs (it
    takes a while) cannot mix versions or break a run half-way.
    """
    if not source.is_dir():
        return None
    shutil.copytree(source, into / "huey", ignore=shutil.ignore_patterns("__pycache__"))
    return into


def source_revision() -> str:
    """The git commit of the work tree, with ``+dirty`` when it has local changes."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "?"
    return (rev or "?") + ("+dirty" if dirty else "")


def log(message: str) -> None:
    """Progress goes to stderr so that stdout carries only the table."""
    print(message, file=sys.stderr, flush=True)


def kill_leftovers(pidfile: Path) -> None:
    """Kill the process group of every consumer a (killed) scenario run left behind."""
    try:
        pids = [int(line) for line in pidfile.read_text().split()]
    except (FileNotFoundError, ValueError):
        return
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    pidfile.unlink(missing_ok=True)


def run_once(
    python: Path, backend: str, scenario: Scenario, args: argparse.Namespace, tag: str
) -> tuple[dict[str, float], str]:
    """Run one scenario under one interpreter; return its metrics and huey version."""
    tmp = Path(tempfile.mkdtemp(prefix="huey-bench-run-"))
    name = f"bench_{tag}_{os.getpid()}_{int(time.time() * 1000) % 10**9}"
    path = [str(HERE)] + ([str(args.snapshot)] if tag == "ng" and args.snapshot else [])
    env = dict(os.environ, BENCH_BACKEND=backend, BENCH_NAME=name)
    env["PYTHONPATH"] = os.pathsep.join(path)
    env.update(
        BENCH_REDIS_URL=args.redis_url,
        BENCH_PG_DSN=args.pg_dsn,
        BENCH_SQLITE_FILE=str(tmp / f"{name}.db"),
        BENCH_PIDFILE=str(tmp / "consumers.pid"),
    )
    cmd = [str(python), str(HERE / "scenarios.py"), *scenario.argv]
    cmd += [f"--consumer-arg={arg}" for arg in args.consumer_arg]
    proc = subprocess.Popen(
        cmd, cwd=HERE, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        out, err = proc.communicate(timeout=scenario.timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # scenarios.py unwinds and stops its consumer
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        err += f"\nrun killed after {scenario.timeout:.0f}s"
    finally:
        kill_leftovers(tmp / "consumers.pid")
        shutil.rmtree(tmp, ignore_errors=True)
    for line in out.splitlines():
        if line.startswith(RESULT_PREFIX) and proc.returncode == 0:
            result = json.loads(line[len(RESULT_PREFIX) :])
            check_imported(tag, Path(result["huey_dir"]), args.snapshot)
            return result["metrics"], result["version"]
    lines = [line for line in err.splitlines() if line.strip()]
    last = lines[-1].strip() if lines else "no output"
    raise RuntimeError(f"exit status {proc.returncode}: {last}\n{err.strip()}")


def check_imported(tag: str, huey_dir: Path, snapshot: Path | None) -> None:
    """Make sure each side really ran the implementation it is labelled with."""
    if tag == "up" and huey_dir.is_relative_to(ROOT / "src"):
        raise RuntimeError(f"the upstream run imported huey-ng from {huey_dir}")
    if tag == "ng" and snapshot is not None and not huey_dir.is_relative_to(snapshot):
        raise RuntimeError(f"the huey-ng run imported {huey_dir}, not the snapshot {snapshot}")


def run_all(
    args: argparse.Namespace, pythons: dict[str, Path], scenarios: list[Scenario]
) -> dict[tuple[str, str, str], Outcome]:
    """Run every backend x scenario for ``args.rounds`` rounds, implementations interleaved."""
    outcomes: dict[tuple[str, str, str], Outcome] = {}
    for backend in args.backends:
        for scenario in scenarios:
            rounds = 1 if scenario.key == "memory" else args.rounds
            for rnd in range(1, rounds + 1):
                for impl in args.implementations:
                    cell = outcomes.setdefault((backend, scenario.key, impl), Outcome())
                    label = f"{backend} / {scenario.key} / {impl} / round {rnd}/{rounds}"
                    start = time.monotonic()
                    try:
                        tag = "up" if impl == "upstream" else "ng"
                        metrics, cell.version = run_once(
                            pythons[impl], backend, scenario, args, tag
                        )
                    except RuntimeError as exc:
                        cell.errors.append(str(exc))
                        save_error_log(label, str(exc))
                        log(f"{label}: FAILED ({first_line(str(exc))})")
                        continue
                    for key, value in metrics.items():
                        cell.values.setdefault(key, []).append(value)
                    shown = ", ".join(f"{k}={v:.4g}" for k, v in metrics.items())
                    log(f"{label}: {shown} ({time.monotonic() - start:.1f}s)")
    return outcomes


def first_line(text: str) -> str:
    """The first non-empty line of an error, for one-line progress messages."""
    return next((line for line in text.splitlines() if line.strip()), text)[:200]


def save_error_log(label: str, text: str) -> None:
    """Keep the full error output of a failed run under benchmarks/results/logs/."""
    logs = RESULTS_DIR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() else "_" for c in label)
    (logs / f"{safe}.log").write_text(text + "\n")


def fmt(value: float | None) -> str:
    """Format a figure with a precision that suits its size."""
    if value is None:
        return "—"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def cell_text(outcome: Outcome | None, metric: str) -> tuple[str, float | None]:
    """The table cell of one implementation: the median, or FAIL."""
    if outcome is None:
        return "—", None
    values = outcome.values.get(metric, [])
    if not values:
        return ("FAIL" if outcome.errors else "—"), None
    median = statistics.median(values)
    text = fmt(median)
    if outcome.errors:
        text += f" ({len(outcome.errors)} failed)"
    return text, median


def render_table(
    args: argparse.Namespace,
    scenarios: list[Scenario],
    outcomes: dict[tuple[str, str, str], Outcome],
) -> str:
    """One markdown table: medians per implementation and the huey-ng / upstream ratio."""
    impls = list(args.implementations)
    both = len(impls) == 2
    head = ["backend", "scenario", "metric", *impls] + (["huey-ng / upstream"] if both else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for backend in args.backends:
        for scenario in scenarios:
            for metric in scenario.metrics:
                label, unit, _higher = METRICS[metric]
                cells, medians = [], []
                for impl in impls:
                    text, median = cell_text(outcomes.get((backend, scenario.key, impl)), metric)
                    cells.append(text)
                    medians.append(median)
                label = label.format(total=10 * args.memory_steps)
                row = [backend, scenario.title, f"{label} ({unit})", *cells]
                if both:
                    up, ng = medians[impls.index("upstream")], medians[impls.index("huey-ng")]
                    row.append(f"{ng / up:.2f}x" if up and ng is not None else "—")
                lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def render_report(
    args: argparse.Namespace,
    scenarios: list[Scenario],
    outcomes: dict[tuple[str, str, str], Outcome],
) -> str:
    """The whole markdown report: context line, table, legend and failures."""
    versions = {}
    for (_b, _s, impl), outcome in outcomes.items():
        if outcome.version != "?":
            versions[impl] = outcome.version
    if "huey-ng" in versions:
        versions["huey-ng"] += f" (git {args.revision})"
    shown = ", ".join(f"{impl} {versions.get(impl, '?')}" for impl in args.implementations)
    mode = "quick (smoke) mode: figures are not meaningful" if args.quick else "full mode"
    parts = [
        f"### huey-ng vs upstream huey ({time.strftime('%Y-%m-%d %H:%M')})",
        "",
        f"{mode}; N = {args.n:,} tasks, {args.rounds} round(s) interleaved (memory: 1), "
        f"medians; "
        f"{shown}; Python {platform.python_version()}, {os.cpu_count()} CPUs.",
        "",
        render_table(args, scenarios, outcomes),
        "",
        "↑ higher is better, ↓ lower is better. The ratio is huey-ng's median divided by "
        "upstream's: above 1 is better for ↑ rows, below 1 is better for ↓ rows.",
    ]
    failures = [
        f"- {b} / {s} / {impl}: {first_line(err)}"
        for (b, s, impl), outcome in outcomes.items()
        for err in outcome.errors
    ]
    if failures:
        parts += ["", "Failed runs (full output in benchmarks/results/logs/):", *failures]
    return "\n".join(parts) + "\n"


def csv_list(choices: tuple[str, ...]) -> type[list[str]] | object:
    """An argparse type for a comma-separated subset of ``choices``."""

    def parse(text: str) -> list[str]:
        items = [item.strip() for item in text.split(",") if item.strip()]
        unknown = [item for item in items if item not in choices]
        if unknown or not items:
            raise argparse.ArgumentTypeError(
                f"choose a comma-separated subset of {', '.join(choices)} (got {text!r})"
            )
        return items

    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options of the harness."""
    all_scenarios = tuple(build_scenarios(1, 1))
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="N=500, 1 round, no memory")
    parser.add_argument("--n", type=int, help="tasks per run (default 10000; 500 with --quick)")
    parser.add_argument("--rounds", type=int, help="rounds per scenario (default 3; 1 quick)")
    parser.add_argument("--backends", type=csv_list(BACKENDS), default=list(BACKENDS))
    parser.add_argument(
        "--scenarios", type=csv_list(all_scenarios), help=f"subset of {','.join(all_scenarios)}"
    )
    parser.add_argument(
        "--implementations", type=csv_list(IMPLEMENTATIONS), default=list(IMPLEMENTATIONS)
    )
    parser.add_argument("--trips", type=int, help="latency round trips (200; 50 with --quick)")
    parser.add_argument("--memory-steps", type=int, default=10, help="batches of 10,000")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--pg-dsn", default="postgresql://127.0.0.1:5432/test")
    parser.add_argument(
        "--consumer-arg", action="append", default=[], help="extra huey_consumer option (both)"
    )
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "latest.md")
    parser.add_argument(
        "--ng-source", type=Path, default=ROOT / "src" / "huey",
        help="the huey package directory to run as huey-ng (default: src/huey), e.g. an "
        "older revision extracted with 'git archive' for a before/after comparison",
    )  # fmt: skip
    parser.add_argument(
        "--no-snapshot", dest="use_snapshot", action="store_false",
        help="run huey-ng from the live src/ tree instead of a copy taken at start",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if not args.use_snapshot and args.ng_source.resolve() != (ROOT / "src" / "huey").resolve():
        parser.error("--ng-source needs the snapshot (drop --no-snapshot)")
    args.n = args.n or (500 if args.quick else 10_000)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.trips = args.trips or (50 if args.quick else 200)
    if args.scenarios is None:
        args.scenarios = [s for s in all_scenarios if not (args.quick and s == "memory")]
    # A, B, A, B ...: upstream first whatever order the option listed them in.
    args.implementations = [i for i in IMPLEMENTATIONS if i in args.implementations]
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, and write it to ``--output``."""
    args = parse_args(argv)
    pythons = {"huey-ng": ROOT / ".venv" / "bin" / "python"}
    if not pythons["huey-ng"].exists():
        pythons["huey-ng"] = Path(sys.executable)
    if "upstream" in args.implementations:
        pythons["upstream"] = ensure_upstream_venv()
    for stale in (RESULTS_DIR / "logs").glob("*.log"):
        stale.unlink()  # logs of an earlier run would be mistaken for this one's
    known = build_scenarios(args.n, args.memory_steps, args.trips)
    scenarios = [known[key] for key in known if key in args.scenarios]
    args.revision = source_revision()
    if args.ng_source.resolve() != (ROOT / "src" / "huey").resolve():
        args.revision = f"source {args.ng_source}"
    with tempfile.TemporaryDirectory(prefix="huey-bench-src-") as snap:
        source = args.ng_source.resolve()
        args.snapshot = snapshot_source(Path(snap), source) if args.use_snapshot else None
        outcomes = run_all(args, pythons, scenarios)
    report = render_report(args, scenarios, outcomes)
    print(report, end="")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    log(f"written to {args.output}")
    return 1 if any(outcome.errors for outcome in outcomes.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
