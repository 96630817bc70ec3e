"""Benchmark several ``batchgen run`` processes that share one token against one simulator.

Usage::

    python benchmarks/bench_shared.py            # the table of issue 18 (about 6 minutes)
    python benchmarks/bench_shared.py --quick    # fewer rows (about 3 minutes)
    python benchmarks/bench_shared.py --smoke    # a few rows, one tier: checks every path runs

Each scenario starts one ``batchgen simulate`` (one token, the tier's limit, a sliding
window) and P runner processes at once, each with its own manifest of N/P rows and its own
output folder, each told the whole limit (``--tier``): only the shared window keeps them,
together, within it. The default per-host window is used, or ``--limiter redis://…`` on a
``redis-server`` this script starts on a free loopback port.

Time is compressed by k exactly as in ``bench_run.py`` (whose helpers this reuses), and the
figures are the same: LB = max(2N/R, N/R + min L, max L) over the N rows of all processes
together, from the latencies the simulator drew; makespan from the first task id back in any
state to the last completion in any; 429s and window/R from the simulator's own count.

Overhead: against an instant simulator with no limit, the runner CPU (user + system, summed
over the processes) per 1,000 tasks with the shared window and without it (``--limiter
none``), for one process and for two processes sharing the rows.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import math
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_run import (
    INSTANT,
    TIERS,
    Bench,
    ChildUsage,
    Row,
    SimProcess,
    choose_k,
    compressed_sim_args,
    format_table,
    machine,
    runner_argv,
    sim_figures,
    write_manifest,
)


@contextlib.contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A ``redis-server`` on a free loopback port (no persistence; its log in ``folder``);
    yields its URL."""
    program = shutil.which("redis-server")
    if program is None:
        raise SystemExit("redis-server not found (apt-get install redis-server)")
    folder.mkdir(parents=True, exist_ok=True)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    argv = [program, "--bind", "127.0.0.1", "--port", str(port), "--save", ""]
    argv += ["--appendonly", "no", "--dir", str(folder)]
    with (folder / "redis.log").open("w") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=log)
    try:
        for _ in range(200):
            if proc.poll() is not None:
                raise SystemExit(f"redis-server exited; see {folder / 'redis.log'}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def run_children(argvs: Sequence[tuple[list[str], Path]], env: dict[str, str]) -> list[ChildUsage]:
    """Start every runner at once; each one's exit code, wall time and own CPU (wait4)."""
    started = time.monotonic()
    procs = {}
    for argv, folder in argvs:
        with (folder / "runner.log").open("w") as log:
            proc = subprocess.Popen(argv, env=env, cwd=folder, stdout=log, stderr=log)
        procs[proc.pid] = proc
    usages: dict[int, ChildUsage] = {}
    while len(usages) < len(procs):
        pid, status, usage = os.wait4(-1, 0)
        if pid not in procs:
            continue
        usages[pid] = ChildUsage(
            exit_code=os.waitstatus_to_exitcode(status),
            wall=time.monotonic() - started,
            user=usage.ru_utime,
            system=usage.ru_stime,
            max_rss_mb=usage.ru_maxrss / 1024,
        )
        procs[pid].returncode = usages[pid].exit_code
    return [usages[pid] for pid in procs]


def states_figures(row: Row, states: Sequence[Path]) -> None:
    """Completed rows, makespan and submit span over several states together."""
    firsts, last_submits, lasts, done = [], [], [], 0
    for state in states:
        with contextlib.closing(sqlite3.connect(f"file:{state}?mode=ro", uri=True)) as db:
            first, last_submit, last = db.execute(
                "SELECT min(submitted_at), max(submitted_at), max(completed_at) FROM jobs"
            ).fetchone()
            done += db.execute("SELECT count(*) FROM jobs WHERE status = 'downloaded'").fetchone()[
                0
            ]
        if first and last:
            firsts.append(dt.datetime.fromisoformat(first))
            last_submits.append(dt.datetime.fromisoformat(last_submit))
            lasts.append(dt.datetime.fromisoformat(last))
    row.completed = done
    if firsts:
        row.makespan = (max(lasts) - min(firsts)).total_seconds()
        row.submit_span = (max(last_submits) - min(firsts)).total_seconds()


def run_shared(
    bench: Bench, name: str, n: int, procs: int, *, tier: str, k: int, limiter: str = "local"
) -> Row:
    """``procs`` runners of ``n / procs`` rows each, one token, one simulator."""
    rpm = TIERS[tier]
    row = Row(name=name, n=n, k=k, rpm=rpm)
    folder = bench.folder(name)
    bench.log(f"{name}: N={n} in {procs} processes, k={k}, {rpm}/60s, limiter {limiter}")
    with SimProcess(
        compressed_sim_args(rpm, k, bench.seed), bench.token, folder / "sim.log"
    ) as sim:
        argvs = []
        for i in range(procs):
            sub = folder / f"p{i}"
            sub.mkdir()
            manifest = write_manifest(sub / "bench.csv", n // procs, f"{name} {i}")
            args = [
                *("run", manifest.name, "--out", "out", "--base-url", sim.url, "-q"),
                *("--tier", tier, "--no-progress", "--limiter", limiter),
            ]
            argvs.append((runner_argv(k, args), sub))
        usages = run_children(argvs, bench.env() | {"BATCHGEN_HOME": str(bench.work / "home")})
        stats = sim.stats()
    (folder / "sim-stats.json").write_text(json.dumps(stats), encoding="utf-8")
    sim_figures(row, stats, per_second=rpm * k / 60)
    states_figures(row, [folder / f"p{i}" / "out" / "bench" / "state.sqlite" for i in range(procs)])
    row.cpu = sum(u.cpu for u in usages)
    row.wall = max(u.wall for u in usages)
    codes = sorted({u.exit_code for u in usages})
    row.note = f"{procs} processes" + ("" if codes == [0] else f", exit {codes}")
    return row


def run_overhead(bench: Bench, n: int, procs: int, limiter: str) -> Row:
    """CPU per 1,000 tasks of ``procs`` runners on ``n`` rows in all, instant simulator."""
    name = f"overhead: {procs} process(es), limiter {limiter}"
    folder = bench.folder(name)
    bench.log(f"{name}: N={n}")
    row = Row(name=name, n=n, k=1, rpm=0)
    with SimProcess(INSTANT, bench.token, folder / "sim.log") as sim:
        argvs = []
        for i in range(procs):
            sub = folder / f"p{i}"
            sub.mkdir()
            manifest = write_manifest(sub / "bench.csv", n // procs, f"{name} {i}")
            args = [
                *("run", manifest.name, "--out", "out", "--base-url", sim.url, "-q"),
                *("--rpm", "1000000000", "--first-poll", "0.01s", "--no-progress"),
                *("--limiter", limiter),
            ]
            argvs.append(([sys.executable, "-m", "batchgen", *args], sub))
        usages = run_children(argvs, bench.env() | {"BATCHGEN_HOME": str(bench.work / "home")})
        requests = sim.stats(tasks=False)["requests"]
    row.requests = int(requests.get("generate", 0)) + int(requests.get("status", 0))
    states_figures(row, [folder / f"p{i}" / "out" / "bench" / "state.sqlite" for i in range(procs)])
    row.cpu = sum(u.cpu for u in usages) / (n / 1000)
    row.wall = max(u.wall for u in usages)
    row.makespan = math.nan
    row.note = f"CPU s per 1,000 tasks ({n:,} tasks, start-up included)"
    return row


@dataclasses.dataclass(frozen=True)
class Plan:
    """Sizes of one invocation."""

    n: int = 1000  # rows of all processes together
    target: float = 20.0
    max_wall: float = 50.0
    overhead_n: int = 2000
    tiers: tuple[str, ...] = ("free", "pro")
    procs: tuple[int, ...] = (2, 4)  # processes sharing the window (one simulator each)

    def smoke(self) -> Plan:
        """Every kind of scenario once, on a few rows and about a second of compressed time."""
        return dataclasses.replace(
            self, n=20, target=1.0, max_wall=2.0, overhead_n=20, tiers=("free",), procs=(2,)
        )


PLANS = {"full": Plan(), "quick": Plan(n=400, target=10.0, max_wall=25.0, overhead_n=1000)}


def run_all(bench: Bench, plan: Plan, only: str = "") -> list[Row]:
    """Every scenario (or those whose name contains ``only``), in table order."""
    rows: list[Row] = []

    def wanted(name: str) -> bool:
        return only in name

    for tier in plan.tiers:
        k = choose_k(plan.n, TIERS[tier], target=plan.target, max_wall=plan.max_wall)
        for procs in plan.procs:
            name = f"{tier}, {procs} processes"
            if wanted(name):
                rows.append(run_shared(bench, name, plan.n, procs, tier=tier, k=k))
    with redis_server(bench.work / "redis") as url:
        for tier in plan.tiers:
            k = choose_k(plan.n, TIERS[tier], target=plan.target, max_wall=plan.max_wall)
            name = f"{tier}, 2 processes, redis"
            if wanted(name):
                rows.append(run_shared(bench, name, plan.n, 2, tier=tier, k=k, limiter=url))
        for procs, limiter in ((1, "none"), (1, "local"), (2, "none"), (2, "local"), (2, url)):
            if wanted(f"overhead: {procs} process(es), limiter {limiter}".replace(url, "redis")):
                rows.append(run_overhead(bench, plan.overhead_n, procs, limiter))
    for row in rows:
        row.name = row.name.replace(url, "redis")
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Parse options, run the scenarios, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rows")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument("--seed", type=int, default=7, help="the simulator's seed")
    parser.add_argument("--only", default="", help="run the scenarios whose name contains this")
    parser.add_argument(
        "--smoke", action="store_true", help="a few rows, one tier: checks every path runs"
    )
    ns = parser.parse_args(argv)
    plan = PLANS["quick" if ns.quick else "full"]
    if ns.smoke:
        plan = plan.smoke()
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        work = ns.keep or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        bench = Bench(work=work.resolve(), seed=ns.seed)
        rows = run_all(bench, plan, ns.only)
    print(
        f"batchgen shared-window benchmark: {machine()}; total {time.monotonic() - started:.0f} s\n"
    )
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
