"""The benchmark's pure helpers (``benchmarks/bench_run.py``), so its arithmetic stays right."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest
from helpers.paths import REPO

BENCH = REPO / "benchmarks" / "bench_run.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_run", module)
    spec.loader.exec_module(module)
    return module


def test_lower_bound_is_the_largest_of_its_three_terms(bench: ModuleType) -> None:
    # 10 tasks at 1 request/s: the request budget binds (2N/R = 20 s).
    assert bench.lower_bound(10, 1.0, [1.0, 2.0, 3.0]) == 20.0
    # the last submit (N/R = 10 s) plus the shortest latency binds
    assert bench.lower_bound(10, 1.0, [11.0, 12.0]) == 21.0
    # one slow task binds
    assert bench.lower_bound(10, 1.0, [1.0, 50.0]) == 50.0
    assert bench.lower_bound(0, 1.0, []) == 0.0
    # Variant: a limit of 2 per window (2 s here): the 3rd task cannot be created before 2 s,
    # so its 50 s latency ends the run no sooner than 52 s.
    assert bench.lower_bound(3, 1.0, [1.0, 1.0, 50.0], limit=2) == 52.0
    assert bench.lower_bound(3, 1.0, [50.0, 1.0, 1.0], limit=2) == 50.0


def test_largest_window_counts_a_half_open_interval(bench: ModuleType) -> None:
    times = [0.0, 0.5, 1.0, 1.2, 3.0]
    assert bench.largest_window(times, 1.0) == 3  # 0.5, 1.0, 1.2
    assert bench.largest_window([0.0, 1.0], 1.0) == 1  # exactly one window apart
    assert bench.largest_window([], 1.0) == 0


def test_choose_k_respects_the_target_and_the_rate_cap(bench: ModuleType) -> None:
    # free tier, 1000 tasks: LB is 2N/R = 1200 s; a 30 s target compresses 40 times
    assert bench.choose_k(1000, 100, target=30.0) == 40
    # enterprise: the latency tail binds, but the machine caps the request rate
    k = bench.choose_k(1000, 5000, target=10.0, max_rate=250.0)
    assert k == 3 and 5000 * k / 60 <= 250.0
    assert bench.choose_k(1000, 100, target=30.0, min_window=6.0) == 10
    assert bench.choose_k(1, 100, target=1e9) == 1


def test_expected_max_latency_grows_with_n(bench: ModuleType) -> None:
    assert bench.expected_max_latency(1) == pytest.approx(60.0)
    assert 250 < bench.expected_max_latency(1000) < 350


def test_table_rows(bench: ModuleType) -> None:
    row = bench.Row(name="free", n=10, k=40, rpm=100, makespan=33.0, lb=30.0)
    row.requests, row.completed, row.peak = 21, 10, 91
    cells = dict(zip(bench.HEADER, row.cells(), strict=True))
    assert cells["makespan/LB"] == "1.100"
    assert cells["req/task"] == "2.10"
    assert cells["window/R"] == "0.91"
    assert cells["makespan min"] == "22.0"
    untimed = bench.Row(name="overhead", n=10, k=1, rpm=0, cpu=1.0, wall=2.0)
    cells = dict(zip(bench.HEADER, untimed.cells(), strict=True))
    assert cells["makespan/LB"] == "-" and cells["CPU/wall"] == "50%"
    assert math.isnan(untimed.lb)
    assert bench.format_table([row, untimed]).count("\n") == 3


def test_manifest_rows_have_distinct_prompts(bench: ModuleType, tmp_path: Path) -> None:
    path = bench.write_manifest(tmp_path / "m.csv", 5, "t")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "id,prompt,mode,ratio"
    assert len({line.split(",")[1] for line in lines[1:]}) == 5


def test_marginal_cpu_is_the_slope_between_two_sizes(bench: ModuleType) -> None:
    small = bench.Row(name="a", n=1000, k=1, rpm=0, cpu=3.0, wall=4.0)
    big = bench.Row(name="b", n=4000, k=1, rpm=0, cpu=9.0, wall=13.0)
    big.requests, big.completed = 8000, 4000
    row = bench.marginal_cpu(small, big)
    assert (row.cpu, row.wall, row.requests) == (2.0, 3.0, 2000)  # start-up drops out


def test_the_runner_gets_every_duration_compressed(bench: ModuleType) -> None:
    argv = bench.runner_argv(10, ["run", "m.csv"])
    assert argv[1:5] == ["-m", "batchgen", "run", "m.csv"]
    assert "--rate-window=6.000000s" in argv and "--first-poll=0.500000s" in argv
    assert "--max-poll-lag=60.000000s" in argv
