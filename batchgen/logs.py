"""Logging: readable lines on stderr and in each manifest's ``logs/run-<timestamp>.log``.

A filter masks the API token in every record as a last line of defence: batchgen never logs
it on purpose, but a third-party message might quote a header.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path

__all__ = [
    "attach_run_log",
    "configure_logging",
    "detach_run_log",
    "hide_url_password",
    "mask_secret",
]

_FORMAT = "%(asctime)s %(levelname)-7s %(message)s"
_DATEFMT = "%Y-%m-%d %H:%M:%S"
_secrets: list[str] = []


class _Redact(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            text = record.getMessage()
            for secret in _secrets:
                text = text.replace(secret, "***")
            record.msg, record.args = text, None
        return True


def mask_secret(secret: str) -> None:
    """Never let ``secret`` reach a log line."""
    if secret and secret not in _secrets:
        _secrets.append(secret)


def hide_url_password(text: str) -> str:
    """``text`` with the user and password of any ``scheme://user:password@host`` as ``***``
    (e.g. a ``--limiter redis://:password@host/0`` in a command line)."""
    return re.sub(r"([a-z][a-z0-9+.-]*://)[^@/\s]*@", r"\1***@", text, flags=re.IGNORECASE)


def configure_logging(verbosity: int) -> None:
    """stderr handler: -q warnings only, default info, -v debug."""
    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG)
    logger = logging.getLogger("batchgen")
    # Not DEBUG unless asked: a debug call on the hot path then costs a level check only.
    logger.setLevel(min(level, logging.INFO))
    logger.propagate = False
    for handler in list(logger.handlers):
        if getattr(handler, "_batchgen_stderr", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler()
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(_FORMAT, _DATEFMT))
    handler.addFilter(_Redact())
    handler._batchgen_stderr = True  # type: ignore[attr-defined]
    logger.addHandler(handler)


def attach_run_log(out_dir: Path) -> logging.Handler:
    """Start ``out_dir/logs/run-<UTC timestamp>.log`` for this run (info and above)."""
    folder = out_dir / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    handler = logging.FileHandler(folder / f"run-{stamp}.log", encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter(_FORMAT, _DATEFMT))
    handler.addFilter(_Redact())
    logger = logging.getLogger("batchgen")
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return handler


def detach_run_log(handler: logging.Handler) -> None:
    """Close a run log started by ``attach_run_log``."""
    logging.getLogger("batchgen").removeHandler(handler)
    handler.close()
