"""Benchmark ``batchgen run`` against the simulator: speed against the limit, overhead, scale.

Usage::

    python benchmarks/bench_run.py            # the table of issue 7 (about 4.5 minutes, 2 cores)
    python benchmarks/bench_run.py --quick    # the same scenarios on fewer rows (about 2.5 min)
    python benchmarks/bench_run.py --scale    # also the 100,000-row manifest (7 more minutes)
    python benchmarks/bench_run.py --grid     # N x tier x seed, cold starts (about 10 minutes)
    python benchmarks/bench_run.py --overhead # runner CPU and memory only (1 minute; --scale too)
    python benchmarks/bench_run.py --xai      # only the xAI cells: 1 request/s, N = 10 and 100
    python benchmarks/bench_run.py --noop     # only the no-op re-run of 100,000 done rows

The table includes two xAI cells (``--provider xai`` against the simulator's xAI dialect at
1 request per second per team, N = 10 and N = 100): xAI's limit is per second, so its window
(1 s) is compressed by k like the reseller's minute, with ``--rps-window`` on both sides.

``--smoke`` shrinks whichever of these was asked to a few rows and about a second of
compressed time per scenario: the figures mean nothing, but every path runs (the test suite's
``tests/unit/benchmarks/test_bench_smoke.py`` runs each path that way, so a change of options
cannot break the benchmark silently).

Every scenario starts ``batchgen simulate`` in its own process and runs the runner as another
process, so the runner's CPU time and peak RSS are its own (``os.wait4`` on that one child).

Time compression. A tier's limit is R requests per 60 s and task latencies are log-normal
(median 60 s, sigma 0.5). To make an hour of traffic take a minute, everything that is a
duration is divided by k: the simulator enforces R requests per ``60/k`` s (a sliding window,
the strictest kind) and draws latencies of median ``60/k`` s; the client is given the same
limit R over a ``60/k`` s window (``--rate-window``), a first poll after ``5/k`` s and a poll
lag of ``600/k`` s. The compressed run is then the real one, k times faster: every ratio in the
table is unaffected, and "largest 60-second window" is the simulator's peak count over any
``60/k`` s of wall time. (Giving ``--rpm R*k`` over 60 s instead would not be the same run:
the client's burst allowance would be k times too large in compressed units.)

The runner is the real ``batchgen run`` in its own process (``python -m batchgen``).

Baselines go through the same ``Throttle`` (same limit, window and margin) and the same
``ApiClient``, inside this process: a fixed 5-second poller (every task submitted at once, each
polled every 5 s until done) and the sequential loop (submit, poll every 5 s until done, next).
Beside them an independent peer that shares no code with batchgen (``peer_runner.py``: aiohttp
and aiolimiter as their docs show them, polls every 5 s, 429s waited out; the ``bench`` extra),
whose 429s the simulator counts. They keep no state and download nothing; only their API
requests are compared.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import dataclasses
import datetime as dt
import json
import math
import os
import platform
import secrets
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any, TextIO

from batchgen.config import Settings

TIERS = {"free": 100, "pro": 1000, "enterprise": 5000}
MEDIAN = 60.0  # seconds, before compression
SIGMA = 0.5
MARGIN = Settings().api.safety_margin  # the client's (the baselines use it too)
FIRST_POLL = 5.0  # seconds, before compression (the CLI's default --first-poll)
POLL_LAG = 600.0  # seconds, before compression (the CLI's default --max-poll-lag)
BASELINE_POLL = 5.0  # seconds, before compression
MAX_RATE = 500.0  # wall requests per second the compression may ask of a 2-core machine
MAX_SUBMITS = 150.0  # wall submits per second the runner sustains here (see submit_capacity)
INSTANT = ("--latency-median", "0.001", "--latency-sigma", "0", "--rpm", "1000000000")


# --------------------------------------------------------------------------- pure helpers
def lower_bound(
    n: int, per_second: float, latencies: Sequence[float], *, limit: int | None = None
) -> float:
    """LB = max(2N/R, N/R + min L, max_i(t_i + L_i)): seconds a run of ``n`` tasks needs at
    least, with R = ``per_second`` requests per second and the tasks' drawn ``latencies``
    (seconds) in the order the tasks were created. t_i is the earliest the i-th task can be
    created under a limit of ``limit`` requests per window (``limit / per_second`` seconds):
    floor(i / limit) windows; without ``limit``, 0 (the latest-drawn latency could have gone
    first)."""
    if n <= 0 or not latencies:
        return 0.0
    window = limit / per_second if limit else 0.0
    starts = [(i // limit) * window if limit else 0.0 for i in range(len(latencies))]
    last = max(t + lat for t, lat in zip(starts, latencies, strict=True))
    return max(2 * n / per_second, n / per_second + min(latencies), last)


def expected_max_latency(n: int, median: float = MEDIAN, sigma: float = SIGMA) -> float:
    """Roughly the largest of ``n`` log-normal latencies (the 1 - 1/(2n) quantile)."""
    z = NormalDist().inv_cdf(1 - 1 / (2 * max(n, 1)))
    return median * math.exp(sigma * z)


def submit_capacity(rpm: int) -> float:
    """Submits per wall second the runner sustains on the 2-core machine (measured): about 35
    per submit worker (``SubmitStage.workers``: 4 at free, 7 at pro, 27 at enterprise),
    at most about 150 in all (each submit commits two fsync'd SQLite writes on the loop)."""
    workers = max(4, min(32, rpm // 200 + 2))
    return min(35.0 * workers, MAX_SUBMITS)


def choose_k(
    n: int,
    rpm: int,
    *,
    target: float,
    max_wall: float = 50.0,
    max_rate: float = MAX_RATE,
    min_window: float = 1.0,
    runner: bool = True,
) -> int:
    """The compression factor for ``n`` tasks at ``rpm``.

    About ``target`` wall seconds of expected LB, but no faster than the runner can submit
    (so that its submit phase is bound by the throttle, not by the machine) unless that would
    make the LB longer than ``max_wall``; never more than ``max_rate`` requests per wall
    second, and a rate window of at least ``min_window`` wall seconds. The baselines
    (``runner=False``) keep no state, so the runner's submit capacity does not apply.
    """
    expected = max(2 * n * 60 / rpm, expected_max_latency(n))
    k = expected / target
    if runner:
        k = min(k, submit_capacity(rpm) * 60 / rpm)
    k = max(k, expected / max_wall)
    k = min(k, max_rate * 60 / rpm, 60 / min_window)
    return max(1, int(k))


def sequential_k(n: int, *, target: float) -> int:
    """The compression factor for the sequential baseline: about n latencies end to end."""
    return max(1, int(n * MEDIAN * 1.2 / target))


def largest_window(times: Sequence[float], window: float) -> int:
    """The most of the sorted ``times`` inside any half-open interval of length ``window``."""
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def manifest_rows(n: int, tag: str) -> Iterator[list[str]]:
    """``n`` valid rows with distinct prompts (the simulator counts tasks per prompt)."""
    ratios, modes = ("2:3", "3:2", "1:1"), ("fun", "normal", "spicy")
    for i in range(n):
        prompt = f"Slow dolly-in on product {i} of {tag}, soft light, shallow depth of field"
        yield [f"r{i:06d}", prompt, modes[i % 3], ratios[i % 3]]


def write_manifest(path: Path, n: int, tag: str) -> Path:
    """A CSV manifest of ``n`` rows."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "prompt", "mode", "ratio"])
        writer.writerows(manifest_rows(n, tag))
    return path


# --------------------------------------------------------------------------- processes
class SimProcess:
    """``batchgen simulate --port 0`` in a child process; ``url`` once it listens."""

    def __init__(self, args: Sequence[str], token: str, log: Path) -> None:
        self.args = [*args, "--token", token]
        self.log = log
        self.url = ""
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> SimProcess:
        argv = [sys.executable, "-m", "batchgen", "simulate", "--port", "0", *self.args]
        with self.log.open("w") as err:
            self._proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, text=True)
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            if "listening on " in line:
                self.url = line.split("listening on ", 1)[1].strip()
                return self
        raise RuntimeError(f"the simulator did not start; see {self.log}")

    def stats(self, *, tasks: bool = True) -> dict[str, Any]:
        """``GET /_sim/stats``."""
        query = "" if tasks else "?tasks=0"
        with urllib.request.urlopen(f"{self.url}/_sim/stats{query}", timeout=60) as reply:
            data: dict[str, Any] = json.load(reply)
        return data

    def __exit__(self, *exc_info: object) -> None:
        if self._proc is None:
            return
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()


@dataclass(frozen=True)
class ChildUsage:
    """What one finished runner process cost."""

    exit_code: int
    wall: float
    user: float  # CPU seconds
    system: float
    max_rss_mb: float
    rss: tuple[tuple[float, float], ...] = ()  # (Unix time, MB) sampled while it ran

    @property
    def cpu(self) -> float:
        """User plus system CPU seconds."""
        return self.user + self.system

    def peak_until(self, when: float) -> float:
        """The largest RSS sample taken before Unix time ``when`` (MB)."""
        return max((mb for t, mb in self.rss if t <= when), default=math.nan)


def _sample_rss(pid: int, into: list[tuple[float, float]], done: threading.Event) -> None:
    status = Path(f"/proc/{pid}/status")
    while not done.wait(0.2):
        try:
            lines = status.read_text().splitlines()
        except OSError:
            return
        kb = next((int(ln.split()[1]) for ln in lines if ln.startswith("VmRSS:")), None)
        if kb is None:  # a zombie: the process has ended
            return
        into.append((time.time(), kb / 1024))


def run_child(argv: Sequence[str], *, env: dict[str, str], cwd: Path, log: TextIO) -> ChildUsage:
    """Run ``argv`` to its end; its own CPU and peak RSS come from ``os.wait4``, and its RSS
    is sampled every 0.2 s (to tell when the peak happened)."""
    started = time.monotonic()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=log, stderr=log)
    samples: list[tuple[float, float]] = []
    done = threading.Event()
    sampler = threading.Thread(target=_sample_rss, args=(proc.pid, samples, done), daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    done.set()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return ChildUsage(
        exit_code=proc.returncode,
        wall=time.monotonic() - started,
        user=usage.ru_utime,
        system=usage.ru_stime,
        max_rss_mb=usage.ru_maxrss / 1024,
        rss=tuple(samples),
    )


def runner_argv(k: int, args: Sequence[str], *, window: float = 60.0) -> list[str]:
    """``batchgen <args>`` with every duration of the client compressed by ``k`` (``window``:
    the seconds the provider counts its limit over, before compression)."""
    compressed = {"--rate-window": window, "--first-poll": FIRST_POLL, "--max-poll-lag": POLL_LAG}
    durations = [f"{option}={seconds / k:.6f}s" for option, seconds in compressed.items()]
    return [sys.executable, "-m", "batchgen", *args, *durations]


# --------------------------------------------------------------------------- results
@dataclass
class Row:
    """One line of the table."""

    name: str
    n: int
    k: int
    rpm: int  # the limit the simulator enforces, requests per ``window``
    window: float = 60.0  # seconds (before compression) the limit is counted over
    makespan: float = math.nan  # wall seconds
    lb: float = math.nan  # wall seconds
    requests: int = 0
    completed: int = 0
    rate_limited: int = 0
    peak: int = 0
    cpu: float = math.nan
    wall: float = math.nan
    rss: float = math.nan
    submit_span: float = math.nan  # wall seconds from the first submit to the last
    given: float = math.nan  # wall seconds: max(created + latency) of the tasks as submitted
    note: str = ""

    def submit_ratio(self) -> float:
        """The submit phase over the least the throttle allows for it (N / (1 - margin) R)."""
        allowed = max(1, int((1 - MARGIN) * self.rpm)) * self.k / self.window
        return self.submit_span / (self.n / allowed) if self.rpm else 0

    def cells(self) -> list[str]:
        """The table cells ("-" where a figure does not apply)."""
        timed = self.lb > 0 and not math.isnan(self.makespan)
        per_task = self.requests / self.completed if self.completed else math.nan
        return [
            self.name,
            f"{self.completed}/{self.n}",
            str(self.k) if timed else "-",
            f"{self.makespan * self.k / 60:.1f}" if timed else "-",
            f"{self.lb * self.k / 60:.1f}" if timed else "-",
            f"{self.makespan / self.lb:.3f}" if timed else "-",
            f"{per_task:.2f}",
            str(self.rate_limited),
            f"{self.peak / self.rpm:.2f}" if self.rpm else "-",
            f"{self.submit_ratio():.2f}" if timed and not math.isnan(self.submit_span) else "-",
            "-" if math.isnan(self.cpu) else f"{self.cpu:.2f}",
            "-" if math.isnan(self.cpu) else f"{100 * self.cpu / self.wall:.0f}%",
            self.note,
        ]


HEADER = [
    "scenario",
    "done/N",
    "k",
    "makespan min",
    "LB min",
    "makespan/LB",
    "req/task",
    "429s",
    "window/R",
    "submit phase",
    "runner CPU s",
    "CPU/wall",
    "note",
]


def format_table(rows: Sequence[Row]) -> str:
    """A Markdown table."""
    lines = [HEADER, ["---"] * len(HEADER), *(r.cells() for r in rows)]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def sim_figures(row: Row, stats: dict[str, Any], *, per_second: float) -> None:
    """Fill requests, 429s, peak window and LB of ``row`` from the simulator's stats."""
    requests = stats["requests"]
    row.requests = int(requests.get("generate", 0)) + int(requests.get("status", 0))
    row.rate_limited = int(stats["rate_limited"])
    row.peak = int(stats["peak_window"])
    tasks = sorted(stats.get("tasks", {}).values(), key=lambda t: t["created"])
    latencies = [t["latency"] for t in tasks]
    row.lb = lower_bound(len(latencies), per_second, latencies, limit=row.rpm)
    if tasks:  # the best any poller could do with the submits as they happened
        first = tasks[0]["created"]
        row.given = max(t["created"] - first + t["latency"] for t in tasks)


def state_figures(row: Row, state: Path) -> None:
    """Fill completed, makespan (first task id back -> last completion seen) and the span of
    the submit phase from a state."""
    with contextlib.closing(sqlite3.connect(f"file:{state}?mode=ro", uri=True)) as db:
        first, last_submit, last = db.execute(
            "SELECT min(submitted_at), max(submitted_at), max(completed_at) FROM jobs"
        ).fetchone()
        done = db.execute("SELECT count(*) FROM jobs WHERE status = 'downloaded'").fetchone()[0]
    row.completed = int(done)
    if first and last:
        start = dt.datetime.fromisoformat(first)
        row.makespan = (dt.datetime.fromisoformat(last) - start).total_seconds()
        row.submit_span = (dt.datetime.fromisoformat(last_submit) - start).total_seconds()


# --------------------------------------------------------------------------- scenarios
@dataclass
class Bench:
    """Shared settings of one benchmark invocation."""

    work: Path
    seed: int = 7
    token: str = field(default_factory=lambda: "bench-" + secrets.token_hex(12))
    rows: list[Row] = field(default_factory=list)

    def env(self, home: Path | None = None) -> dict[str, str]:
        """The runner's environment: the token from the variable, as a user would set it, and
        (``home``) its own per-user state folder, so that it starts with no latency history."""
        extra = {
            "GROKIMAGINE_API_TOKEN": self.token,
            "XAI_API_KEY": self.token,
            "PYTHONUNBUFFERED": "1",
        }
        if home is not None:
            extra["BATCHGEN_HOME"] = str(home)
        return os.environ | extra

    def folder(self, name: str) -> Path:
        """A fresh working folder for one scenario."""
        path = self.work / name.replace(" ", "_").replace("/", "_")
        path.mkdir(parents=True)
        return path

    def log(self, text: str) -> None:
        """Progress on stderr (the table goes to stdout)."""
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def compressed_sim_args(rpm: int, k: int, seed: int) -> list[str]:
    """The simulator of a tier compressed by ``k``."""
    return [
        *("--rpm", str(rpm), "--window", repr(60 / k), "--window-kind", "sliding"),
        *("--latency-median", repr(MEDIAN / k), "--latency-sigma", repr(SIGMA)),
        *("--seed", str(seed)),
    ]


def run_tier(
    bench: Bench,
    name: str,
    n: int,
    *,
    client_rpm: int,
    server_rpm: int,
    k: int,
    seed: int | None = None,
) -> Row:
    """``batchgen run`` on ``n`` rows from a cold start (no latency history); the client
    configured for ``client_rpm``; the simulator seeded with ``seed`` (default: the bench's)."""
    row = Row(name=name, n=n, k=k, rpm=server_rpm)
    folder = bench.folder(name)
    manifest = write_manifest(folder / "bench.csv", n, name)
    sim_args = compressed_sim_args(server_rpm, k, bench.seed if seed is None else seed)
    bench.log(f"{name}: N={n}, k={k}, client {client_rpm}/60s, simulator {server_rpm}/60s")
    with SimProcess(sim_args, bench.token, folder / "sim.log") as sim:
        args = [
            *("run", manifest.name, "--out", "out", "--base-url", sim.url, "-q"),
            *("--rpm", str(client_rpm), "--no-progress"),
        ]
        with (folder / "runner.log").open("w") as log:
            usage = run_child(
                runner_argv(k, args), env=bench.env(folder / "home"), cwd=folder, log=log
            )
        stats = sim.stats()
    (folder / "sim-stats.json").write_text(json.dumps(stats), encoding="utf-8")
    sim_figures(row, stats, per_second=server_rpm * k / 60)
    state_figures(row, folder / "out" / "bench" / "state.sqlite")
    row.cpu, row.wall, row.rss = usage.cpu, usage.wall, usage.max_rss_mb
    if usage.exit_code != 0:
        row.note = f"exit {usage.exit_code}"
    return row


#: xAI's own limit (xai-video-api.md section 5): 1 request per second per team.
XAI_RPS = 1
XAI_SIZES = (10, 100)
XAI_MAX_K = 40  # a compressed second of at least 25 ms


def xai_k(n: int, *, target: float) -> int:
    """The compression factor of an xAI cell: about ``target`` wall seconds of expected LB
    (2N requests at 1 per second, or the longest latency), a window of at least 25 ms."""
    expected = max(2 * n / XAI_RPS, expected_max_latency(n))
    return max(1, min(XAI_MAX_K, int(expected / target)))


def run_xai(bench: Bench, n: int, *, k: int, seed: int | None = None) -> Row:
    """``batchgen run --provider xai`` on ``n`` rows against the xAI simulator at 1 request per
    second per team (every duration compressed by ``k``, the second included)."""
    name = f"xai: 1 request/s, N={n}"
    row = Row(name=name, n=n, k=k, rpm=XAI_RPS, window=1.0)
    folder = bench.folder(name)
    manifest = write_manifest(folder / "bench.csv", n, name)
    sim_args = [
        *("--provider", "xai", "--rps", str(XAI_RPS), "--rps-window", repr(1 / k)),
        *("--latency-median", repr(MEDIAN / k), "--latency-sigma", repr(SIGMA)),
        *("--seed", str(bench.seed if seed is None else seed)),
    ]
    bench.log(f"{name}: k={k}")
    with SimProcess(sim_args, bench.token, folder / "sim.log") as sim:
        args = [
            *("run", manifest.name, "--out", "out", "--base-url", sim.url, "-q"),
            *("--provider", "xai", "--rps", str(XAI_RPS), "--no-progress"),
        ]
        with (folder / "runner.log").open("w") as log:
            usage = run_child(
                runner_argv(k, args, window=1.0),
                env=bench.env(folder / "home"),
                cwd=folder,
                log=log,
            )
        stats = sim.stats()
    (folder / "sim-stats.json").write_text(json.dumps(stats), encoding="utf-8")
    sim_figures(row, stats, per_second=XAI_RPS * k)
    state_figures(row, folder / "out" / "bench" / "state.sqlite")
    row.cpu, row.wall, row.rss = usage.cpu, usage.wall, usage.max_rss_mb
    if usage.exit_code != 0:
        row.note = f"exit {usage.exit_code}"
    return row


async def _baseline(
    url: str, token: str, n: int, *, rpm: int, k: int, sequential: bool
) -> tuple[float, float]:
    """Submit ``n`` tasks and poll each every 5 s (compressed) until done; the makespan and
    the span of the submits (wall seconds, from the first task id back)."""
    from batchgen.engine.pacing.throttle import Throttle
    from batchgen.errors import TransientApiError
    from batchgen.models import JobSpec, TaskState
    from batchgen.providers.grokimagine import ApiClient, Token

    throttle = Throttle(rpm, window=60 / k, margin=MARGIN)
    loop = asyncio.get_running_loop()
    first: list[float] = []

    async def call(request: Any) -> Any:
        while True:
            async with throttle.slot():
                with contextlib.suppress(TransientApiError):  # 429s pause the throttle
                    return await request()

    async def one(api: ApiClient, i: int) -> float:
        prompt = f"Baseline task {i}, soft light, shallow depth of field"
        spec = JobSpec(key=f"b{i}", row=i + 2, prompt=prompt, mode="normal", ratio="1:1")
        task_id = await call(lambda: api.submit(spec))
        first.append(loop.time())
        while True:
            await asyncio.sleep(BASELINE_POLL / k)
            status = await call(lambda: api.status(task_id))
            if status.state is not TaskState.WAITING:
                return loop.time()

    async with ApiClient(url, Token(token), on_response=throttle.observe) as api:
        if sequential:
            ends = [await one(api, i) for i in range(n)]
        else:
            ends = await asyncio.gather(*(one(api, i) for i in range(n)))
    return max(ends) - min(first), max(first) - min(first)


def run_baseline(
    bench: Bench,
    name: str,
    n: int,
    *,
    rpm: int,
    k: int,
    sequential: bool,
    seed: int | None = None,
) -> Row:
    """A baseline through the same throttle, against its own simulator."""
    row = Row(name=name, n=n, k=k, rpm=rpm)
    folder = bench.folder(name)
    bench.log(f"{name}: N={n}, k={k}, {rpm}/60s")
    sim_args = compressed_sim_args(rpm, k, bench.seed if seed is None else seed)
    with SimProcess(sim_args, bench.token, folder / "sim.log") as sim:
        row.makespan, row.submit_span = asyncio.run(
            _baseline(sim.url, bench.token, n, rpm=rpm, k=k, sequential=sequential)
        )
        stats = sim.stats()
    sim_figures(row, stats, per_second=rpm * k / 60)
    row.completed = sum(1 for t in stats["tasks"].values() if t["final_status"] == "completed")
    row.note = "no state, no downloads"
    return row


def run_peer_baseline(
    bench: Bench, name: str, n: int, *, rpm: int, k: int, seed: int | None = None
) -> Row:
    """The independent peer (``peer_runner.py``, beside this file) against its own
    simulator."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from peer_runner import run_peer

    row = Row(name=name, n=n, k=k, rpm=rpm)
    folder = bench.folder(name)
    bench.log(f"{name}: N={n}, k={k}, {rpm}/60s")
    sim_args = compressed_sim_args(rpm, k, bench.seed if seed is None else seed)
    prompts = [f"Peer task {i}, soft light, shallow depth of field" for i in range(n)]
    with SimProcess(sim_args, bench.token, folder / "sim.log") as sim:
        peer = asyncio.run(run_peer(sim.url, bench.token, prompts, rpm=rpm, k=k))
        stats = sim.stats()
    row.makespan, row.submit_span = peer.makespan, peer.submit_span
    sim_figures(row, stats, per_second=rpm * k / 60)
    row.completed = peer.done
    row.note = f"aiohttp + aiolimiter, no state; 429s met: {peer.rate_limited}"
    return row


def run_instant(bench: Bench, n: int, name: str, *, noop: bool = True) -> tuple[Row, ...]:
    """Runner CPU and RSS on ``n`` rows against an instant simulator with no practical limit,
    then (``noop``) a no-op re-run of the finished manifest (which must send nothing)."""
    folder = bench.folder(name)
    manifest = write_manifest(folder / "bench.csv", n, name)
    bench.log(f"{name}: N={n}, instant simulator, no limit")
    rows: tuple[Row, ...] = (Row(f"{name}: instant, no limit", n, 1, 0),)
    if noop:
        rows += (Row(f"{name}: no-op re-run", n, 1, 0),)
    with SimProcess(INSTANT, bench.token, folder / "sim.log") as sim:
        args = [
            *("run", manifest.name, "--out", "out", "--base-url", sim.url, "-q"),
            *("--rpm", "1000000000", "--first-poll", "0.01s", "--no-progress"),
        ]
        for row in rows:
            before = sim.stats(tasks=False)["requests"]
            with (folder / "runner.log").open("a") as log:
                usage = run_child(
                    [sys.executable, "-m", "batchgen", *args],
                    env=bench.env(folder / "home"),
                    cwd=folder,
                    log=log,
                )
            after = sim.stats(tasks=False)["requests"]
            row.requests = sum(after.get(e, 0) - before.get(e, 0) for e in ("generate", "status"))
            row.cpu, row.wall, row.rss = usage.cpu, usage.wall, usage.max_rss_mb
            state = folder / "out" / "bench" / "state.sqlite"
            state_figures(row, state)
            row.note = instant_note(usage, last_update(state) if row.requests else None)
    return rows


def marginal_cpu(small: Row, big: Row) -> Row:
    """CPU per further 1,000 tasks: the slope between two instant runs (start-up, imports and
    the fixed part of writing the results drop out)."""
    per_thousand = (big.cpu - small.cpu) / ((big.n - small.n) / 1000)
    row = Row(f"overhead: each further 1,000 tasks ({small.n:,} -> {big.n:,})", 1000, 1, 0)
    row.completed, row.requests = 1000, round(1000 * big.requests / max(big.completed, 1))
    row.cpu, row.wall = per_thousand, (big.wall - small.wall) / ((big.n - small.n) / 1000)
    row.note = f"{big.n:,} tasks: {big.note}"
    return row


def last_update(state: Path) -> float:
    """Unix time of the state's last row change (the end of the dispatch)."""
    with contextlib.closing(sqlite3.connect(f"file:{state}?mode=ro", uri=True)) as db:
        (last,) = db.execute("SELECT max(updated_at) FROM jobs").fetchone()
    return dt.datetime.fromisoformat(last).timestamp()


def instant_note(usage: ChildUsage, dispatch_end: float | None) -> str:
    """Wall time, CPU split and peak RSS (and the peak before the results were written)."""
    note = (
        f"wall {usage.wall:.1f} s (user {usage.user:.1f} + sys {usage.system:.1f} s CPU), "
        f"peak RSS {usage.max_rss_mb:.0f} MB"
    )
    if dispatch_end is not None:
        note += f" ({usage.peak_until(dispatch_end):.0f} MB until the last row was done)"
    if usage.exit_code != 0:
        note += f", exit {usage.exit_code}"
    return note


def build_done_state(folder: Path, n: int) -> Path:
    """A manifest of ``n`` rows in ``folder`` and, beside it, the state a finished run of it
    leaves (every row downloaded, one video each), built in about a minute instead of the
    twelve a real 100,000-row run takes: the manifest is synced by batchgen's own code, then
    every row is moved to ``downloaded`` in one SQL statement, with task ids, files and
    times (one second apart, as a run's commit groups leave them). No video is written: a
    no-op re-run opens none. Returns the manifest's path."""
    from batchgen.manifest.load import read_manifest
    from batchgen.state.location import state_path_for
    from batchgen.state.store import StateStore

    manifest = write_manifest(folder / "bench.csv", n, "noop")
    state = state_path_for(folder / "out", manifest)
    state.parent.mkdir(parents=True, exist_ok=True)
    parsed = read_manifest(manifest)
    with StateStore.open(state, manifest=manifest) as store:
        store.sync_manifest(parsed.columns, parsed.rows)
    stamp = "strftime('%Y-%m-%dT%H:%M:%S', 'now', '-1 day', '+' || (row_num + {}) || ' seconds')"
    with contextlib.closing(sqlite3.connect(state)) as db, db:
        db.execute(
            "UPDATE jobs SET status = 'downloaded', task_id = 'task_' || row_num, attempts = 1, "
            "consumed_credits = price, video_urls = json_array('https://cdn.invalid/' || "
            "row_num || '/1.mp4'), files = json_array('videos/' || replace(key, ':', '_') || "
            "'_1.mp4'), file_sizes = '[2236]', "
            f"submitted_at = {stamp.format(0)} || '.000000+00:00', "
            f"completed_at = {stamp.format(1)} || '.000000+00:00', "
            f"updated_at = {stamp.format(2)} || '.000000+00:00'"
        )
    return manifest


def run_noop(bench: Bench, n: int, *, times: int = 3) -> list[Row]:
    """The no-op re-run of a finished ``n``-row manifest (:func:`build_done_state`), timed
    ``times`` times, without the twelve minutes of a real run first. The first run over the
    built state (not counted) records its rows and writes its results, as the real run's end
    would. With ``--keep`` a folder that already holds one is reused as it is (the simulator
    then has a new address: ``--rebind-base-url``, one line of the state's meta)."""
    folder = bench.work / f"noop_{n}"
    manifest = folder / "bench.csv"
    reuse = (folder / "out").is_dir()
    if not reuse:
        folder.mkdir(parents=True, exist_ok=True)
        bench.log(f"noop: building a done state of {n:,} rows")
        build_done_state(folder, n)
    rows = [Row(f"no-op re-run of {n:,} done rows, run {i + 1}", n, 1, 0) for i in range(times)]
    with SimProcess(INSTANT, bench.token, folder / "sim.log") as sim:
        args = [
            sys.executable,
            *("-m", "batchgen", "run", manifest.name, "--out", "out", "--base-url", sim.url),
            *("-q", "--rpm", "1000000000", "--first-poll", "0.01s", "--no-progress"),
            "--rebind-base-url",
        ]
        with (folder / "runner.log").open("a") as log:
            if not reuse:
                bench.log("noop: the first run over it (records the rows, writes the results)")
                run_child(args, env=bench.env(folder / "home"), cwd=folder, log=log)
            for row in rows:
                bench.log(f"noop: {row.name}")
                before = sim.stats(tasks=False)["requests"]
                usage = run_child(args, env=bench.env(folder / "home"), cwd=folder, log=log)
                after = sim.stats(tasks=False)["requests"]
                row.requests = sum(after.get(e, 0) - before.get(e, 0) for e in after)
                row.cpu, row.wall, row.rss = usage.cpu, usage.wall, usage.max_rss_mb
                state_figures(row, folder / "out" / "bench" / "state.sqlite")
                row.note = instant_note(usage, None)
    return rows


# --------------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class Plan:
    """Sizes and targets of one invocation."""

    n: int = 1000  # rows per tier
    target: float = 20.0  # wall seconds of expected LB per scenario
    max_wall: float = 50.0  # ... at most, where the runner's submit capacity binds
    adapt_n: int = 300
    fixed_n: int = 200
    sequential_n: int = 10
    overhead_n: int = 1000
    scale_n: int = 100_000
    xai_sizes: tuple[int, ...] = XAI_SIZES  # rows of the xAI cells (1 request per second)
    #: Where the server's limit is binding (adaptation), its X-RateLimit-Reset header counts
    #: whole seconds: the compressed window is at least this long so that rounding stays small.
    adapt_min_window: float = 6.0
    #: Wall requests per second the compression may ask (``choose_k``'s ``max_rate``).
    max_rate: float = MAX_RATE

    def smoke(self) -> Plan:
        """The same scenarios on a few rows, about a second of compressed time each."""
        return dataclasses.replace(
            self,
            n=max(3, self.n // 100),
            target=1.0,
            max_wall=2.0,
            adapt_n=max(3, self.adapt_n // 100),
            fixed_n=max(3, self.fixed_n // 100),
            sequential_n=1,
            overhead_n=max(10, self.overhead_n // 100),
            scale_n=max(50, self.scale_n // 1000),
            xai_sizes=(3,),
            adapt_min_window=1.0,
            # a few rows send a few dozen requests whatever the compression: the cap on the
            # request rate, meant for a thousand rows, would stretch the enterprise tier's
            # few latencies over 20 s of the test suite's time
            max_rate=20 * MAX_RATE,
        )


PLANS = {
    "full": Plan(),
    "quick": Plan(n=300, target=10.0, max_wall=25.0, adapt_n=100, fixed_n=100, sequential_n=4),
}


def run_all(bench: Bench, plan: Plan, *, scale: bool) -> list[Row]:
    """Every scenario, in table order."""
    rows = []
    for tier, rpm in TIERS.items():
        k = choose_k(
            plan.n, rpm, target=plan.target, max_wall=plan.max_wall, max_rate=plan.max_rate
        )
        rows.append(run_tier(bench, tier, plan.n, client_rpm=rpm, server_rpm=rpm, k=k))
    free, pro = TIERS["free"], TIERS["pro"]
    k = choose_k(
        plan.adapt_n,
        free,
        target=plan.target,
        max_wall=plan.max_wall,
        max_rate=plan.max_rate,
        min_window=plan.adapt_min_window,
    )
    name = "adapt: client pro, server free"
    rows.append(run_tier(bench, name, plan.adapt_n, client_rpm=pro, server_rpm=free, k=k))
    for tier in ("free", "pro"):
        rpm = TIERS[tier]
        k = choose_k(plan.fixed_n, rpm, target=plan.target, max_rate=plan.max_rate, runner=False)
        name = f"baseline: fixed 5 s poll, {tier}"
        rows.append(run_baseline(bench, name, plan.fixed_n, rpm=rpm, k=k, sequential=False))
        name = f"baseline: peer (aiohttp + aiolimiter), {tier}"
        rows.append(run_peer_baseline(bench, name, plan.fixed_n, rpm=rpm, k=k))
    k = sequential_k(plan.sequential_n, target=plan.target / 2)
    name = "baseline: sequential, free"
    rows.append(run_baseline(bench, name, plan.sequential_n, rpm=free, k=k, sequential=True))
    for n in plan.xai_sizes:
        rows.append(run_xai(bench, n, k=xai_k(n, target=plan.target)))
    rows.extend(run_overhead(bench, plan, scale=scale))
    return rows


def run_overhead(bench: Bench, plan: Plan, *, scale: bool) -> list[Row]:
    """The instant-simulator rows: ``overhead_n`` tasks and its no-op re-run, the CPU of each
    further 1,000 tasks (the slope up to 4 x ``overhead_n``), and (``scale``) ``scale_n``."""
    rows = list(run_instant(bench, plan.overhead_n, "overhead"))
    bigger = run_instant(bench, 4 * plan.overhead_n, "overhead 4x", noop=False)[0]
    rows.append(marginal_cpu(rows[0], bigger))
    if scale:
        rows.extend(run_instant(bench, plan.scale_n, "scale"))
    return rows


# --------------------------------------------------------------------------- the grid
GRID_SIZES = (10, 30, 100, 300, 1000)
GRID_SEEDS = (1, 2, 3)
GRID_TARGET = 5.0  # wall seconds of expected LB per cell
GRID_MAX_WALL = 50.0
GRID_SUBMIT_SHARE = 0.05
GRID_MIN_WINDOW = 2.0  # wall seconds: a free-tier N=1000 cell then asks 50 requests/s
GRID_WORKERS = 4  # cells run at once (most of a cell's time is waiting for latencies)
GRID_FIXED_MAX_N = 100  # the fixed 5 s poller runs up to this size
GRID_SEQUENTIAL_N = 10  # and the sequential loop at this size only, with the first seed
HEAVY_RATE = 150.0  # wall requests per second above which a cell runs alone


@dataclass
class Cell:
    """One (tier, N) of the grid: the runner on every seed, and the baselines that ran."""

    tier: str
    n: int
    k: int
    runs: list[Row] = field(default_factory=list)
    fixed: list[Row] = field(default_factory=list)
    peers: list[Row] = field(default_factory=list)  # the independent peer, seed by seed
    sequential: Row | None = None

    def worst(self) -> Row:
        """The seed with the largest makespan / LB."""
        return max(self.runs, key=lambda r: r.makespan / r.lb if r.lb > 0 else math.inf)

    def pairs(self, baselines: Sequence[Row] | None = None) -> list[tuple[Row, Row]]:
        """(runner, baseline) on the same seed (default baseline: the fixed poller)."""
        return list(zip(self.runs, self.fixed if baselines is None else baselines, strict=False))

    def ahead_of(self, baselines: Sequence[Row]) -> str:
        """``yes`` when the runner's makespan / LB is below the baseline's on every seed,
        else by how much it is behind on the worst seed."""
        raw = max(r.makespan / r.lb - b.makespan / b.lb for r, b in self.pairs(baselines))
        return "yes" if raw < 0 else f"no ({raw:+.3f})"

    def ratios(self, rows: Sequence[Row]) -> str:
        """Makespan / LB of each seed, e.g. ``1.02 1.04 1.01``."""
        return " ".join(f"{r.makespan / r.lb:.2f}" if r.lb > 0 else "-" for r in rows)

    def cells(self) -> list[str]:
        """The grid table's cells for this (tier, N)."""
        worst = self.worst()
        per_task = max(r.requests / r.completed if r.completed else math.inf for r in self.runs)
        ahead = "-"
        if self.fixed:
            raw = max(r.makespan / r.lb - f.makespan / f.lb for r, f in self.pairs())
            own = max(r.makespan / r.given - f.makespan / f.given for r, f in self.pairs())
            ahead = f"{'yes' if raw < 0 else f'no ({raw:+.3f})'}; polling {own:+.3f}"
        seq = self.sequential
        return [
            self.tier,
            str(self.n),
            str(self.k),
            f"{sum(r.completed for r in self.runs)}/{self.n * len(self.runs)}",
            self.ratios(self.runs),
            f"**{worst.makespan / worst.lb:.3f}**",
            f"{per_task:.2f}",
            str(sum(r.rate_limited for r in self.runs)),
            f"{max(r.peak / r.rpm for r in self.runs):.2f}",
            self.ratios(self.fixed) or "-",
            "-"
            if not self.fixed
            else f"{max(f.requests / max(f.completed, 1) for f in self.fixed):.2f}",
            ahead,
            "-" if seq is None else f"{seq.makespan / seq.lb:.2f}",
            f"{max(r.makespan / r.given for r in self.runs):.3f}",
            f"{max(r.cpu for r in self.runs):.1f}",
            self.ratios(self.peers) or "-",
            str(sum(p.rate_limited for p in self.peers)) if self.peers else "-",
            self.ahead_of(self.peers) if self.peers else "-",
        ]


GRID_HEADER = [
    "tier",
    "N",
    "k",
    "done",
    "makespan/LB per seed",
    "worst",
    "req/task (worst)",
    "429s",
    "window/R",
    "fixed 5 s poller",
    "its req/task",
    "ahead of it (makespan/LB; vs own submits, worst seed)",
    "sequential",
    "vs own submits",
    "runner CPU s",
    "peer (aiohttp + aiolimiter)",
    "its 429s",
    "ahead of the peer",
]


def format_grid(cells: Sequence[Cell]) -> str:
    """The grid as a Markdown table, then the worst cell per tier."""
    lines = [GRID_HEADER, ["---"] * len(GRID_HEADER), *(c.cells() for c in cells)]
    table = "\n".join("| " + " | ".join(row) + " |" for row in lines)
    worst = []
    for tier in TIERS:
        mine = [c for c in cells if c.tier == tier]
        if mine:
            cell = max(mine, key=lambda c: c.worst().makespan / c.worst().lb)
            row = cell.worst()
            worst.append(f"{tier}: N={cell.n}, makespan/LB {row.makespan / row.lb:.3f}")
    return table + "\n\nworst cell per tier: " + "; ".join(worst)


def grid_k(
    n: int, rpm: int, *, target: float = GRID_TARGET, max_wall: float = GRID_MAX_WALL
) -> int:
    """The compression of a grid cell (its baselines use the same, so the seeds draw the same
    latencies for both): about ``GRID_TARGET`` wall seconds of expected LB, but the runner's
    first burst of submits (fsync'd, at ``submit_capacity``: compression cannot shorten it) at
    most ``GRID_SUBMIT_SHARE`` of the LB unless that takes over ``GRID_MAX_WALL``;
    no more requests per wall second than ``MAX_RATE`` (a cell asks for at most about 10
    requests per task per minute) and a rate window of at least ``GRID_MIN_WINDOW``."""
    expected = max(2 * n * 60 / rpm, expected_max_latency(n))
    k = expected / target
    burst = min(n, rpm)  # the submits the first window carries at once
    k = min(k, GRID_SUBMIT_SHARE * expected * submit_capacity(rpm) / burst)
    k = max(k, expected / max_wall)
    k = min(k, MAX_RATE * 60 / min(rpm, 10 * n), 60.0 / GRID_MIN_WINDOW)
    return max(1, int(k))


def run_grid(
    bench: Bench,
    sizes: Sequence[int],
    seeds: Sequence[int],
    tiers: Sequence[str] = tuple(TIERS),
    *,
    target: float = GRID_TARGET,
    max_wall: float = GRID_MAX_WALL,
) -> list[Cell]:
    """Every (tier, N, seed), about ``target`` wall seconds of expected LB each (at most
    ``max_wall``); cells whose request rate is heavy for 2 cores run one at a time, the others
    ``GRID_WORKERS`` at a time."""
    from concurrent.futures import ThreadPoolExecutor

    cells = [
        Cell(t, n, grid_k(n, TIERS[t], target=target, max_wall=max_wall))
        for t in tiers
        for n in sizes
    ]
    jobs: list[tuple[float, float, Any]] = []
    for cell in cells:
        rpm = TIERS[cell.tier]
        rate = min(rpm, 10 * cell.n) * cell.k / 60  # wall requests per second, at most
        wall = max(2 * cell.n * 60 / rpm, expected_max_latency(cell.n)) / cell.k
        for seed in seeds:
            name = f"grid {cell.tier} N={cell.n} seed {seed}"

            def runner(cell: Cell = cell, name: str = name, seed: int = seed) -> None:
                rpm = TIERS[cell.tier]
                cell.runs.append(
                    run_tier(
                        bench, name, cell.n, client_rpm=rpm, server_rpm=rpm, k=cell.k, seed=seed
                    )
                )

            jobs.append((wall, rate, runner))
            if cell.n <= GRID_FIXED_MAX_N:

                def fixed(cell: Cell = cell, name: str = name, seed: int = seed) -> None:
                    cell.fixed.append(
                        run_baseline(
                            bench,
                            name + " fixed 5 s",
                            cell.n,
                            rpm=TIERS[cell.tier],
                            k=cell.k,
                            sequential=False,
                            seed=seed,
                        )
                    )

                jobs.append((wall, rate, fixed))

                def peer(cell: Cell = cell, name: str = name, seed: int = seed) -> None:
                    cell.peers.append(
                        run_peer_baseline(
                            bench, name + " peer", cell.n, rpm=TIERS[cell.tier], k=cell.k, seed=seed
                        )
                    )

                jobs.append((wall, rate, peer))
        if cell.n == GRID_SEQUENTIAL_N:
            k = sequential_k(cell.n, target=2 * target)

            def sequential(cell: Cell = cell, k: int = k) -> None:
                name = f"grid {cell.tier} N={cell.n} sequential"
                cell.sequential = run_baseline(
                    bench, name, cell.n, rpm=TIERS[cell.tier], k=k, sequential=True, seed=seeds[0]
                )

            jobs.append((cell.n * MEDIAN * 1.2 / k, 0.0, sequential))
    # Longest first, GRID_WORKERS at a time; at most one heavy cell (many requests per wall
    # second) at a time, so that two of them do not starve each other of CPU.
    heavy = threading.Semaphore(1)

    def run(rate: float, job: Any) -> None:
        with heavy if rate > HEAVY_RATE else contextlib.nullcontext():
            job()

    jobs.sort(key=lambda item: -item[0])
    with ThreadPoolExecutor(max_workers=GRID_WORKERS) as pool:
        for future in [pool.submit(run, rate, job) for _, rate, job in jobs]:
            future.result()
    for cell in cells:  # seeds in order, whatever order the pool finished them in
        cell.runs.sort(key=lambda r: r.name)
        cell.fixed.sort(key=lambda r: r.name)
        cell.peers.sort(key=lambda r: r.name)
    return cells


def machine() -> str:
    """Date, cores and CPU model, for the table's caption."""
    model = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as info:
        model = next(
            (ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")), model
        )
    return (
        f"{dt.date.today().isoformat()}, {os.cpu_count()} cores ({model}), "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Parse options, run the scenarios, print the table."""
    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rows (about 2.5 minutes)")
    parser.add_argument("--scale", action="store_true", help="add the 100,000-row run")
    parser.add_argument(
        "--overhead",
        action="store_true",
        help="only the instant-simulator rows (runner CPU and memory; with --scale, the big run)",
    )
    parser.add_argument(
        "--noop",
        action="store_true",
        help="only the no-op re-run of a finished 100,000-row manifest, from a state built "
        "in SQL (about 2 minutes; with --keep, a kept one is reused)",
    )
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument("--seed", type=int, default=7, help="the simulator's seed")
    parser.add_argument(
        "--grid", action="store_true", help="N x tier x 3 seeds, cold starts (under 10 min)"
    )
    parser.add_argument("--sizes", help="with --grid: comma-separated N (default 10,...,1000)")
    parser.add_argument("--seeds", help="with --grid: comma-separated seeds (default 1,2,3)")
    parser.add_argument("--tiers", help="with --grid: comma-separated tiers (default all)")
    parser.add_argument(
        "--smoke", action="store_true", help="a few rows per scenario: checks every path runs"
    )
    parser.add_argument(
        "--xai", action="store_true", help="only the xAI cells (1 request/s, N = 10 and 100)"
    )
    ns = parser.parse_args(args)
    plan = PLANS["quick" if ns.quick else "full"]
    if ns.smoke:
        plan = plan.smoke()
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        work = ns.keep or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        bench = Bench(work=work.resolve(), seed=ns.seed)
        if ns.grid:
            sizes = [int(x) for x in ns.sizes.split(",")] if ns.sizes else GRID_SIZES
            seeds = [int(x) for x in ns.seeds.split(",")] if ns.seeds else GRID_SEEDS
            tiers = ns.tiers.split(",") if ns.tiers else list(TIERS)
            target, max_wall = (1.0, 2.0) if ns.smoke else (GRID_TARGET, GRID_MAX_WALL)
            cells = run_grid(bench, sizes, seeds, tiers, target=target, max_wall=max_wall)
        elif ns.noop:
            rows = run_noop(bench, plan.scale_n)
        elif ns.xai:
            rows = [run_xai(bench, n, k=xai_k(n, target=plan.target)) for n in plan.xai_sizes]
        else:
            rows = (run_overhead if ns.overhead else run_all)(bench, plan, scale=ns.scale)
    print(f"batchgen run benchmark: {machine()}; total {time.monotonic() - started:.0f} s\n")
    print(format_grid(cells) if ns.grid else format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
