"""Prompt templates: a prompt that names other columns in braces, filled row by row.

Syntax is Python's :meth:`str.format` field syntax, parsed by :class:`string.Formatter`:
``{product} on a {surface}, {style} lighting`` takes each name's value from the same row.
Names are matched like headers (ignoring case, spaces, ``_``, ``-`` and ``.``), so
``{Product Name}`` finds the column ``product_name``. ``{{`` and ``}}`` stand for a literal
``{`` and ``}``; a lone brace is an error (as in ``str.format``). Format specs and
conversions are not applied: ``{a:b}`` names the column ``a:b``.

A prompt cell without fields is sent as written (after the ``{{``/``}}`` escapes are undone).
The template of ``--prompt-template`` is used for rows whose prompt cell is empty.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from batchgen.manifest.columns import normalise_header
from batchgen.manifest.model import as_text, show

__all__ = ["Filled", "fill_prompt", "template_fields", "template_problem"]

_FORMATTER = string.Formatter()


@dataclass(frozen=True, slots=True)
class Filled:
    """The outcome of filling one row's prompt.

    ``prompt`` is the text to send; ``template`` the template used (None when the prompt had
    no fields); ``problems`` lists ``(column or None, value, message)`` for each field that
    could not be filled (``column`` None: the template itself is malformed).
    """

    prompt: str
    template: str | None
    problems: tuple[tuple[str | None, str | None, str], ...] = ()


def _parts(template: str) -> list[tuple[str, str | None]]:
    """(literal text, field name or None) pairs; ValueError for a lone brace."""
    parts = []
    for literal, name, spec, conversion in _FORMATTER.parse(template):
        if name is not None:
            name += f"!{conversion}" if conversion else ""
            name += f":{spec}" if spec else ""
        parts.append((literal, name))
    return parts


def template_fields(template: str) -> list[str]:
    """The column names ``template`` refers to, in order; ValueError for a lone brace."""
    return [name for _, name in _parts(template) if name is not None]


def template_problem(template: str) -> str | None:
    """What is wrong with ``template`` as a whole (for ``--prompt-template``), or None."""
    try:
        fields = template_fields(template)
    except ValueError as exc:
        return _malformed(template, exc)
    if any(not name.strip() for name in fields):
        return f"{show(template)} has an empty {{}}; name a column, or write {{{{ }}}} for braces"
    return None


def _malformed(template: str, exc: ValueError) -> str:
    return (
        f"the prompt template {show(template)} is not valid ({exc}); write {{{{ and }}}} for "
        "literal braces"
    )


def fill_prompt(
    prompt: str, row: Mapping[str, Any], *, default: str | None = None, own: str | None = None
) -> Filled:
    """Fill ``prompt`` (or ``default`` when ``prompt`` is empty) from ``row``.

    ``row`` maps the manifest's header names to the row's cell values; ``own`` is the prompt
    column's name (a template may not name it). Missing columns and empty values become
    problems; the prompt is then returned with those fields left empty.
    """
    template = prompt if prompt.strip() or default is None else default
    if "{" not in template and "}" not in template:
        return Filled(template, None)
    try:
        parts = _parts(template)
    except ValueError as exc:
        return Filled(template, template, ((own, template, _malformed(template, exc)),))
    if all(name is None for _, name in parts):
        return Filled("".join(literal for literal, _ in parts), None)
    columns = {normalise_header(name): name for name in row}
    pieces: list[str] = []
    problems: list[tuple[str | None, str | None, str]] = []
    for literal, name in parts:
        pieces.append(literal)
        if name is None:
            continue
        value, problem = _value(name, columns, row, own)
        pieces.append(value)
        if problem is not None:
            problems.append(problem)
    return Filled("".join(pieces).strip(), template, tuple(problems))


def _value(
    name: str, columns: Mapping[str, str], row: Mapping[str, Any], own: str | None
) -> tuple[str, tuple[str | None, str | None, str] | None]:
    column = columns.get(normalise_header(name))
    if column is None or column == own:
        why = "is the prompt column itself" if column is not None else "is not a column"
        message = (
            f"the prompt template names {{{name}}}, which {why} of this manifest; name one of "
            f"its columns, or write {{{{ and }}}} for literal braces"
        )
        return "", (own, None, message)
    text = as_text(row[column]).strip()
    if not text:
        message = f"the prompt template needs {{{name}}}, but this row's {show(column)} is empty"
        return "", (column, None, message)
    return text, None
