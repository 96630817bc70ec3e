"""One ``configure_<command>`` function per command: its options and the handler it calls.

A handler turns the parsed options into :class:`~batchgen.config.Settings` and makes one call
into :mod:`batchgen.app`; errors travel up as :class:`~batchgen.errors.BatchgenError` to
:func:`batchgen.cli.main.main`, which maps them to exit codes. (The pattern of procrastinate's
``cli.py``: a parser configured per command, one library call each.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from pathlib import Path
from typing import Any

from batchgen.cli.options import (
    ALLOW_PRIVATE_HELP,
    REPORT_EXITS,
    SIMULATE_EXITS,
    STATUS_EXITS,
    TEMPLATE_EXITS,
    VALIDATE_EXITS,
    add_budget_options,
    add_command,
    add_common,
    add_manifest_options,
    add_provider_option,
    add_run_options,
    add_tier_options,
    json_option,
)
from batchgen.cli.settings import settings_from_args
from batchgen.errors import BatchgenError, UsageError
from batchgen.logs import mask_secret

__all__ = [
    "COMMANDS",
    "configure_demo",
    "configure_report",
    "configure_run",
    "configure_simulate",
    "configure_status",
    "configure_template",
    "configure_validate",
]


def configure_run(commands: Any) -> None:
    """Add ``batchgen run`` to ``commands`` (the parser's sub-commands)."""
    run = add_command(commands, "run", "generate every row of the manifests (resumes)")
    run.add_argument("manifests", nargs="+", type=Path, metavar="MANIFEST_OR_FOLDER")
    add_run_options(run)
    run.set_defaults(handler=_cmd_run)


def configure_demo(commands: Any) -> None:
    """Add ``batchgen demo`` to ``commands`` (the parser's sub-commands)."""
    demo = add_command(commands, "demo", "run the example manifest against the simulator")
    demo.add_argument("manifests", nargs="*", type=Path, metavar="MANIFEST")
    add_run_options(demo)
    demo.set_defaults(handler=_cmd_demo)


def configure_validate(commands: Any) -> None:
    """Add ``batchgen validate`` to ``commands`` (the parser's sub-commands)."""
    validate = add_command(
        commands,
        "validate",
        "check manifests and their pictures, and show the plan (no API call, no token)",
        exits=VALIDATE_EXITS,
        token=False,
    )
    validate.add_argument("manifests", nargs="+", type=Path, metavar="MANIFEST_OR_FOLDER")
    add_common(validate)
    add_provider_option(validate)
    add_manifest_options(validate)
    add_tier_options(validate)
    add_budget_options(validate)
    validate.add_argument(
        "--name-template",
        metavar="TEMPLATE",
        help="check video file names as run would make them (see run --help, docs/downloads.md)",
    )
    validate.add_argument("--allow-private-urls", action="store_true", help=ALLOW_PRIVATE_HELP)
    json_option(validate)
    validate.set_defaults(handler=_cmd_validate)


def configure_template(commands: Any) -> None:
    """Add ``batchgen template`` to ``commands`` (the parser's sub-commands)."""
    template = add_command(
        commands,
        "template",
        "write a starter manifest (.xlsx)",
        exits=TEMPLATE_EXITS,
        token=False,
        config=False,
    )
    template.add_argument("path", type=Path, metavar="PATH.xlsx")
    add_provider_option(template)
    template.set_defaults(handler=_cmd_template, quiet=0, verbose=0, config=None)


def configure_report(commands: Any) -> None:
    """Add ``batchgen report`` to ``commands`` (the parser's sub-commands)."""
    report = add_command(
        commands,
        "report",
        "rebuild results and gallery from the state",
        exits=REPORT_EXITS,
        token=False,
    )
    report.add_argument("manifests", nargs="+", type=Path, metavar="MANIFEST_OR_FOLDER")
    add_common(report)
    report.add_argument(
        "--no-csv-escape",
        dest="csv_escape",
        action="store_false",
        help="do not prefix CSV cells starting with = + - @ with a quote",
    )
    report.add_argument(
        "--ledger",
        action="store_true",
        help="also write ledger.csv (every task ever created) and claims.csv",
    )
    report.set_defaults(handler=_cmd_report)


def configure_status(commands: Any) -> None:
    """Add ``batchgen status`` to ``commands`` (the parser's sub-commands)."""
    status = add_command(
        commands,
        "status",
        "what the state says, without any network",
        exits=STATUS_EXITS,
        token=False,
    )
    status.add_argument("manifests", nargs="+", type=Path, metavar="MANIFEST_OR_FOLDER")
    add_common(status)
    json_option(status)
    status.set_defaults(handler=_cmd_status)


def configure_simulate(commands: Any) -> None:
    """Add ``batchgen simulate`` to ``commands`` (the parser's sub-commands)."""
    simulate = add_command(
        commands,
        "simulate",
        "serve the local vendor simulator (--provider)",
        exits=SIMULATE_EXITS,
        token=False,
        config=False,
    )
    from batchgen.simulator import add_simulate_arguments

    add_simulate_arguments(simulate)
    simulate.set_defaults(handler=_cmd_simulate, quiet=0, verbose=0, config=None)


def _cmd_run(args: argparse.Namespace) -> int:
    if args.dry_run:
        return _cmd_validate(args)
    from batchgen.app.run import run_batch
    from batchgen.providers.catalog import provider_named
    from batchgen.providers.endpoint import check_transport, resolve_base_url
    from batchgen.providers.token import TokenNames, load_token

    info = provider_named(args.provider)
    base_url = resolve_base_url(
        args.base_url, env_var=info.base_url_env, default=info.default_base_url
    )
    check_transport(base_url)
    try:
        token = load_token(
            token_file=args.token_file, names=TokenNames(info.token_env, info.token_file_env)
        )
    except UsageError as exc:  # a forgotten --provider shows first as a missing token
        raise UsageError("; ".join([str(exc), *_provider_hints(args, info.name)])) from None
    mask_secret(token.reveal())
    settings = settings_from_args(args, base_url=base_url)
    return asyncio.run(run_batch(args.manifests, settings, token, command=args.command_line))


def _provider_hints(args: argparse.Namespace, chosen: str) -> list[str]:
    """What the manifests' states say when they were made with another provider."""
    from batchgen.app.reporting import provider_mismatch
    from batchgen.manifest.load import find_manifests

    try:
        manifests = find_manifests(args.manifests)
    except BatchgenError:
        return []
    hints = (provider_mismatch(args.out, path, chosen) for path in manifests)
    return [hint for hint in hints if hint is not None]


def _cmd_demo(args: argparse.Namespace) -> int:
    from batchgen.app.demo import example_manifest, run_demo
    from batchgen.providers.catalog import provider_named

    manifests = args.manifests or [example_manifest(provider_named(args.provider))]
    if args.dry_run:
        args.manifests = manifests
        return _cmd_validate(args)
    settings = settings_from_args(args)
    return asyncio.run(run_demo(manifests, settings, command=args.command_line))


def _cmd_validate(args: argparse.Namespace) -> int:
    from batchgen.app.validate import validate_manifests
    from batchgen.providers.catalog import provider_named
    from batchgen.providers.endpoint import resolve_base_url

    # the API run would use: a private one lets pictures on private addresses through
    info = provider_named(getattr(args, "provider", None))
    base_url = resolve_base_url(
        getattr(args, "base_url", None), env_var=info.base_url_env, default=info.default_base_url
    )
    settings = settings_from_args(args, base_url=base_url)
    as_json = getattr(args, "json", False)
    text, code = validate_manifests(args.manifests, settings, as_json=as_json)
    print(text)
    return code


def _cmd_template(args: argparse.Namespace) -> int:
    from batchgen.app.template import write_template
    from batchgen.providers.catalog import provider_named

    write_template(args.path, provider=provider_named(args.provider))
    print(f"wrote {args.path}: fill in one row per video, then run: batchgen validate {args.path}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from batchgen.app.report import rebuild_reports

    settings = settings_from_args(args)
    for line in rebuild_reports(args.manifests, settings, ledger=args.ledger):
        print(line)
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from batchgen.app.status import status_report

    text, code = status_report(args.manifests, settings_from_args(args), as_json=args.json)
    print(text)
    return code


def _cmd_simulate(args: argparse.Namespace) -> int:
    from batchgen.simulator import config_from_args, serve

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(config_from_args(args), args.host, args.port))
    return 0


#: Every command, in the order ``batchgen --help`` lists them.
COMMANDS = (
    configure_run,
    configure_demo,
    configure_validate,
    configure_template,
    configure_report,
    configure_status,
    configure_simulate,
)
