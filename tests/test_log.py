"""Loggers: the buffered handler loses no line, and job lines look the same on both paths."""

from __future__ import annotations

import io
import logging
import re
import threading

from gokogeri.log import (
    BufferedStreamHandler,
    JobLog,
    KeyValueFormatter,
    default_logger,
    nop_logger,
)

LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z pid=\d+ tid=\S+ class=X jid=abc INFO: start$"
)


def test_buffered_handler_keeps_every_line_from_many_threads() -> None:
    out = io.StringIO()
    handler = BufferedStreamHandler(out, interval=0.01)
    handler.setFormatter(KeyValueFormatter())
    logger = logging.getLogger("gokogeri.test.buffered")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)

    def spam(n: int) -> None:
        for i in range(2000):
            logger.info("line %s %s", n, i)

    threads = [threading.Thread(target=spam, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    handler.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 16_000 and len(set(lines)) == 16_000


def test_job_lines_identical_on_fast_and_standard_paths() -> None:
    fast_out, std_out = io.StringIO(), io.StringIO()
    fast = logging.getLogger("gokogeri.test.fast")
    fast.handlers = [BufferedStreamHandler(fast_out)]
    fast.handlers[0].setFormatter(KeyValueFormatter())
    fast.propagate = False
    fast.setLevel(logging.INFO)
    std = logging.getLogger("gokogeri.test.std")
    handler = logging.StreamHandler(std_out)
    handler.setFormatter(KeyValueFormatter())
    std.handlers = [handler]
    std.propagate = False
    std.setLevel(logging.INFO)
    fj, sj = JobLog(fast), JobLog(std)
    assert fj._fast is not None and sj._fast is None
    fj.line("class=X jid=abc", "start")
    sj.line("class=X jid=abc", "start")
    for h in fast.handlers:
        h.flush()
    assert LINE.match(fast_out.getvalue().strip()), fast_out.getvalue()
    assert LINE.match(std_out.getvalue().strip()), std_out.getvalue()


def test_a_handler_added_later_still_gets_job_lines() -> None:
    logger = default_logger()
    joblog = JobLog(logger)
    seen: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    extra = Capture()
    logger.addHandler(extra)
    try:
        joblog.line("class=X jid=abc", "done")
    finally:
        logger.removeHandler(extra)
    assert seen == ["done"]


def test_default_logger_is_idempotent_and_nop_is_silent() -> None:
    a, b = default_logger(), default_logger()
    assert a is b and sum(isinstance(h, BufferedStreamHandler) for h in a.handlers) == 1
    assert not nop_logger().isEnabledFor(logging.CRITICAL) or nop_logger().disabled
