"""Spreadsheets as people really leave them (issue 13): each case writes its own small file."""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import openpyxl
import pytest

from batchgen.app.validate import validate_paths
from batchgen.config import ManifestSettings
from batchgen.errors import ManifestError
from batchgen.manifest.load import find_manifests, read_manifest
from batchgen.manifest.model import MAX_COLUMNS, RESULT_COLUMNS_RESERVED


def _workbook(
    path: Path, rows: Sequence[Sequence[object]], edit: Callable[[object], None] | None = None
) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Manifest"
    for row in rows:
        sheet.append(row)
    if edit is not None:
        edit(workbook)
    workbook.save(path)
    return path


def _rewrite(path: Path, member: str, edit: Callable[[str], str]) -> None:
    with zipfile.ZipFile(path) as source:
        parts = {i.filename: source.read(i.filename) for i in source.infolist()}
    parts[member] = edit(parts[member].decode()).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in parts.items():
            target.writestr(name, data)


ROWS = [
    ["id", "prompt", "mode", "ratio", "approved"],
    ["a", "a red kite", "fun", "1:1", "yes"],
    ["b", "a blue kite", "fun", "1:1", "no"],
    ["c", "a green kite", "fun", "1:1", "yes"],
    ["d", "a pink kite", "fun", "1:1", "no"],
    ["e", "a grey kite", "fun", "1:1", "no"],
]


# --- 1. hidden rows and sheets ----------------------------------------------------------------


def _filtered(workbook: object) -> None:
    sheet = workbook.active  # type: ignore[attr-defined]
    sheet.auto_filter.ref = "A1:E6"
    sheet.auto_filter.add_filter_column(4, ["yes"])
    for number in (3, 5, 6):  # Excel hides the rows the filter leaves out
        sheet.row_dimensions[number].hidden = True


def test_rows_hidden_by_an_autofilter_are_skipped_and_said_so(tmp_path: Path) -> None:
    path = _workbook(tmp_path / "m.xlsx", ROWS, _filtered)
    manifest = read_manifest(path)
    assert [spec.key for spec in manifest.valid] == ["id:a", "id:c"]
    assert [row.row for row in manifest.skipped] == [3, 5, 6]
    notes = [p.message for p in manifest.warnings]
    assert any("3 rows hidden in the sheet" in n and "rows 3, 5, 6" in n for n in notes), notes
    result = validate_paths([path], rpm=100)
    assert "3 hidden (skipped)" in result.report and "80 credits" in result.report
    assert result.exit_code == 0

    included = read_manifest(path, ManifestSettings(include_hidden=True))
    assert len(included.valid) == 5 and not included.skipped


def test_a_row_hidden_by_hand_is_skipped_and_keeps_its_key(tmp_path: Path) -> None:
    def hide(workbook: object) -> None:
        workbook.active.row_dimensions[4].hidden = True  # type: ignore[attr-defined]

    rows = [["prompt"], ["one"], ["two"], ["three"], ["two"]]
    path = _workbook(tmp_path / "m.xlsx", rows, hide)
    manifest = read_manifest(path)
    visible = read_manifest(_workbook(tmp_path / "v.xlsx", rows))
    assert [r.row for r in manifest.skipped] == [4]
    # keys are given in file order, hidden rows included: un-hiding changes no key
    assert [r.key for r in manifest.rows] == [r.key for r in visible.rows]
    assert manifest.rows[3].key.endswith("#2")  # row 5 repeats row 3, which is hidden


def test_hidden_rows_are_kept_in_the_state_as_skipped(tmp_path: Path) -> None:
    from batchgen.models import JobStatus
    from batchgen.state.store import StateStore

    path = _workbook(tmp_path / "m.xlsx", ROWS, _filtered)
    manifest = read_manifest(path)
    with StateStore.open(tmp_path / "state.sqlite", manifest=path) as store:
        store.sync_manifest(manifest.columns, manifest.rows)
        counts = store.counts(in_manifest_only=True)
        assert counts[JobStatus.PENDING] == 2 and counts[JobStatus.SKIPPED] == 3
        job = store.get("id:b")
        assert job.error_message is not None and "hidden in the sheet" in job.error_message
        assert "--include-hidden" in job.error_message
        # un-hidden later: the row is pending again, under the same key
        shown = read_manifest(path, ManifestSettings(include_hidden=True))
        store.sync_manifest(shown.columns, shown.rows)
        assert store.get("id:b").status is JobStatus.PENDING
        assert store.get("id:b").error_message is None


def _two_sheets(first_state: str, active: int) -> Callable[[object], None]:
    def edit(workbook: object) -> None:
        old = workbook.create_sheet("Old campaign", 0)  # type: ignore[attr-defined]
        old.append(["prompt"])
        old.append(["last year's prompt"])
        old.sheet_state = first_state
        workbook.active = active  # type: ignore[attr-defined]

    return edit


@pytest.mark.parametrize("state", ["hidden", "veryHidden"])
def test_a_hidden_first_sheet_is_not_read_unless_named(tmp_path: Path, state: str) -> None:
    path = _workbook(tmp_path / "m.xlsx", ROWS[:3], _two_sheets(state, 1))
    manifest = read_manifest(path)
    assert manifest.sheet == "Manifest"
    assert any("'Old campaign'" in p.message and "--sheet" in p.message for p in manifest.warnings)
    assert read_manifest(path, ManifestSettings(sheet="Old campaign")).sheet == "Old campaign"


def test_the_active_sheet_is_chosen_when_visible(tmp_path: Path) -> None:
    # both sheets visible and with a prompt column: the one the user left open wins
    path = _workbook(tmp_path / "m.xlsx", ROWS[:3], _two_sheets("visible", 1))
    assert read_manifest(path).sheet == "Manifest"
    path = _workbook(tmp_path / "n.xlsx", ROWS[:3], _two_sheets("visible", 0))
    assert read_manifest(path).sheet == "Old campaign"


def test_only_a_hidden_sheet_has_a_prompt_column(tmp_path: Path) -> None:
    def edit(workbook: object) -> None:
        workbook.active.sheet_state = "hidden"  # type: ignore[attr-defined]
        workbook.create_sheet("Notes").append(["just notes"])  # type: ignore[attr-defined]
        workbook.active = 1  # type: ignore[attr-defined]

    path = _workbook(tmp_path / "m.xlsx", ROWS[:3], edit)
    with pytest.raises(
        ManifestError, match="hidden sheet 'Manifest' has one: name it with --sheet"
    ):
        read_manifest(path)
    assert read_manifest(path, ManifestSettings(include_hidden=True)).sheet == "Manifest"


# --- 2. formulas --------------------------------------------------------------------------------


def _with_saved(path: Path, cell: str, saved: str) -> None:
    """Give the formula in ``cell`` a saved text result, as Excel writes it."""

    def edit(xml: str) -> str:
        start = xml.index(f'<c r="{cell}"')
        end = xml.index("</c>", start)
        original = xml[start:end]
        fixed = original.replace(f'<c r="{cell}"', f'<c r="{cell}" t="str"', 1)
        fixed = fixed.replace("<v></v>", "").replace("<v />", "") + f"<v>{saved}</v>"
        return xml[:start] + fixed + xml[end:]

    _rewrite(path, "xl/worksheets/sheet1.xml", edit)


def test_a_hyperlink_formula_gives_its_url_not_its_label(tmp_path: Path) -> None:
    formula = '=HYPERLINK("https://cdn.example.com/roof.png","roof photo")'
    path = _workbook(tmp_path / "m.xlsx", [["prompt", "images"], ["a roof", formula]])
    _with_saved(path, "B2", "roof photo")
    manifest = read_manifest(path, ManifestSettings(default_mode="fun", default_ratio="1:1"))
    assert not manifest.errors, [str(p) for p in manifest.errors]
    assert manifest.valid[0].images == ("https://cdn.example.com/roof.png",)


def test_a_hyperlink_formula_built_from_pieces(tmp_path: Path) -> None:
    formula = '=HYPERLINK("https://cdn.example.com/" & "a ""b"".png", "label")'
    path = _workbook(tmp_path / "m.xlsx", [["prompt", "images"], ["x", formula]])
    _with_saved(path, "B2", "label")
    problems = [str(p) for p in read_manifest(path).errors]
    # the URL is read (and its space named), not the label
    assert any("https://cdn.example.com/a" in p and "a space" in p for p in problems), problems


def test_a_hyperlink_to_a_cell_and_other_formulas_without_values_are_refused_by_name(
    tmp_path: Path,
) -> None:
    rows = [
        ["prompt", "images", "ref"],
        ["a", '=HYPERLINK(C2,"roof photo")', "https://x.example/a.png"],
        ['=CONCATENATE("a ","b")', "", ""],
    ]
    path = _workbook(tmp_path / "m.xlsx", rows)
    _with_saved(path, "B2", "roof photo")
    manifest = read_manifest(path, ManifestSettings(default_mode="fun", default_ratio="1:1"))
    by_row = {p.row: p.message for p in manifest.errors}
    assert "=HYPERLINK(C2" in by_row[2] and "put the URL itself in the cell" in by_row[2]
    assert '=CONCATENATE("a ","b")' in by_row[3] and "no saved result" in by_row[3]


# --- 3. row numbers -------------------------------------------------------------------------------


def test_the_sep_line_is_not_counted_as_a_row(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_bytes(b"sep=;\r\nprompt;mode;ratio\r\nok;fun;1:1\r\n;fun;1:1\r\n")
    manifest = read_manifest(path)
    assert [r.row for r in manifest.rows] == [2, 3]
    assert manifest.errors[0].row == 3


def test_sep_line_title_rows_and_blank_rows(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    text = "\ufeffsep=,\nSummer briefs,,\n\nprompt,mode,ratio\nok,fun,1:1\n\n,fun,1:1\n"
    path.write_text(text, encoding="utf-8")
    manifest = read_manifest(path)
    # Excel shows: 1 title, 2 blank, 3 header, 4 ok, 5 blank, 6 the empty prompt
    assert [r.row for r in manifest.rows] == [4, 6]
    assert manifest.errors[0].row == 6


def test_title_rows_above_an_xlsx_header_keep_sheet_numbers(tmp_path: Path) -> None:
    rows: list[list[object]] = [
        ["Summer briefs"],
        [],
        ["prompt", "mode"],
        ["a", "fun"],
        [],
        ["", "x"],
    ]
    manifest = read_manifest(
        _workbook(tmp_path / "m.xlsx", rows), ManifestSettings(default_ratio="1:1")
    )
    assert [r.row for r in manifest.rows] == [4, 6]


# --- 4. identity ---------------------------------------------------------------------------------


def test_ids_reexported_as_decimals_keep_their_keys(tmp_path: Path) -> None:
    before = tmp_path / "before.csv"
    before.write_text("id,prompt,mode,ratio\n1,a,fun,1:1\n2,b,fun,1:1\n", encoding="utf-8")
    after = tmp_path / "after.csv"
    after.write_text("id,prompt,mode,ratio\n1.0,a,fun,1:1\n2.00,b,fun,1:1\n", encoding="utf-8")
    xlsx = _workbook(
        tmp_path / "m.xlsx",
        [["id", "prompt", "mode", "ratio"], [1.0, "a", "fun", "1:1"], [2, "b", "fun", "1:1"]],
    )
    keys = [[r.key for r in read_manifest(p).rows] for p in (before, after, xlsx)]
    assert keys[0] == keys[1] == keys[2] == ["id:1", "id:2"]


def test_an_id_shown_with_zeros_by_a_number_format_is_the_number(tmp_path: Path) -> None:
    def zeros(workbook: object) -> None:
        workbook.active["A2"].number_format = "0000"  # type: ignore[attr-defined]

    rows: list[list[object]] = [
        ["id", "prompt", "mode", "ratio"],
        [7, "a", "fun", "1:1"],
        ["0008", "b", "fun", "1:1"],
    ]
    manifest = read_manifest(_workbook(tmp_path / "m.xlsx", rows, zeros))
    # the cell holds 7 (shown 0007); "0008" typed as text keeps its zeros
    assert [r.key for r in manifest.rows] == ["id:7", "id:0008"]
    notes = [p.message for p in manifest.warnings]
    assert any("row 2 shows '0007', its id is 7" in n for n in notes), notes
    csv = tmp_path / "m.csv"
    csv.write_text("id,prompt,mode,ratio\n7.0,a,fun,1:1\n0008,b,fun,1:1\n", encoding="utf-8")
    assert [r.key for r in read_manifest(csv).rows] == ["id:7", "id:0008"]


# --- 5. URLs -------------------------------------------------------------------------------------


def _images(tmp_path: Path, cell: str) -> tuple[list[str], list[str], tuple[str, ...] | None]:
    path = tmp_path / "m.csv"
    path.write_text(f'prompt,mode,ratio,images\na,fun,1:1,"{cell}"\n', encoding="utf-8")
    manifest = read_manifest(path)
    spec = manifest.valid[0] if manifest.valid else None
    return (
        [p.message for p in manifest.warnings],
        [p.message for p in manifest.errors],
        spec.images if spec else None,
    )


def test_share_links_of_drive_and_dropbox_are_rewritten_with_a_warning(tmp_path: Path) -> None:
    drive = "https://drive.google.com/file/d/1AbCdEfGhIjKlMnOp/view?usp=sharing"
    dropbox = "https://www.dropbox.com/s/a1b2c3/roof.png?dl=0"
    warnings, errors, images = _images(tmp_path, f"{drive}\n{dropbox}")
    assert not errors
    assert images == (
        "https://drive.google.com/uc?export=download&id=1AbCdEfGhIjKlMnOp",
        "https://www.dropbox.com/s/a1b2c3/roof.png?dl=1",
    )
    assert any("Google Drive share page" in w for w in warnings)
    assert any("Dropbox preview page" in w for w in warnings)


def test_a_new_dropbox_link_keeps_its_rlkey_and_onedrive_is_refused(tmp_path: Path) -> None:
    link = "https://www.dropbox.com/scl/fi/abc123/roof.png?rlkey=xyz789&dl=0"
    _, _, images = _images(tmp_path, link)
    assert images == ("https://www.dropbox.com/scl/fi/abc123/roof.png?rlkey=xyz789&dl=1",)
    _, errors, images = _images(tmp_path, "https://1drv.ms/i/s!AbCdEf")
    assert images is None
    assert "https://api.onedrive.com/v1.0/shares/u!" in errors[0]


def test_a_space_inside_a_url_is_named(tmp_path: Path) -> None:
    _, errors, _ = _images(tmp_path, "https://cdn.example.com/roof photo.png")
    assert len(errors) == 1
    assert "contains a space at position 29" in errors[0] and "%20" in errors[0]


def test_two_urls_separated_by_a_space_are_still_two(tmp_path: Path) -> None:
    _, errors, images = _images(tmp_path, "https://x.example/a.png https://x.example/b.png")
    assert not errors and images == ("https://x.example/a.png", "https://x.example/b.png")
    _, errors, _ = _images(tmp_path, "https://x.example/a|b.png")
    assert "the character '|'" in errors[0]


# --- 6 and 7. folders and empty manifests --------------------------------------------------------


def test_a_folder_reports_every_spreadsheet_it_cannot_read(tmp_path: Path) -> None:
    (tmp_path / "summer.xls").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100)
    (tmp_path / "autumn.ods").write_bytes(b"PK\x03\x04 not really")
    (tmp_path / "winter.csv").write_text("prompt,mode,ratio\na,fun,1:1\n", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not a manifest", encoding="utf-8")
    assert [p.name for p in find_manifests([tmp_path])] == [
        "autumn.ods",
        "summer.xls",
        "winter.csv",
    ]
    result = validate_paths([tmp_path], rpm=100)
    assert "summer.xls: is an old Excel 97-2003 workbook (.xls): save it as .xlsx" in result.report
    assert "autumn.ods: is an OpenDocument spreadsheet" in result.report
    assert result.exit_code == 2


def test_a_numbers_package_and_a_workbook_named_csv_in_a_folder(tmp_path: Path) -> None:
    (tmp_path / "spring.numbers").mkdir()  # macOS saves Numbers documents as packages
    _workbook(tmp_path / "really.csv", [["prompt"], ["a"]])
    result = validate_paths([tmp_path], rpm=100)
    assert "spring.numbers: is a Numbers spreadsheet: export it as .xlsx or CSV" in result.report
    assert "really.csv: is an Excel workbook" in result.report
    assert result.exit_code == 2


def test_an_empty_folder_prints_one_clear_line(tmp_path: Path) -> None:
    result = validate_paths([tmp_path], rpm=100)
    assert result.exit_code == 2
    assert result.report.strip().count("\n") == 0
    assert result.report.startswith(f"no manifest to read in {tmp_path}")


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_a_manifest_without_data_rows_is_a_note(tmp_path: Path, kind: str) -> None:
    if kind == "csv":
        empty = tmp_path / "empty.csv"
        empty.write_text("prompt,mode,ratio\n,,\n", encoding="utf-8")
    else:
        empty = _workbook(tmp_path / "empty.xlsx", [["Title"], ["prompt", "mode"]])
    (tmp_path / "full.csv").write_text("prompt,mode,ratio\na,fun,1:1\n", encoding="utf-8")
    result = validate_paths([tmp_path], rpm=100)
    assert result.exit_code == 0, result.report
    assert "but no data rows: nothing to do" in result.report
    assert read_manifest(empty).rows == []


# --- 10. results that could not be written -------------------------------------------------------


def test_a_csv_wider_than_a_results_sheet_is_refused(tmp_path: Path) -> None:
    width = MAX_COLUMNS - RESULT_COLUMNS_RESERVED + 1
    header = ",".join(["prompt", *(f"c{i}" for i in range(width - 1))])
    path = tmp_path / "wide.csv"
    path.write_text(header + "\n" + "a" + "," * (width - 1) + "\n", encoding="utf-8")
    with pytest.raises(ManifestError, match="16,384 a spreadsheet holds"):
        read_manifest(path)
    assert validate_paths([path], rpm=100).exit_code == 2


def test_excel_column_limit_exceeded_by_18279_columns(tmp_path: Path) -> None:
    header = ",".join(["prompt", *(f"c{i}" for i in range(18_278))])
    path = tmp_path / "wide.csv"
    path.write_text(header + "\na\n", encoding="utf-8")
    with pytest.raises(ManifestError, match="has 18,279 columns"):
        read_manifest(path)


def test_a_cell_longer_than_a_spreadsheet_cell_refuses_its_row(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text(
        f"prompt,mode,ratio,notes\na,fun,1:1,{'x' * 40_000}\nb,fun,1:1,ok\n", encoding="utf-8"
    )
    manifest = read_manifest(path)
    assert [spec.row for spec in manifest.valid] == [3]
    assert "40,000 characters" in manifest.errors[0].message
    assert manifest.errors[0].column == "notes"


def test_result_columns_reserved_covers_the_results_sheet() -> None:
    from batchgen.output.results import RESULT_COLUMNS
    from batchgen.output.review import REVIEW_COLUMNS

    assert len(RESULT_COLUMNS) + len(REVIEW_COLUMNS) <= RESULT_COLUMNS_RESERVED


# --- identity changes against the state ----------------------------------------------------------


def _generated_state(tmp_path: Path, manifest_path: Path) -> object:
    from batchgen.models import JobStatus as S
    from batchgen.state.store import StateStore

    store = StateStore.open(tmp_path / "state.sqlite", manifest=manifest_path)
    manifest = read_manifest(manifest_path)
    store.sync_manifest(manifest.columns, manifest.rows)
    for spec in manifest.valid:
        for step in (S.SUBMITTING, S.SUBMITTED, S.COMPLETED, S.DOWNLOADED):
            if step is S.SUBMITTED:
                store.transition(spec.key, step, task_id="t")
            else:
                store.transition(spec.key, step)
    return store


def test_a_renamed_id_column_is_held_but_a_deliberate_duplicate_is_not(tmp_path: Path) -> None:
    from batchgen.manifest.identity import hold_regenerations

    path = tmp_path / "m.csv"
    path.write_text("id,prompt,mode,ratio\n7,a kite,fun,1:1\n8,a boat,fun,1:1\n", encoding="utf-8")
    store = _generated_state(tmp_path, path)
    generated = store.generated_requests()  # type: ignore[attr-defined]
    # the id column renamed to something batchgen does not know: every key changes
    path.write_text("ref,prompt,mode,ratio\n7,a kite,fun,1:1\n8,a boat,fun,1:1\n", encoding="utf-8")
    held, problems = hold_regenerations(read_manifest(path), generated, allow=False)
    assert [p.row for p in problems] == [2, 3] and not held.valid
    assert "same request as row 2 (key id:7)" in problems[0].message
    allowed, _ = hold_regenerations(read_manifest(path), generated, allow=True)
    assert len(allowed.valid) == 2 and not allowed.errors
    # the same rows kept, plus a deliberate copy of one: only the duplicate warning applies
    path.write_text(
        "id,prompt,mode,ratio\n7,a kite,fun,1:1\n8,a boat,fun,1:1\n9,a kite,fun,1:1\n",
        encoding="utf-8",
    )
    kept, problems = hold_regenerations(read_manifest(path), generated, allow=False)
    assert problems == [] and len(kept.valid) == 3
    store.close()  # type: ignore[attr-defined]
