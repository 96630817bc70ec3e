"""Regenerate docs/gallery.png and docs/results.png from a review week in the demo.

Run ``python docs/screenshots.py`` (needs Debian's chromium, as the browser test does). In a
temporary folder it runs ``batchgen demo`` (the first night), then reviews the results as a
person would in Excel (openpyxl): a decision on three takes (approve, regenerate, reject) and
a ``Notes`` column of their own after ``Decision``; then ``batchgen demo`` again (the second
night: the regenerated take is made, the notes are kept). It screenshots the gallery in
headless Chromium (Playwright, no browser download), and draws the Results sheet of
results.xlsx as a plain HTML table (cell values, number formats as shown, fills, links and
column widths read back with openpyxl) for a second screenshot.
"""

from __future__ import annotations

import datetime as dt
import html
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import openpyxl

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _shown(value: object, number_format: str) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float) and "$" in number_format:
        return f"${value:,.2f}"
    return str(value)


def sheet_html(xlsx: Path, sheet: str) -> str:
    """The sheet as an HTML table that looks like a spreadsheet."""
    ws = openpyxl.load_workbook(xlsx)[sheet]
    widths = [
        (ws.column_dimensions[openpyxl.utils.get_column_letter(i + 1)].width or 10) * 7
        for i in range(ws.max_column)
    ]
    cols = "".join(f'<col style="width:{w:.0f}px">' for w in widths)
    body = []
    for r, row in enumerate(ws.iter_rows()):
        cells = []
        for cell in row:
            text = html.escape(_shown(cell.value, cell.number_format))
            style = ""
            if cell.fill is not None and cell.fill.fill_type == "solid":
                style += f"background:#{cell.fill.fgColor.rgb[-6:]};"
            if cell.hyperlink is not None:
                text = f'<u style="color:#0563C1">{text}</u>'
            tag = "th" if r == 0 else "td"
            cells.append(f'<{tag} style="{style}">{text}</{tag}>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        "<!DOCTYPE html><meta charset='utf-8'><style>"
        "body{margin:0;font:12px Calibri,Carlito,'DejaVu Sans',sans-serif}"
        "table{border-collapse:collapse;table-layout:fixed}"
        "td,th{border:1px solid #d4d4d4;padding:2px 4px;vertical-align:top;"
        "white-space:pre-wrap;overflow:hidden;text-align:left}"
        "th{background:#d9d9d9}</style>"
        f"<table>{cols}{''.join(body)}</table>"
    )


#: The review of the first night: Key -> (decision, note).
REVIEW = {
    "id:spring-01": ("approve", "hero shot for the newsletter"),
    "id:spring-02": ("regenerate", "too dark: try again"),
    "id:spring-03": ("reject", "off brand"),
}


def review(xlsx: Path) -> None:
    """Decide three takes and add a Notes column after Decision, as a person would."""
    book = openpyxl.load_workbook(xlsx)
    sheet = book["Results"]
    header = [cell.value for cell in sheet[1]]
    key_at, decision_at = header.index("Key") + 1, header.index("Decision") + 1
    sheet.insert_cols(decision_at + 1)
    sheet.cell(1, decision_at + 1, "Notes")
    for row in range(2, sheet.max_row + 1):
        decision, note = REVIEW.get(sheet.cell(row, key_at).value, (None, None))
        sheet.cell(row, decision_at, decision)
        sheet.cell(row, decision_at + 1, note)
    book.save(xlsx)


def main() -> None:
    """Run the demo, then take both screenshots."""
    from playwright.sync_api import sync_playwright

    browser = shutil.which("chromium")
    if browser is None:
        sys.exit("install Debian's chromium first (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copytree(REPO / "manifests", work / "manifests")
        subprocess.run([sys.executable, "-m", "batchgen", "demo", "-q"], cwd=work, check=True)
        out = work / "outputs" / "demo" / "example"
        review(out / "results.xlsx")
        subprocess.run([sys.executable, "-m", "batchgen", "demo", "-q"], cwd=work, check=True)
        table = work / "results.html"
        table.write_text(sheet_html(out / "results.xlsx", "Results"), encoding="utf-8")
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                str(work / "profile"), executable_path=browser, headless=True, args=FLAGS
            )
            page = context.new_page()
            page.set_viewport_size({"width": 1280, "height": 900})
            page.goto((out / "index.html").as_uri())
            page.wait_for_function("() => document.body.dataset.ready !== undefined")
            page.wait_for_function(
                "() => document.querySelectorAll('video[data-state=\\'loaded\\']').length > 3"
            )
            page.screenshot(path=str(DOCS / "gallery.png"))
            page.set_viewport_size({"width": 2400, "height": 400})
            page.goto(table.as_uri())
            page.screenshot(path=str(DOCS / "results.png"), full_page=True)
            context.close()


if __name__ == "__main__":
    main()
