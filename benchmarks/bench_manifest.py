"""Time ``batchgen validate``'s library work on a 100,000-row CSV and XLSX manifest.

Usage: ``python benchmarks/bench_manifest.py [--rows N] [--keep DIR]``

Each format is measured in a fresh subprocess (so peak RSS is that format's alone): the
time to read, validate and plan the manifest (wall and CPU seconds), and the process's peak
resident memory from ``resource.getrusage``. The XLSX is read twice, in two processes: as
batchgen reads it (its values through calamine, ``manifest/xlsx_fast.py``) and by openpyxl
alone (the reader batchgen falls back to). Goals: CSV under 5 s, XLSX under 5 s of CPU, each
under 1 GB.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COLUMNS = ("id", "campaign", "owner", "prompt", "mode", "ratio", "images")
_SUBJECTS = ("a ceramic coffee mug", "running shoes", "a linen summer dress", "wireless earbuds")
_SCENES = ("on a rainy city street at night", "in a bright Scandinavian kitchen", "on a beach")
_MOVES = ("slow dolly-in", "orbiting drone shot", "handheld close-up", "macro pan")


def make_rows(count: int) -> list[list[str]]:
    """``count`` realistic manifest rows (fixed seed: every run measures the same data)."""
    rng = random.Random(20240101)
    rows = []
    for index in range(count):
        prompt = (
            f"{rng.choice(_MOVES).capitalize()} of {rng.choice(_SUBJECTS)} "
            f"{rng.choice(_SCENES)}, soft golden light, shallow depth of field, "
            f"brand colours teal and coral, variant {index}"
        )
        images = f"https://example.com/products/{index}.png" if index % 5 == 0 else ""
        rows.append(
            [
                f"SKU-{index:06d}",
                f"campaign-{index % 40}",
                rng.choice(("ana", "ben", "chloe")),
                prompt,
                rng.choice(("fun", "normal", "spicy")),
                rng.choice(("2:3", "3:2", "1:1")),
                images,
            ]
        )
    return rows


def write_csv(path: Path, rows: list[list[str]]) -> None:
    """A UTF-8 CSV with a header."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(rows)


def write_xlsx(path: Path, rows: list[list[str]]) -> None:
    """An .xlsx written in streaming mode, with a hyperlink on every 10th images cell."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Manifest")
    sheet.append(list(COLUMNS))
    for index, row in enumerate(rows):
        if index % 10 == 0 and row[-1]:
            cell = WriteOnlyCell(sheet, value="image")
            cell.hyperlink = row[-1]
            sheet.append([*row[:-1], cell])
        else:
            sheet.append(row)
    workbook.save(path)


def measure(path: Path, *, openpyxl_only: bool = False) -> dict[str, float | int]:
    """Read, validate and plan ``path`` in this process; time and peak RSS."""
    from batchgen.app.validate import plan_manifest
    from batchgen.manifest import xlsx
    from batchgen.manifest.load import read_manifest

    if openpyxl_only:
        xlsx.read_fast = lambda *args: None  # type: ignore[assignment]
    started, cpu = time.perf_counter(), time.process_time()
    manifest = read_manifest(path)
    plan = plan_manifest(manifest, rpm=1000)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_mb = peak / 1024 / 1024 if sys.platform == "darwin" else peak / 1024
    return {
        "seconds": round(seconds, 2),
        "cpu_s": round(cpu, 2),
        "peak_rss_mb": round(peak_mb),
        "valid": plan.valid,
    }


def main() -> None:
    """Generate the files, then measure each format in its own subprocess."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="write the files here and keep them")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--openpyxl", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, openpyxl_only=args.openpyxl)))
        return
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        rows = make_rows(args.rows)
        files = {"csv": folder / "bench.csv", "xlsx": folder / "bench.xlsx"}
        write_csv(files["csv"], rows)
        write_xlsx(files["xlsx"], rows)
        runs = [("csv", files["csv"], []), ("xlsx", files["xlsx"], [])]
        runs.append(("xlsx (openpyxl alone)", files["xlsx"], ["--openpyxl"]))
        for kind, path, extra in runs:
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(path), *extra],
                check=True,
                capture_output=True,
                text=True,
            )
            result = json.loads(out.stdout)
            size = path.stat().st_size / 1024 / 1024
            print(
                f"{kind} {args.rows:,} rows ({size:.1f} MB): {result['seconds']:.2f} s "
                f"({result['cpu_s']:.2f} s CPU), peak RSS {result['peak_rss_mb']:,} MB, "
                f"{result['valid']:,} valid"
            )


if __name__ == "__main__":
    main()
