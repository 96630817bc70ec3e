"""Issue 12 item 1 and issue 14 item 6: one file per row and video, names people can use,
a sidecar beside each video."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.cli_runner import SIM_DEFAULTS as SIM_DEFAULTS  # the make_sim fixture reads it

from batchgen.errors import DownloadError, UsageError
from batchgen.models import Job, JobStatus
from batchgen.output.naming import FileNames, NameTemplate, default_stem, sanitise_part
from batchgen.output.sidecar import sidecar_owner, write_sidecar


def job(key: str, **user: str) -> Job:
    return Job(key=key, row=2, prompt="p", mode="fun", ratio="1:1", user=dict(user))


def names_for(tmp_path: Path, jobs: list[Job], template: str | None = None) -> FileNames:
    parsed = NameTemplate.parse(template) if template else None
    return FileNames(tmp_path, lambda: jobs, template=parsed)


# ---------------------------------------------------------------- unique by construction
COLLIDING = [
    ["id:a/b", "id:a?b"],
    ["id:a.", "id:a"],
    ["id:" + "x" * 130 + "1", "id:" + "x" * 130 + "2"],
    ["id:春", "id:夏", "id:🎬", "id:🎥"],
    ["id:Spring", "id:spring"],  # one file on Windows and macOS
    ["id:a:b", "id:a_b"],
    ["id:con", "id:CON"],
    ["id:a b", "id:a\tb", "id:a\nb"],
    ["id:café", "id:cafe\u0301"],  # NFC and NFD spellings: one name on macOS
]


@pytest.mark.parametrize("keys", COLLIDING)
def test_keys_that_sanitise_alike_get_different_files(tmp_path: Path, keys: list[str]) -> None:
    jobs = [job(k) for k in keys]
    names = names_for(tmp_path, jobs)
    paths = [names.claim(j, 1) for j in jobs]
    folded = {p.casefold() for p in paths}
    assert len(folded) == len(keys), paths
    for path in paths:
        assert path.startswith("videos/")
        assert path.endswith("_1.mp4") or "~" in path
        assert len(Path(path).name.encode()) <= 140


def test_ordinary_keys_keep_the_names_earlier_versions_gave(tmp_path: Path) -> None:
    jobs = [job("id:spring-01"), job("h:0123456789abcdef#2"), job("h:0123456789abcdef")]
    names = names_for(tmp_path, jobs)
    assert names.claim(jobs[0], 1) == "videos/id_spring-01_1.mp4"
    assert names.claim(jobs[1], 2) == "videos/h_0123456789abcdef_2_2.mp4"
    assert names.claim(jobs[2], 1) == "videos/h_0123456789abcdef_1.mp4"


def test_names_are_stable_across_runs_and_row_order(tmp_path: Path) -> None:
    jobs = [job(k) for k in ("id:a/b", "id:a?b", "id:Spring", "id:spring", "id:ok")]
    first = {j.key: names_for(tmp_path, jobs).claim(j, 1) for j in jobs}
    again = names_for(tmp_path, list(reversed(jobs)))
    assert {j.key: again.claim(j, 1) for j in reversed(jobs)} == first


def test_sanitising_covers_every_os() -> None:
    for text in ("CON", "nul.txt", "COM1", "lpt9.mp4", "AUX"):
        assert sanitise_part(text)[0].startswith("_")
    assert sanitise_part(" trailing. ")[0] == "trailing"
    assert sanitise_part('a<b>c:d"e|f?g*h\\i/j')[0] == "a_b_c_d_e_f_g_h_i_j"
    assert sanitise_part("..")[0] == "_"
    long, lossless = sanitise_part("é" * 200)
    assert len(long.encode()) <= 100 and not lossless
    assert sanitise_part("\x1b[31mred")[0] == "_[31mred"
    assert default_stem("id:Frühling") == ("id_Frühling", True)


def test_a_path_another_row_owns_is_never_handed_out(tmp_path: Path) -> None:
    owner = Job(
        key="id:old",
        row=3,
        prompt="p",
        mode="fun",
        ratio="1:1",
        status=JobStatus.DOWNLOADED,
        files=("videos/id_new_1.mp4",),  # e.g. named by another rule, long ago
    )
    new = job("id:new")
    names = names_for(tmp_path, [owner, new])
    path = names.claim(new, 1)
    assert path != "videos/id_new_1.mp4" and "~" in path


def test_a_sidecar_naming_another_row_protects_its_file(tmp_path: Path) -> None:
    video = tmp_path / "videos" / "id_b_1.mp4"
    video.parent.mkdir()
    write_sidecar(video, job("id:someone-else"), index=1, size=10)
    names = names_for(tmp_path, [job("id:b")])
    assert names.claim(job("id:b"), 1) != "videos/id_b_1.mp4"
    assert sidecar_owner(video.with_suffix(".json")) == "id:someone-else"


def test_when_every_candidate_is_taken_the_download_fails_with_a_message(tmp_path: Path) -> None:
    names = names_for(tmp_path, [job("id:b")])
    for path in names.candidates(job("id:b"), 1):
        video = tmp_path / path
        video.parent.mkdir(exist_ok=True)
        write_sidecar(video, job("id:other"), index=1, size=10)
    with pytest.raises(DownloadError, match="belongs to row 'id:other'"):
        names.claim(job("id:b"), 1)


# ---------------------------------------------------------------- templates
def test_a_template_uses_the_row_columns(tmp_path: Path) -> None:
    jobs = [job("id:hero-01", campaign="Spring Sale"), job("id:hero-02", campaign="Spring Sale")]
    names = names_for(tmp_path, jobs, "{campaign}/{id}_{n}")
    assert names.claim(jobs[0], 1) == "videos/Spring Sale/hero-01_1.mp4"
    assert names.claim(jobs[1], 2) == "videos/Spring Sale/hero-02_2.mp4"


def test_a_template_that_does_not_tell_rows_apart_still_gives_one_file_each(
    tmp_path: Path,
) -> None:
    jobs = [job(f"id:{i}", campaign="spring") for i in range(3)]
    names = names_for(tmp_path, jobs, "{campaign}")  # no {n}: "_{n}" is added
    paths = [names.claim(j, 1) for j in jobs]
    assert len(set(paths)) == 3 and all(p.startswith("videos/spring_1~") for p in paths)


def test_a_later_video_meeting_another_rows_name_gets_the_hashed_one(tmp_path: Path) -> None:
    first, other = job("id:a1"), job("id:a")
    names = names_for(tmp_path, [first, other], "{id}{n}")
    assert names.claim(first, 1) == "videos/a11.mp4"
    assert names.claim(other, 11).startswith("videos/a11~")  # "a" + 11: taken by row a1


def test_a_template_with_separators_in_values_stays_inside_videos(tmp_path: Path) -> None:
    jobs = [job("id:x", campaign="../../etc"), job("id:y", campaign="a/b")]
    names = names_for(tmp_path, jobs, "{campaign}/{id}")
    for j in jobs:
        path = names.claim(j, 1)
        assert path.startswith("videos/") and ".." not in Path(path).parts
        assert len(Path(path).parts) == 3


@pytest.mark.parametrize(
    ("template", "message"),
    [("{nope}/{id}", "{nope} is not a column"), ("{}", "needs a column"), ("{id", "expected")],
)
def test_a_bad_template_is_a_usage_error(template: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        NameTemplate.parse(template).check_columns(["id", "prompt", "campaign"], "briefs.csv")


def test_a_column_can_be_named_as_written_or_in_snake_case() -> None:
    NameTemplate.parse("{Campaign Name}/{campaign_name}").check_columns(["Campaign Name"], "m")


# ---------------------------------------------------------------- end to end


def test_a_regenerated_take_has_no_hash_sign_in_its_name(tmp_path: Path) -> None:
    # seen by a new user: the second take of id:spring-01 was id_spring-01#v2_1.mp4
    takes = [job("id:spring-01"), job("id:spring-01#v2"), job("h:0123abcd#2#v3")]
    names = names_for(tmp_path, takes)
    paths = [names.claim(take, 1) for take in takes]
    assert paths == [
        "videos/id_spring-01_1.mp4",
        "videos/id_spring-01_v2_1.mp4",
        "videos/h_0123abcd_2_v3_1.mp4",  # a variant: a duplicate row's third take
    ]


def test_a_take_name_that_meets_another_rows_name_is_hashed(tmp_path: Path) -> None:
    # the row id "a_v2" and the second take of row "a" would share id_a_v2_1.mp4
    takes = [job("id:a#v2"), job("id:a_v2")]
    names = names_for(tmp_path, takes)
    paths = {take.key: names.claim(take, 1) for take in takes}
    assert len(set(paths.values())) == 2 and all("~" in path for path in paths.values())
