"""The benchmarks: ``bench_run.py``'s pure helpers, so its arithmetic stays right, and every
path of every benchmark run on a tiny size, so that none breaks silently."""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
import subprocess
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


# --------------------------------------------------------------------------- every path runs
# Each benchmark, every path of it, as documented (``python benchmarks/<name>.py ...``) on a
# tiny size: a renamed option or a changed default fails here, not on the night the figures
# are needed (the overhead step once passed ``--first-poll 0.01`` after durations needed a
# unit, and the documented benchmark crashed).
BENCHMARKS = BENCH.parent


def _bench(script: str, *args: str, cwd: Path) -> str:
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def _table(stdout: str) -> dict[str, list[str]]:
    """The Markdown table's rows by their first cell (header and rule left out)."""
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in stdout.splitlines()
        if line.startswith("|")
    ]
    return {row[0]: row for row in rows[2:]}


def _all_done(done: str) -> bool:
    finished, total = done.split("/")
    return int(total) > 0 and finished == total


RUN_SCENARIOS = {
    "free",
    "pro",
    "enterprise",
    "adapt: client pro, server free",
    "baseline: fixed 5 s poll, free",
    "baseline: fixed 5 s poll, pro",
    "baseline: peer (aiohttp + aiolimiter), free",
    "baseline: peer (aiohttp + aiolimiter), pro",
    "baseline: sequential, free",
    "overhead: instant, no limit",
    "overhead: no-op re-run",
    "xai: 1 request/s, N=3",  # the xAI cells, at the smoke's size
}


@pytest.mark.e2e
@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("args", "extra"),
    [
        ((), set()),
        (("--quick", "--scale"), {"scale: instant, no limit", "scale: no-op re-run"}),
    ],
    ids=["default", "quick-scale"],
)
def test_bench_run_every_scenario_runs(
    args: tuple[str, ...], extra: set[str], tmp_path: Path
) -> None:
    table = _table(_bench("bench_run.py", "--smoke", *args, cwd=tmp_path))
    slope = [name for name in table if name.startswith("overhead: each further 1,000")]
    assert set(table) - set(slope) == RUN_SCENARIOS | extra and len(slope) == 1
    for name, cells in table.items():
        assert _all_done(cells[1]), (name, cells)
        assert "exit" not in cells[-1], (name, cells)  # the runner's exit code, when not 0
        assert cells[10] != "-" or name.startswith("baseline"), (name, cells)  # runner CPU


OVERHEAD_SCENARIOS = {"overhead: instant, no limit", "overhead: no-op re-run"}


@pytest.mark.e2e
@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ("--overhead", "--scale"),
            OVERHEAD_SCENARIOS | {"scale: instant, no limit", "scale: no-op re-run"},
        ),
        (("--xai",), {"xai: 1 request/s, N=3"}),
    ],
    ids=["overhead-scale", "xai"],
)
def test_bench_run_each_part_runs_alone(
    args: tuple[str, ...], expected: set[str], tmp_path: Path
) -> None:
    table = _table(_bench("bench_run.py", "--smoke", *args, cwd=tmp_path))
    slope = [name for name in table if name.startswith("overhead: each further 1,000")]
    assert set(table) - set(slope) == expected
    assert len(slope) == (1 if "--overhead" in args else 0)
    for name, cells in table.items():
        assert _all_done(cells[1]), (name, cells)
        assert "exit" not in cells[-1], (name, cells)
        assert cells[10] != "-", (name, cells)  # the runner's CPU


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_bench_run_noop_builds_a_done_state_then_reuses_it(tmp_path: Path) -> None:
    keep = tmp_path / "kept"
    names = {f"no-op re-run of 100 done rows, run {i}" for i in (1, 2, 3)}
    for _ in range(2):  # built the first time, reused as kept the second
        table = _table(
            _bench("bench_run.py", "--smoke", "--noop", "--keep", str(keep), cwd=tmp_path)
        )
        assert set(table) == names
        for name, cells in table.items():
            assert cells[1] == "100/100" and cells[6] == "0.00", (name, cells)  # sent nothing
            assert "exit" not in cells[-1] and cells[10] != "-", (name, cells)
    assert len(list(keep.glob("noop_*/bench.csv"))) == 1


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_bench_run_grid_runs_the_runner_and_every_baseline(tmp_path: Path) -> None:
    out = _bench(
        "bench_run.py",
        "--smoke",
        "--grid",
        "--sizes",
        "10",
        "--seeds",
        "1",
        "--tiers",
        "free",
        cwd=tmp_path,
    )
    (cells,) = _table(out).values()
    assert cells[:2] == ["free", "10"] and _all_done(cells[3])
    assert cells[9] != "-" and cells[12] != "-"  # the fixed poller and the sequential loop ran
    assert cells[15] != "-" and cells[16].isdigit()  # the peer ran, its 429s counted
    assert "worst cell per tier: free: N=10" in out


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_bench_shared_every_scenario_runs(tmp_path: Path) -> None:
    table = _table(_bench("bench_shared.py", "--smoke", cwd=tmp_path))
    overheads = {
        f"overhead: {procs} process(es), limiter {limiter}"
        for procs, limiter in ((1, "none"), (1, "local"), (2, "none"), (2, "local"), (2, "redis"))
    }
    assert set(table) == {"free, 2 processes", "free, 2 processes, redis"} | overheads
    for name, cells in table.items():
        assert _all_done(cells[1]), (name, cells)
        assert "exit" not in cells[-1], (name, cells)


@pytest.mark.e2e
def test_bench_manifest_reads_both_formats_and_both_xlsx_readers(tmp_path: Path) -> None:
    out = _bench("bench_manifest.py", "--rows", "30", cwd=tmp_path)
    kinds = [line.split(" 30 rows")[0] for line in out.splitlines()]
    assert kinds == ["csv", "xlsx", "xlsx (openpyxl alone)"]
    assert out.count("30 valid") == 3


@pytest.mark.e2e
def test_bench_results_writes_the_files_and_compares_the_engines(tmp_path: Path) -> None:
    figures = json.loads(_bench("bench_results.py", "30", cwd=tmp_path).split("\nwithin")[0])
    assert figures["rows"] == 30
    assert {"results.xlsx", "results.csv", "index.html"} <= set(figures["sizes_mb"])
    engines = [
        json.loads(line)
        for line in _bench("bench_results.py", "--engines", "30", cwd=tmp_path).splitlines()
    ]
    assert [e["engine"] for e in engines] == ["openpyxl", "xlsxwriter"]
    state = json.loads(_bench("bench_results.py", "--state", "30", cwd=tmp_path))
    assert state["rows"] == 30 and state["peak_rss_mb"] >= state["rss_with_the_state_open_mb"]
    assert state["write_cpu_s"] >= 0


@pytest.mark.e2e
def test_bench_sheets_validates_every_workbook(tmp_path: Path) -> None:
    out = _bench("bench_sheets.py", "--smoke", "--keep", str(tmp_path / "files"), cwd=tmp_path)
    verdicts = [line.split()[0] for line in out.splitlines() if not line.startswith(" ")]
    assert verdicts == ["formatted", "strings_bomb", "inline_bomb"]
    assert out.count("exit 0") == 3


@pytest.mark.e2e
@pytest.mark.browser
@pytest.mark.timeout(300)
def test_bench_gallery_writes_and_browses(tmp_path: Path) -> None:
    figures = json.loads(_bench("bench_gallery.py", "--smoke", cwd=tmp_path))
    assert figures["takes"] == 200 and figures["data_mb"] > 0 and figures["index_html_kb"] > 0
    if shutil.which("chromium") or shutil.which("chromium-browser"):  # as the browser tests
        assert figures["cards_built"] > 0 and {"open_to_cards_s", "search_s", "sort_s"} <= set(
            figures
        )
