"""The per-user record of generated requests (issue 23 item 2) is derived data: a damaged file
is set aside and the record rebuilt."""

from __future__ import annotations

from pathlib import Path

from batchgen.state.generated import Generation, GenerationRecord


def test_a_damaged_record_is_set_aside_and_rebuilt(tmp_path: Path) -> None:
    (tmp_path / "generated.sqlite").write_bytes(b"not a database at all" * 100)
    record = GenerationRecord(tmp_path)
    record.add([Generation("h:1", "/s", "/m.csv", "id:a", 2, "task_1")])
    assert [g.task_id for g in record.find(["h:1"], other_than=None)] == ["task_1"]
    record.close()
    assert (tmp_path / "generated.sqlite.damaged").exists()
