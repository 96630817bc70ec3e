"""``batchgen run`` as cron runs it: a real subprocess against the in-process simulator.

Exit codes, the lock, budget, deadline, signals, SIGKILL-and-resume, heartbeat lines, status,
configuration precedence, the completion notice and a folder of manifests.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import random
import signal
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from helpers.cli_runner import (
    SIM_DEFAULTS as SIM_DEFAULTS,  # the make_sim fixture reads it
)
from helpers.cli_runner import (
    TOKEN,
    VIDEO_SIZE,
    Cli,
    assert_token_absent,
    nonzero,
    paid_per_prompt,
    store_of,
    wait_for,
    write_manifest,
)
from helpers.simulators import MakeSim

from batchgen.models import JobStatus
from batchgen.simulator import Fault


# ---------------------------------------------------------------- exit codes
async def test_exit_0_when_every_row_is_downloaded(make_sim: MakeSim, tmp_path: Path) -> None:
    sim = await make_sim()
    write_manifest(tmp_path / "briefs.csv", 6)
    result = await Cli(tmp_path, sim).run("run", "briefs.csv", "--rpm", "5000")
    assert result.code == 0, result.stderr
    out = tmp_path / "outputs" / "briefs"
    assert (out / "results.xlsx").exists() and (out / "results.csv").exists()
    assert (out / "index.html").exists()
    assert len(list((out / "videos").glob("*.mp4"))) >= 6
    assert "briefs.csv: 6 rows, 6 takes (downloaded 6)" in result.stderr
    assert_token_absent(tmp_path)


async def test_exit_1_when_a_row_is_invalid_and_the_rest_still_run(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    sim = await make_sim()
    write_manifest(tmp_path / "briefs.csv", 3, extra=[["bad", "a prompt", "fun", "4:3", "x"]])
    result = await Cli(tmp_path, sim).run("run", "briefs.csv", "--rpm", "5000")
    assert result.code == 1
    assert "row 5" in result.stderr and "ratio" in result.stderr
    with store_of(tmp_path, "briefs") as store:
        counts = store.counts()
    assert counts[JobStatus.DOWNLOADED] == 3 and counts[JobStatus.INVALID] == 1
    assert sim.stats.tasks_created == 3


async def test_exit_2_for_an_unreadable_manifest_and_nothing_sent(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    sim = await make_sim()
    (tmp_path / "broken.xlsx").write_bytes(b"this is not a spreadsheet")
    result = await Cli(tmp_path, sim).run("run", "broken.xlsx")
    assert result.code == 2
    assert "broken.xlsx" in result.stderr and "Traceback" not in result.stderr
    assert sum(sim.stats.requests.values()) == 0


async def test_exit_3_at_the_first_401_and_no_further_requests(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    sim = await make_sim()
    write_manifest(tmp_path / "briefs.csv", 20)
    result = await Cli(tmp_path, sim, token="sk-wrong").run("run", "briefs.csv", "--rpm", "5000")
    assert result.code == 3
    assert "GROKIMAGINE_API_TOKEN" in result.stderr and "sk-wrong" not in result.stderr
    assert "the API at 127.0.0.1:" in result.stderr  # which API refused it
    assert sim.stats.unauthorized == 1 and sum(sim.stats.requests.values()) == 1
    with store_of(tmp_path, "briefs") as store:
        assert store.counts()[JobStatus.PENDING] == 20  # nothing lost


async def test_exit_4_when_another_run_holds_the_manifest(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    sim = await make_sim(latency_median=3000.0)  # 30 s: the first run stays busy (SIGTERM ends it)
    write_manifest(tmp_path / "briefs.csv", 3)
    cli = Cli(tmp_path, sim)
    first = await cli.start("run", "briefs.csv")
    lock = tmp_path / "outputs" / "briefs" / "state.lock"
    await wait_for(lambda: lock.exists() and lock.read_text().strip() != "")
    second = await cli.run("run", "briefs.csv", limit=20)
    assert second.code == 4
    assert str(first.pid) in second.stderr
    first.send_signal(signal.SIGTERM)
    await first.communicate()


async def test_exit_5_at_the_budget_and_the_next_run_continues(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    sim = await make_sim()
    write_manifest(tmp_path / "briefs.csv", 8)
    cli = Cli(tmp_path, sim)
    first = await cli.run("run", "briefs.csv", "--rpm", "5000", "--max-credits", "120")
    assert first.code == 5, first.stderr
    assert sim.stats.tasks_created == 3 and "budget" in first.stderr
    second = await cli.run("run", "briefs.csv", "--rpm", "5000", "--max-usd", "2.00")
    assert second.code == 0, second.stderr
    assert sim.stats.tasks_created == 8
    assert set(paid_per_prompt(sim).values()) == {1}


async def test_budget_scope_total_counts_earlier_runs(make_sim: MakeSim, tmp_path: Path) -> None:
    sim = await make_sim()
    write_manifest(tmp_path / "briefs.csv", 6)
    cli = Cli(tmp_path, sim)
    await cli.run("run", "briefs.csv", "--rpm", "5000", "--max-credits", "80")
    assert sim.stats.tasks_created == 2
    again = await cli.run(
        "run", "briefs.csv", "--rpm", "5000", "--max-credits", "160", "--budget-scope", "total"
    )
    assert again.code == 5 and sim.stats.tasks_created == 4


async def test_exit_5_at_the_deadline_and_the_next_run_continues(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    # 10 requests a second, 40 rows: the deadline comes while rows still wait to be sent.
    sim = await make_sim(rpm=10, window=1.0, window_kind="sliding")
    write_manifest(tmp_path / "briefs.csv", 40)
    cli = Cli(tmp_path, sim)
    first = await cli.run(
        "run",
        "briefs.csv",
        "--rpm",
        "10",
        "--rate-window",
        "1s",
        "--max-runtime",
        "1s",
        "--grace",
        "5s",
    )
    assert first.code == 5, first.stderr
    assert "deadline" in first.stderr
    with store_of(tmp_path, "briefs") as store:
        counts = store.counts()
    assert counts.get(JobStatus.PENDING, 0) > 0
    assert counts.get(JobStatus.SUBMITTED, 0) == counts.get(JobStatus.RUNNING, 0) == 0
    created = sim.stats.tasks_created
    # The first window took 9 submits (10 less the margin); the submits queued for the next
    # window were due after the deadline and were not sent.
    assert 0 < created <= 9
    second = await cli.run("run", "briefs.csv", "--rpm", "100000")
    assert second.code == 0, second.stderr
    assert sim.stats.tasks_created == 40 and created < 40


# ---------------------------------------------------------------- signals and kills
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
async def test_a_signal_stops_cleanly_and_a_rerun_loses_nothing(
    make_sim: MakeSim, tmp_path: Path, signum: int, code: int
) -> None:
    sim = await make_sim(latency_median=50.0)
    write_manifest(tmp_path / "briefs.csv", 30)
    cli = Cli(tmp_path, sim)
    proc = await cli.start("run", "briefs.csv", "--rpm", "600")
    await wait_for(lambda: sim.stats.tasks_created >= 3)
    proc.send_signal(signum)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == code, err.decode()
    out = tmp_path / "outputs" / "briefs"
    assert (out / "results.xlsx").exists()  # the results were written on the way out
    again = await cli.run("run", "briefs.csv", "--rpm", "100000")
    assert again.code == 0, again.stderr
    assert set(paid_per_prompt(sim).values()) == {1}
    with store_of(tmp_path, "briefs") as store:
        assert nonzero(store.counts()) == {JobStatus.DOWNLOADED: 30}


async def test_sigkill_at_random_instants_then_resume(make_sim: MakeSim, tmp_path: Path) -> None:
    """The run is killed -9 five times; it still ends with every row done, paid once."""
    sim = await make_sim(latency_median=30.0, truncated=Fault(rate=0.1))
    write_manifest(tmp_path / "briefs.csv", 40)
    cli = Cli(tmp_path, sim)
    rng = random.Random(5)
    for _ in range(5):
        proc = await cli.start("run", "briefs.csv", "--rpm", "1200")
        await asyncio.sleep(rng.uniform(0.3, 1.5))  # the kill instant is what is random
        with contextlib.suppress(ProcessLookupError):  # it may have finished already
            proc.kill()
        await proc.wait()
    final = await cli.run("run", "briefs.csv", "--rpm", "100000")
    assert final.code in (0, 1), final.stderr
    if final.code == 1:  # a POST was in flight at a kill: reported, not resent
        final = await cli.run("run", "briefs.csv", "--rpm", "100000", "--resubmit-unknown")
    assert final.code == 0, final.stderr
    out = tmp_path / "outputs" / "briefs"
    with store_of(tmp_path, "briefs") as store:
        assert nonzero(store.counts()) == {JobStatus.DOWNLOADED: 40}
        assert store.integrity_ok()
        ambiguous = {
            a["key"] for a in store.attempts() if a["outcome"] in ("interrupted", "ambiguous")
        }
        jobs = {job.prompt: job for job in store.iter_jobs()}
        for job in jobs.values():
            for rel, size in zip(job.files, job.file_sizes, strict=True):
                assert (out / rel).stat().st_size == size == VIDEO_SIZE
    for prompt, paid in paid_per_prompt(sim).items():
        assert paid == 1 or jobs[prompt].key in ambiguous, prompt
    assert not list(out.rglob("*.part"))


# ---------------------------------------------------------------- logs, status, config
async def test_heartbeat_lines_and_no_progress_bars_when_not_a_terminal(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    sim = await make_sim(latency_median=100.0)
    write_manifest(tmp_path / "briefs.csv", 5)
    result = await Cli(tmp_path, sim).run(
        "run", "briefs.csv", "--rpm", "5000", "--heartbeat", "0.2s"
    )
    assert result.code == 0
    beats = [line for line in result.stderr.splitlines() if "progress: done" in line]
    assert beats and all("429s" in b and "credits" in b and "ETA" in b for b in beats)
    assert "\r" not in result.stderr
    log = next((tmp_path / "outputs" / "briefs" / "logs").glob("run-*.log")).read_text()
    assert "progress: done" in log and "\r" not in log and TOKEN not in log


async def test_status_reads_the_state_without_network(make_sim: MakeSim, tmp_path: Path) -> None:
    sim = await make_sim()
    write_manifest(tmp_path / "briefs.csv", 3, extra=[["bad", "p", "fun", "9:9", ""]])
    cli = Cli(tmp_path, sim)
    await cli.run("run", "briefs.csv", "--rpm", "5000")
    before = sum(sim.stats.requests.values())
    status = await cli.run("status", "briefs.csv")
    assert sum(sim.stats.requests.values()) == before
    assert status.code == 1
    assert "downloaded" in status.stdout and "invalid" in status.stdout
    assert "credits charged" in status.stdout and "120" in status.stdout
    assert "possibly charged" in status.stdout and "committed" in status.stdout
    assert "row 5 (id bad): invalid" in status.stdout and "last run" in status.stdout


async def test_config_file_values_apply_and_the_command_line_wins(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    sim = await make_sim()
    write_manifest(tmp_path / "briefs.csv", 6)
    (tmp_path / "batchgen.toml").write_text("rpm = 5000\nmax-credits = 80\n")
    cli = Cli(tmp_path, sim)
    first = await cli.run("run", "briefs.csv")
    assert first.code == 5 and sim.stats.tasks_created == 2
    second = await cli.run("run", "briefs.csv", "--max-credits", "120")
    assert second.code == 5 and sim.stats.tasks_created == 5


async def test_the_token_is_refused_in_the_config_file(make_sim: MakeSim, tmp_path: Path) -> None:
    sim = await make_sim()
    write_manifest(tmp_path / "briefs.csv", 1)
    secret = "sk-pasted-into-the-config"  # the user's file holds it; batchgen must not echo it
    (tmp_path / "batchgen.toml").write_text(f'token = "{secret}"\n')
    result = await Cli(tmp_path, sim).run("run", "briefs.csv")
    assert result.code == 2 and "token" in result.stderr and secret not in result.stderr


async def test_the_completion_notice_reaches_a_webhook(make_sim: MakeSim, tmp_path: Path) -> None:
    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook/T000/secret", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        sim = await make_sim()
        write_manifest(tmp_path / "briefs.csv", 2)
        url = f"http://127.0.0.1:{port}/hook/T000/secret"
        result = await Cli(tmp_path, sim).run(
            "run", "briefs.csv", "--rpm", "5000", "--notify-url", url
        )
    finally:
        await runner.cleanup()
    assert result.code == 0
    assert len(received) == 1 and received[0]["exit_code"] == 0
    assert "briefs.csv" in received[0]["text"]
    with store_of(tmp_path, "briefs") as store:
        assert "secret" not in (store.last_run().command if store.last_run() else "")  # type: ignore[union-attr]


async def test_a_failed_notice_is_logged_not_fatal(make_sim: MakeSim, tmp_path: Path) -> None:
    sim = await make_sim()
    write_manifest(tmp_path / "briefs.csv", 1)
    result = await Cli(tmp_path, sim).run(
        "run", "briefs.csv", "--rpm", "5000", "--notify-url", "http://127.0.0.1:9/nothing-here"
    )
    assert result.code == 0 and "completion notice" in result.stderr


async def test_a_folder_with_one_broken_and_two_good_manifests(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    sim = await make_sim()
    folder = tmp_path / "manifests"
    folder.mkdir()
    write_manifest(folder / "alpha.csv", 3)
    write_manifest(folder / "beta.csv", 4)
    (folder / "gamma.xlsx").write_bytes(b"PK\x03\x04 not really a zip")
    result = await Cli(tmp_path, sim).run("run", "manifests", "--rpm", "5000")
    assert result.code == 1
    assert "gamma.xlsx" in result.stderr and "Traceback" not in result.stderr
    for name, n in (("alpha", 3), ("beta", 4)):
        with store_of(folder, name) as store:  # outputs/ beside the manifests
            assert nonzero(store.counts()) == {JobStatus.DOWNLOADED: n}
    assert sim.stats.tasks_created == 7


async def test_results_sheet_matches_the_state(make_sim: MakeSim, tmp_path: Path) -> None:
    sim = await make_sim()
    write_manifest(tmp_path / "briefs.csv", 4)
    await Cli(tmp_path, sim).run("run", "briefs.csv", "--rpm", "5000")
    text = (tmp_path / "outputs" / "briefs" / "results.csv").read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(text.splitlines()))
    with store_of(tmp_path, "briefs") as store:
        jobs = {job.key: job for job in store.iter_jobs()}
    assert [r["key"] for r in rows] == list(jobs)
    for row in rows:
        job = jobs[row["key"]]
        assert row["status"].startswith(job.status.value) and row["task_id"] == job.task_id
        assert row["campaign"] == "spring"


async def test_a_noop_rerun_sends_nothing_and_leaves_the_results_alone(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    sim = await make_sim()
    write_manifest(tmp_path / "briefs.csv", 3)
    cli = Cli(tmp_path, sim)
    assert (await cli.run("run", "briefs.csv", "--rpm", "5000")).code == 0
    out = tmp_path / "outputs" / "briefs"
    stamp = (out / "results.xlsx").stat().st_mtime_ns
    before = sum(sim.stats.requests.values())
    again = await cli.run("run", "briefs.csv", "--rpm", "5000")
    assert again.code == 0 and sum(sim.stats.requests.values()) == before
    assert (out / "results.xlsx").stat().st_mtime_ns == stamp
    assert "results left as they were" in again.stderr
    (out / "index.html").unlink()  # a missing report is rebuilt even when nothing changed
    assert (await cli.run("run", "briefs.csv", "--rpm", "5000")).code == 0
    assert (out / "index.html").exists()
