"""Loggers: structured lines at INFO on stdout, or silence.

Job arguments are never logged at INFO: they carry personal data. The
processor logs class, jid and elapsed time only; args appear at DEBUG.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import weakref
from collections import deque
from typing import TextIO

LOGGER_NAME = "gokogeri"
# Longest piece of payload-derived text (class name, jid, error message) put
# in one log line; a 5 MB class name must not become a 5 MB line.
MAX_FIELD = 200
# Lines are written in batches this often (and at once on a terminal); a
# write per line costs a system call and a GIL hand-off per job.
FLUSH_INTERVAL = 0.1  # seconds
FLUSH_LINES = 512


# Handlers with a flush thread, restarted in forked children.
_HANDLERS: weakref.WeakSet[BufferedStreamHandler] = weakref.WeakSet()


def escape(text: object, limit: int = MAX_FIELD) -> str:
    """Payload-derived text made safe for one log line: control and other
    non-printable characters escaped (no forged lines, no terminal escapes),
    cut at ``limit`` characters."""
    s = text if isinstance(text, str) else str(text)
    if len(s) > limit:
        s = s[:limit] + "..."
    if s.isprintable():
        return s
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in s)


class KeyValueFormatter(logging.Formatter):
    """``2026-11-28T07:00:00.123Z pid=1 tid=main key=value INFO: msg``

    The same layout as Sidekiq's default log lines, so one grep works on
    Ruby and Python nodes alike. Context goes in ``extra={"kv": {...}}``.
    """

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._stamp = ""

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:  # strftime once a second, not once a line
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        head = (
            f"{self._stamp}.{int(record.msecs):03d}Z pid={record.process} tid={record.threadName}"
        )
        kv = getattr(record, "kv", None)
        if kv:
            head += " " + " ".join(f"{k}={v}" for k, v in kv.items())
        kv_text = getattr(record, "kv_text", None)
        if kv_text:
            head += " " + kv_text
        line = f"{head} {record.levelname}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _restart_flushers() -> None:
    for handler in list(_HANDLERS):
        handler._after_fork()


class BufferedStreamHandler(logging.StreamHandler[TextIO]):
    """A StreamHandler that writes lines in batches.

    On a terminal every line is written at once. Otherwise lines are flushed
    every FLUSH_INTERVAL by a background thread, when FLUSH_LINES pile up, for
    WARNING and above at once, and on close (logging.shutdown at exit). A
    SIGKILL can lose the last FLUSH_INTERVAL of lines, never job data.
    """

    def __init__(self, stream: TextIO | None = None, interval: float = FLUSH_INTERVAL) -> None:
        super().__init__(stream if stream is not None else sys.stdout)
        isatty = getattr(self.stream, "isatty", None)
        self._immediate = bool(isatty and isatty())
        self._pending: deque[str] = deque()
        self._stop_flush = threading.Event()
        self._flusher: threading.Thread | None = None
        if not self._immediate:
            self._interval = interval
            self._start_flusher()
            _HANDLERS.add(self)

    def _start_flusher(self) -> None:
        self._stop_flush = threading.Event()
        self._flusher = threading.Thread(
            target=self._flush_loop, name="gokogeri-log-flush", daemon=True
        )
        self._flusher.start()

    def _after_fork(self) -> None:
        # A forked child (gokogeri run -p N) has no threads but the forking
        # one: give it its own flusher, or its lines would wait for 512 more.
        if self._flusher is not None and not self._stop_flush.is_set():
            self._start_flusher()

    def handle(self, record: logging.LogRecord) -> bool:
        # Unlike Handler.handle, no lock around emit: with ten threads logging
        # two lines per job, that lock is where they queue up. The deque is
        # thread-safe; only writing to the stream takes the lock.
        if not self.filter(record):
            return False
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._pending.append(self.format(record))
            if (
                self._immediate
                or record.levelno >= logging.WARNING
                or len(self._pending) >= FLUSH_LINES
            ):
                self.flush()
        except Exception:
            self.handleError(record)

    def queue_line(self, line: str) -> None:
        """Queue an already formatted INFO line (JobLog's fast path)."""
        self._pending.append(line)
        if self._immediate or len(self._pending) >= FLUSH_LINES:
            self.flush()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            pending = self._pending
            lines = []
            while pending:  # popleft is atomic: a line appended meanwhile is kept
                lines.append(pending.popleft())
            if lines:
                self.stream.write("\n".join(lines) + "\n")
                self.stream.flush()

    def _flush_loop(self) -> None:
        while not self._stop_flush.wait(self._interval):
            try:
                self.flush()
            except Exception:
                return  # the stream is gone (interpreter shutdown)

    def close(self) -> None:
        self._stop_flush.set()
        if self._flusher is not None and self._flusher is not threading.current_thread():
            self._flusher.join(1.0)
        try:
            self.flush()
        finally:
            super().close()


class JobLog:
    """The per-job start/done/fail lines, as Sidekiq's JobLogger writes them.

    Two lines per job through the logging module cost more than a no-op job
    itself (LogRecord, findCaller, handler dispatch: about half the node's
    CPU). When the logger is exactly what default_logger() built (only our
    buffered handler and formatter, no filters), the same line is built here
    and queued on that handler directly. Any other logger setup gets ordinary
    logger.info calls, so user handlers, filters and formats all apply.
    """

    __slots__ = ("_fast", "_handlers", "_logger", "_pid", "_second", "_stamp")

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._pid = os.getpid()
        self._second = -1
        self._stamp = ""
        self._handlers = list(logger.handlers)
        self._fast: BufferedStreamHandler | None = None
        if (
            len(self._handlers) == 1
            and isinstance(self._handlers[0], BufferedStreamHandler)
            and type(self._handlers[0].formatter) is KeyValueFormatter
            and not self._handlers[0].filters
            and not logger.filters
            and not logger.propagate
        ):
            self._fast = self._handlers[0]

    def enabled(self) -> bool:
        return self._logger.isEnabledFor(logging.INFO)

    def line(self, kv: str, message: str) -> None:
        """``kv`` is the pre-built ``class=X jid=Y elapsed=Z`` part."""
        fast = self._fast
        if fast is None or self._logger.handlers != self._handlers or fast.level > logging.INFO:
            self._logger.info(message, extra={"kv_text": kv})
            return
        now = time.time()
        second = int(now)
        if second != self._second:
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        ms = int((now - second) * 1000)
        fast.queue_line(
            f"{self._stamp}.{ms:03d}Z pid={self._pid} tid={threading.current_thread().name} "
            f"{kv} INFO: {message}"
        )


def default_logger(level: int = logging.INFO) -> logging.Logger:
    """The "gokogeri" logger, writing key=value lines to stdout at ``level``.

    Calling it again returns the same logger without adding a second handler.
    """
    logger = logging.getLogger(LOGGER_NAME)
    if not any(isinstance(h, BufferedStreamHandler) for h in logger.handlers):
        handler = BufferedStreamHandler(sys.stdout)
        handler.setFormatter(KeyValueFormatter())
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


os.register_at_fork(after_in_child=_restart_flushers)
