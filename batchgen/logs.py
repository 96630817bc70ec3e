"""Logging: readable lines on stderr and in each manifest's ``logs/run-<timestamp>.log``.

A filter cleans every record as a last line of defence (``batchgen.text.clean_text``): the
API token is masked (batchgen never logs it on purpose, but a server or a third-party message
might quote it) and control characters are escaped, so a server's text can neither forge a
log line with a line break nor drive the terminal with escape codes.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import sys
from pathlib import Path

from batchgen.text import clean_text, register_secret

__all__ = [
    "attach_run_log",
    "configure_logging",
    "detach_run_log",
    "hide_url_password",
    "mask_secret",
]

_FORMAT = "%(asctime)s %(levelname)-7s %(message)s"
_DATEFMT = "%Y-%m-%d %H:%M:%S"


class _Redact(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = clean_text(record.getMessage()), None
        return True


def mask_secret(secret: str) -> None:
    """Never let ``secret`` reach a log line, a stored string or a written file."""
    register_secret(secret)


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


class _RunLog(logging.FileHandler):
    """A run log that goes quiet, with one plain line, when its disk is full (no traceback);
    opened with ``O_NOFOLLOW``, so a link planted at its name is refused, not followed."""

    failed = False

    def _open(self):  # type: ignore[no-untyped-def]  # the base class leaves it untyped
        def no_follow(path: str, flags: int) -> int:
            return os.open(path, flags | getattr(os, "O_NOFOLLOW", 0), 0o666)

        return open(  # the handler keeps it open and closes it
            self.baseFilename, self.mode, encoding=self.encoding, errors=self.errors,
            opener=no_follow,
        )  # fmt: skip

    def handleError(self, record: logging.LogRecord) -> None:
        if not self.failed:
            self.failed = True
            sys.stderr.write(f"batchgen: the run log {self.baseFilename} cannot be written\n")


def attach_run_log(out_dir: Path) -> logging.Handler:
    """Start ``out_dir/logs/run-<UTC timestamp>.log`` for this run (info and above)."""
    folder = out_dir / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    try:
        handler: logging.Handler = _RunLog(folder / f"run-{stamp}.log", encoding="utf-8")
    except OSError as exc:
        sys.stderr.write(f"batchgen: the run log in {folder} cannot be written: {exc}\n")
        return logging.NullHandler()
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
