"""Write ``docs/reference.md`` from the code: every command and option (from the argument
parser), every exit code, every status and error kind, every ``--json`` key.

Run ``python docs/gen_reference.py`` after changing any of them; ``tests/unit/test_docs.py`` fails
while the committed page differs from what this script writes, and checks the ``--json`` keys
listed here against what ``validate --json`` and ``status --json`` really print.

The parser is walked through argparse's ``_actions`` and sub-parser ``choices``: argparse has no
public API to list a parser's options, and help generators (sphinx-argparse, mkdocs-click's
argparse cousins) read the same attributes.
"""

from __future__ import annotations

import argparse
import contextlib
import enum
import re
import sys
from pathlib import Path

from batchgen.cli import EXIT_MEANINGS, build_parser
from batchgen.models import AttemptKind, AttemptOutcome, ErrorKind, JobStatus

PAGE = Path(__file__).resolve().parent / "reference.md"

#: Every key of ``batchgen validate --json`` (dotted; ``[]`` is "each item of a list").
VALIDATE_JSON: dict[str, str] = {
    "version": "layout version of the document; changes only if a key changes meaning",
    "exit_code": "the exit code the command returned",
    "manifests": "one entry per manifest read",
    "manifests[].path": "the manifest's path as given",
    "manifests[].sheet": "the XLSX sheet read (null for CSV)",
    "manifests[].rows": "data rows of the sheet",
    "manifests[].valid": "rows without an error",
    "manifests[].invalid": "rows with at least one error (never sent)",
    "manifests[].takes": "videos the valid rows ask for, variants included",
    "manifests[].regenerate": "takes the next run adds for `regenerate` decisions",
    "manifests[].already_done": "takes the state already has",
    "manifests[].to_submit": "takes the next run will send",
    "manifests[].credits": "what those takes cost, in credits (null for a provider billing USD)",
    "manifests[].usd": "what those takes cost, in USD",
    "manifests[].requests_per_minute": "the account's request limit used for the estimate",
    "manifests[].minimum_minutes": "the shortest possible run at that limit",
    "manifests[].estimated_minutes": "an honest estimate, with generation latency",
    "manifests[].generation_seconds": "the generation latency assumed",
    "manifests[].generation_seconds_learned_from": "tasks that latency was learned from",
    "manifests[].budget_credits": "the budget given, in credits (null without one, or in USD)",
    "manifests[].budget_usd": "the budget given, in USD (null without one)",
    "manifests[].budget_covers": "this manifest's share of the takes the run's budget covers "
    "(taken from each manifest in turn)",
    "manifests[].problems": "every problem found",
    "manifests[].problems[].row": "the row as Excel numbers it (header is row 1)",
    "manifests[].problems[].column": "the column's header",
    "manifests[].problems[].severity": "`error` (the row is not sent) or `warning`",
    "manifests[].problems[].message": "what is wrong and what is accepted",
    "manifests[].warnings": "manifest-wide warnings (text)",
    "unreadable": "manifests that could not be read at all",
    "unreadable[].path": "the file",
    "unreadable[].error": "why it could not be read",
    "totals": "sums over every manifest",
    "totals.to_submit": "takes to send",
    "totals.credits": "their cost in credits (null for a provider billing USD)",
    "totals.usd": "their cost in USD",
    "totals.minimum_minutes": "the shortest possible night",
    "budget": "the run's one budget, shared by every manifest of the run (null without one)",
    "budget.credits": "the budget in credits (`--max-credits`, or `--max-usd` x 100; null "
    "for a provider billing USD)",
    "budget.usd": "the budget in USD",
    "budget.scope": "`run` (this run's spend) or `total` (earlier runs' spend counts too)",
    "budget.shared_by": "how many manifests share it (each may use what the others leave)",
    "budget.spent_before": "what earlier runs of these manifests spent, in the provider's unit "
    "(scope `total`)",
    "budget.covers": "takes it pays for, all manifests together (each one's share is its "
    "`budget_covers`)",
}

#: Every key of ``batchgen status --json``.
STATUS_JSON: dict[str, str] = {
    "version": "layout version of the document; changes only if a key changes meaning",
    "exit_code": "the exit code the command returned",
    "manifests": "one entry per manifest",
    "manifests[].manifest": "the manifest's path as given",
    "manifests[].name": "its file name",
    "manifests[].state": "`ok`, `never run` or `missing`; the keys below only with `ok`",
    "manifests[].state_file": "where its state lives",
    "manifests[].rows": "rows of the sheet in the state (a row's takes count once)",
    "manifests[].takes": "takes (videos asked for: variants and regenerations) in the state",
    "manifests[].counts": "takes per status (every status is a key)",
    "manifests[].complete": "true when every take is downloaded (or left alone on purpose)",
    "manifests[].provider": "the provider the state belongs to (`grokimagine`, `xai`)",
    "manifests[].billing": "what the provider bills in: `credits` or `usd`",
    "manifests[].credits": "credits charged (null for a provider billing USD)",
    "manifests[].credits_committed": "credits of tasks created and not finished (or null)",
    "manifests[].credits_possibly_charged": "credits of unknown submits (or null)",
    "manifests[].usd_charged": "USD charged: tasks finished, at the vendor's reported cost",
    "manifests[].usd_committed": "USD of tasks created and not finished",
    "manifests[].usd_possibly_charged": "USD of submits whose outcome is unknown",
    "manifests[].usd": "the three figures together, in USD: the most the bill can be",
    "manifests[].last_run": "the last run, or null",
    "manifests[].last_run.started_at": "ISO 8601 UTC",
    "manifests[].last_run.ended_at": "ISO 8601 UTC (null if it never ended)",
    "manifests[].last_run.exit_code": "its exit code (null if it never ended)",
    "manifests[].last_run.outcome": "how it ended, in words",
    "manifests[].needs_attention": "the first 20 rows that need a person",
    "manifests[].needs_attention[].row": "the row as Excel numbers it",
    "manifests[].needs_attention[].key": "the row's key",
    "manifests[].needs_attention[].status": "its status",
    "manifests[].needs_attention[].error": "what went wrong",
}


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _option_row(action: argparse.Action, formatter: argparse.HelpFormatter) -> tuple[str, ...]:
    names = (
        ", ".join(f"`{name}`" for name in action.option_strings)
        or f"`{action.metavar or action.dest}`"
    )
    if action.option_strings and action.nargs != 0:
        metavar = action.metavar or action.dest.upper()
        names += f" `{metavar}`"
    text = formatter._get_help_string(action) if action.help else ""
    params = {**vars(action), "prog": "batchgen"}
    if isinstance(params.get("default"), frozenset | set):
        params["default"] = ", ".join(sorted(map(str, params["default"]))) or "none"
    with contextlib.suppress(KeyError, TypeError, ValueError):
        text = text % params
    return (names, " ".join(text.split()))


def _commands() -> str:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: choice.help or "" for choice in sub._choices_actions}
    out = []
    for name, command in sub.choices.items():
        formatter = command.formatter_class(prog=command.prog)
        rows = [
            _option_row(action, formatter)
            for action in command._actions
            if action.help != argparse.SUPPRESS and not isinstance(action, argparse._HelpAction)
        ]
        out.append(
            f"### `batchgen {name}`\n\n{helps.get(name, '')}\n\n"
            + _table(("option", "meaning"), rows)
        )
    return "\n\n".join(out)


def _member_comments(cls: type[enum.Enum]) -> dict[str, str]:
    """The ``# comment`` beside each member in the class's source (the single description)."""
    source = Path(sys.modules[cls.__module__].__file__ or "").read_text(encoding="utf-8")
    body = source.split(f"class {cls.__name__}(", 1)[1].split("\nclass ", 1)[0]
    found = re.findall(r'^\s+([A-Z_]+) = "[^"]*"\s+# (.+)$', body, flags=re.M)
    return {name: text.strip() for name, text in found}


def _vocabulary(cls: type[enum.Enum]) -> str:
    notes = _member_comments(cls)
    return _table(("value", "meaning"), [(f"`{m.value}`", notes.get(m.name, "")) for m in cls])


def render() -> str:
    """The whole reference page, as Markdown."""
    exit_rows = [(f"`{code}`", meaning) for code, meaning in EXIT_MEANINGS.items()]
    json_sections = []
    for command, keys in (("validate", VALIDATE_JSON), ("status", STATUS_JSON)):
        rows = [(f"`{key}`", text) for key, text in keys.items()]
        json_sections.append(
            f"### `batchgen {command} --json`\n\n" + _table(("key", "meaning"), rows)
        )
    return (
        "\n\n".join(
            [
                "# Reference",
                "Generated from the code by `python docs/gen_reference.py`; do not edit by hand. "
                "A test fails when this page and the code disagree.",
                "## Commands and options",
                "Every option can also be set in `batchgen.toml` under its long name "
                "(see [Configuration file](configuration.md)); the command line wins.",
                _commands(),
                "## Exit codes",
                "What to do after each is in [Recovery](recovery.md#exit-codes).",
                _table(("code", "meaning"), exit_rows),
                "## Row statuses",
                _vocabulary(JobStatus),
                "## Error kinds",
                _vocabulary(ErrorKind),
                "## History: attempt kinds and outcomes",
                _vocabulary(AttemptKind),
                _vocabulary(AttemptOutcome),
                "## `--json` documents",
                "Keys are stable; `version` changes if one ever has to change meaning. "
                "`[]` marks each item of a list.",
                *json_sections,
            ]
        )
        + "\n"
    )


if __name__ == "__main__":
    PAGE.write_text(render(), encoding="utf-8")
    print(f"wrote {PAGE}")
