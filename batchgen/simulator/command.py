"""``batchgen simulate``: options, the ``SimConfig`` they build, and the serving loop.

``batchgen.cli`` owns the parser; it calls ``add_simulate_arguments`` on its ``simulate``
sub-parser and then ``serve(config_from_args(ns), ...)``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from typing import Any, TextIO

from batchgen.config import BASE_URL_ENV, DEMO_TOKEN, TIERS
from batchgen.errors import UsageError
from batchgen.simulator.server import Simulator
from batchgen.simulator.sim_config import (
    FAULT_NAMES,
    PROVIDERS,
    WINDOW_KINDS,
    XAI_ONLY_FAULTS,
    Fault,
    SimConfig,
)

__all__ = ["DEFAULT_PORT", "add_simulate_arguments", "config_from_args", "serve"]

DEFAULT_PORT = 8089
_DEFAULTS = SimConfig()


def add_simulate_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``batchgen simulate`` options to ``parser``."""
    parser.add_argument(
        "--provider",
        choices=PROVIDERS,
        default=_DEFAULTS.provider,
        help="the vendor dialect to speak (default: %(default)s)",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="default: %(default)s")
    parser.add_argument(
        "--token",
        action="append",
        metavar="TOKEN",
        help=f"accepted bearer token; repeat for several (default: {DEMO_TOKEN})",
    )
    _add_rate_arguments(parser)
    _add_task_arguments(parser)
    _add_fault_arguments(parser)
    parser.add_argument("--access-log", action="store_true", help="log every request")


def _add_rate_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("rate limit")
    group.add_argument("--tier", choices=sorted(TIERS), default="free", help="default: free")
    group.add_argument("--rpm", type=int, help="requests per window per token (overrides --tier)")
    group.add_argument("--window", type=float, default=_DEFAULTS.window, help="window seconds")
    group.add_argument(
        "--window-kind",
        choices=WINDOW_KINDS,
        default=_DEFAULTS.window_kind,
        help="how the window counts requests (default: %(default)s)",
    )
    group.add_argument(
        "--rps",
        type=int,
        default=_DEFAULTS.rps,
        help="xai: requests per second per team, all calls (default: %(default)s)",
    )
    group.add_argument(
        "--rps-window",
        type=float,
        default=_DEFAULTS.rps_window,
        help="xai: the seconds --rps is counted over (a benchmark compresses time with it)",
    )
    group.add_argument(
        "--retry-after",
        action="store_true",
        help="xai: send Retry-After on 429 (xAI documents no rate-limit header)",
    )


def _add_task_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("tasks")
    group.add_argument(
        "--time-scale",
        type=float,
        default=_DEFAULTS.time_scale,
        help="multiplies every task latency (default: %(default)s)",
    )
    group.add_argument(
        "--latency-median",
        type=float,
        default=_DEFAULTS.latency_median,
        help="median task latency in seconds, before --time-scale (default: %(default)s)",
    )
    group.add_argument(
        "--latency-sigma",
        type=float,
        default=_DEFAULTS.latency_sigma,
        help="spread of the log-normal latency (default: %(default)s)",
    )
    group.add_argument(
        "--videos-per-task",
        type=int,
        nargs=2,
        metavar=("MIN", "MAX"),
        default=list(_DEFAULTS.videos_per_task),
        help="videos each task makes, drawn between MIN and MAX (default: %(default)s)",
    )
    group.add_argument("--seed", type=int, help="seed the random draws (task ids stay random)")


def _add_fault_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "faults", "each fault fires at random (--NAME-rate, 0..1) and/or at listed ordinals"
    )
    for name in FAULT_NAMES:
        flag = name.replace("_", "-")
        words = ("xai: " if name in XAI_ONLY_FAULTS else "") + name.replace("_", " ")
        group.add_argument(
            f"--{flag}-rate", type=float, default=0.0, metavar="P", help=f"{words}: chance"
        )
        group.add_argument(
            f"--{flag}-at",
            type=_ordinals,
            default=frozenset(),
            metavar="N,N",
            help=f"{words}: at these request ordinals",
        )
    for name, help_text in (
        ("slow_delay", "seconds a slow response waits"),
        ("storm_duration", "seconds a 429 storm lasts"),
        ("refuse_duration", "seconds connections are refused"),
        ("truncate_fraction", "share of a truncated download that is sent"),
    ):
        default = getattr(_DEFAULTS, name)
        group.add_argument(
            "--" + name.replace("_", "-"),
            type=float,
            default=default,
            help=f"{help_text} (default: {default})",
        )
    group.add_argument(
        "--link-ttl",
        type=float,
        help="video links expire this long after completion (default: never; xai: 24 h)",
    )
    group.add_argument(
        "--cost-mismatch-factor",
        type=float,
        default=_DEFAULTS.cost_mismatch_factor,
        help="xai: reported cost / table price under cost-mismatch (default: %(default)s)",
    )
    group.add_argument(
        "--bill-failures",
        action="store_true",
        help="xai: bill failed and expired requests at the table price (default: free)",
    )
    group.add_argument(
        "--placeholder-clips",
        action="store_true",
        help="xai: serve one 1-second 64x64 placeholder for every video instead of a clip of "
        "the requested length, ratio and resolution (faster; what the test suite uses)",
    )
    group.add_argument(
        "--upload-max-bytes",
        type=int,
        default=_DEFAULTS.upload_max_bytes,
        help="xai: largest file POST /v1/files accepts (default: %(default)s)",
    )


def _ordinals(text: str) -> frozenset[int]:
    try:
        return frozenset(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, got {text!r}"
        ) from None


def config_from_args(ns: argparse.Namespace) -> SimConfig:
    """The ``SimConfig`` that parsed ``batchgen simulate`` options describe.

    Raises ``UsageError`` for values the simulator cannot use.
    """
    try:
        options: dict[str, Any] = {
            name: Fault(rate=getattr(ns, f"{name}_rate"), at=getattr(ns, f"{name}_at"))
            for name in FAULT_NAMES
            if getattr(ns, f"{name}_rate") or getattr(ns, f"{name}_at")
        }
        return SimConfig(
            provider=ns.provider,
            tokens=frozenset(ns.token or [DEMO_TOKEN]),
            rpm=ns.rpm if ns.rpm is not None else TIERS[ns.tier],
            window=ns.window,
            window_kind=ns.window_kind,
            latency_median=ns.latency_median,
            latency_sigma=ns.latency_sigma,
            time_scale=ns.time_scale,
            videos_per_task=(ns.videos_per_task[0], ns.videos_per_task[1]),
            seed=ns.seed,
            slow_delay=ns.slow_delay,
            storm_duration=ns.storm_duration,
            refuse_duration=ns.refuse_duration,
            truncate_fraction=ns.truncate_fraction,
            link_ttl=ns.link_ttl,
            rps=ns.rps,
            rps_window=ns.rps_window,
            retry_after=ns.retry_after,
            cost_mismatch_factor=ns.cost_mismatch_factor,
            bill_failures=ns.bill_failures,
            upload_max_bytes=ns.upload_max_bytes,
            sized_clips=not ns.placeholder_clips,
            **options,
        )
    except ValueError as exc:
        raise UsageError(f"simulate: {exc}") from exc


async def serve(
    config: SimConfig,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    *,
    access_log: bool = False,
    out: TextIO | None = None,
) -> None:
    """Run a simulator on ``host:port``, print its URL, and serve until cancelled (Ctrl+C)
    or sent SIGTERM."""
    simulator = Simulator(config, access_log=access_log)
    try:
        url = await simulator.start(host, port)
    except OSError as exc:
        raise UsageError(f"simulate: cannot listen on {host}:{port}: {exc.strerror}") from exc
    try:
        print(_banner(config, url), file=out or sys.stdout, flush=True)
        await _until_terminated()
    finally:
        await simulator.stop()


def _banner(config: SimConfig, url: str) -> str:
    """What ``serve`` prints: the URL, the limits and, for the demo, the demo token only."""
    if config.provider == "xai":
        lines = [
            f"xAI video API simulator listening on {url}",
            f"  rate limit: {config.rps} request(s) per second per team"
            f" ({config.window_kind} window); {len(config.tokens)} key(s) accepted",
            f"  export XAI_BASE_URL={url}",  # the xAI provider's variable
        ]
    else:
        lines = [
            f"GrokImagine simulator listening on {url}",
            f"  rate limit: {config.rpm} requests per {config.window:g} s per token"
            f" ({config.window_kind} window); {len(config.tokens)} token(s) accepted",
            f"  export {BASE_URL_ENV}={url}",
        ]
    if config.tokens == frozenset({DEMO_TOKEN}):
        lines.append(f"  demo token: {DEMO_TOKEN}")
    lines.append("Press Ctrl+C to stop.")
    return "\n".join(lines)


async def _until_terminated() -> None:
    """Wait for SIGTERM (or for cancellation, which is how asyncio.run delivers Ctrl+C)."""
    loop = asyncio.get_running_loop()
    terminated = asyncio.Event()
    # Not available off the main thread or on Windows; Ctrl+C still works there.
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGTERM, terminated.set)
    try:
        await terminated.wait()
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(signal.SIGTERM)
