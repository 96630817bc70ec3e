"""Benchmark: a gallery of 100,000 takes, written and opened in a browser.

Run ``python benchmarks/bench_gallery.py [TAKES]`` (default 100,000; ``--smoke`` for 200).
It writes the gallery of TAKES synthetic takes (a ~180-character prompt, five user columns,
two videos each, a decision on one in ten) from a generator, as ``report`` streams the
state, and reports the writer's CPU seconds, its peak RSS and the size of ``index.html`` and
of its data parts; then it opens the page in Debian's headless chromium (Playwright, as the
browser tests do) and reports the seconds until every take is loaded and the first cards are
on screen, a search over every take (typed: the page waits 150 ms for more keys past 5,000
takes), and a sort by a user column with its first cards (timed in the page). Prints one
JSON line. Wall-clock figures: run it on a quiet machine.
"""

from __future__ import annotations

import json
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from batchgen.models import Job, JobStatus
from batchgen.output.gallery import write_gallery
from batchgen.output.results import summarise
from batchgen.output.review import Review

DEFAULT_TAKES = 100_000
SMOKE_TAKES = 200
_PROMPT = "A slow dolly shot of a lighthouse at dusk, waves breaking, gulls overhead, warm light"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]


def takes(n: int) -> Iterator[Job]:
    """``n`` takes in display order, made one at a time."""
    for i in range(n):
        key = f"id:shot-{i:06d}"
        prompt = f"{_PROMPT} #{i}, variation {i % 7}: cinematic"
        yield Job(
            key=key,
            row=i + 2,
            prompt=prompt,
            mode="normal",
            ratio="2:3",
            user={
                "id": f"shot-{i:06d}",
                "prompt": prompt,
                "mode": "normal",
                "ratio": "2:3",
                "campaign": f"spring-{i % 12}",
                "owner": f"owner-{i % 40}",
                "notes": "hero shot" if i % 9 == 0 else "",
            },
            status=JobStatus.DOWNLOADED,
            files=(f"videos/shot-{i:06d}_1.mp4", f"videos/shot-{i:06d}_2.mp4"),
        )


def write(out: Path, n: int) -> dict[str, float]:
    """Write the gallery of ``n`` takes into ``out``; the writer's figures."""
    summary = summarise(takes(n), [], manifest="bench.xlsx", version="bench")
    review = Review(decisions={f"id:shot-{i:06d}": "approve" for i in range(0, n, 10)})
    cpu0, t0 = time.process_time(), time.perf_counter()
    page = write_gallery(
        out, jobs=takes(n), summary=summary, prompt_column="prompt", review=review,
        make_posters=False,
    )  # fmt: skip
    cpu, seconds = time.process_time() - cpu0, time.perf_counter() - t0
    data = sum(p.stat().st_size for p in (out / "gallery").rglob("*.js"))
    return {
        "write_cpu_s": round(cpu, 2),
        "write_s": round(seconds, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "index_html_kb": round(page.stat().st_size / 1e3, 1),
        "data_mb": round(data / 1e6, 1),
    }


def browse(page_path: Path, n: int, profile: Path) -> dict[str, float]:
    """Open the page in headless chromium; seconds to every take loaded, a search, a sort."""
    from playwright.sync_api import sync_playwright

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        return {}
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=browser, headless=True, args=FLAGS
        )
        try:
            page = context.new_page()
            t0 = time.perf_counter()
            page.goto(page_path.as_uri())
            page.wait_for_function(f"() => document.body.dataset.ready === '{n}'", timeout=120_000)
            page.wait_for_selector("article.card")
            ready = time.perf_counter() - t0
            cards = page.eval_on_selector_all("article.card", "cs => cs.length")
            t1 = time.perf_counter()
            page.evaluate(
                "q => { const s = document.getElementById('search'); s.value = q;"
                " s.dispatchEvent(new Event('input')); }",
                f"#{n - 1},",
            )
            page.wait_for_function(
                "() => document.getElementById('shown').textContent.startsWith('1 of')",
                timeout=120_000,
            )
            search = time.perf_counter() - t1
            page.evaluate(
                "() => { const s = document.getElementById('search'); s.value = '';"
                " s.dispatchEvent(new Event('input')); }"
            )
            page.wait_for_function(
                f"() => document.getElementById('shown').textContent.startsWith('{n} of')",
                timeout=120_000,
            )
            sort = page.evaluate(
                "() => { const s = document.getElementById('sort');"
                " s.value = [...s.options].find(o => o.text === 'owner').value;"
                " const t = performance.now(); s.dispatchEvent(new Event('change'));"
                " return (performance.now() - t) / 1000; }"
            )  # the sort and the first cards, measured in the page
        finally:
            context.close()
    return {
        "open_to_cards_s": round(ready, 2),
        "cards_built": cards,
        "search_s": round(search, 2),
        "sort_s": round(sort, 2),
    }


def main() -> None:
    """Parse the size, write, browse, print one JSON line."""
    args = sys.argv[1:]
    n = SMOKE_TAKES if "--smoke" in args else DEFAULT_TAKES
    numbers = [a for a in args if a.isdigit()]
    n = int(numbers[0]) if numbers else n
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        figures: dict[str, object] = {"takes": n, **write(out, n)}
        figures |= browse(out / "index.html", n, Path(tmp) / "profile")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
