"""Loggers: structured lines at INFO on stdout, or silence.

Job arguments are never logged at INFO: they carry personal data. The
processor logs class, jid and elapsed time only; args appear at DEBUG.
"""

from __future__ import annotations

import logging
import sys
import time

LOGGER_NAME = "gokogeri"


class KeyValueFormatter(logging.Formatter):
    """``2026-11-28T07:00:00.123Z pid=1 tid=main INFO: msg key=value ...``

    The same layout as Sidekiq's default log lines, so one grep works on
    Ruby and Python nodes alike. Context goes in ``extra={"kv": {...}}``.
    """

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        head = f"{ts}.{int(record.msecs):03d}Z pid={record.process} tid={record.threadName}"
        kv = getattr(record, "kv", None)
        if kv:
            head += " " + " ".join(f"{k}={v}" for k, v in kv.items())
        line = f"{head} {record.levelname}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def default_logger(level: int = logging.INFO) -> logging.Logger:
    """The "gokogeri" logger, writing key=value lines to stdout at ``level``.

    Calling it again returns the same logger without adding a second handler.
    """
    logger = logging.getLogger(LOGGER_NAME)
    if not any(getattr(h, "_gokogeri", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(KeyValueFormatter())
        handler._gokogeri = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level)
    return logger


def nop_logger() -> logging.Logger:
    """A logger that drops everything (the seed's zerolog.Nop())."""
    logger = logging.getLogger(LOGGER_NAME + ".nop")
    logger.propagate = False
    logger.disabled = True
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    return logger
