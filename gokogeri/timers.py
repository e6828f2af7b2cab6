"""Precise sleeps for the threads that run jobs: Linux's timer slack.

Linux lets a sleeping thread wake up to 50 us late (the default "timer
slack") so the kernel can batch wake-ups. A job that waits with a timeout
(``time.sleep``, ``asyncio.sleep``, the event loop's ``epoll_wait``) pays it
on every wait: here ``time.sleep(0.001)`` takes 1.078 ms by default and
1.026 ms with the slack at 1 ns, so a drain of 1 ms jobs could never pass
93% of its ideal rate. Each processor thread and each pool's event-loop
thread sets its own slack to 1 ns (``prctl(PR_SET_TIMERSLACK)`` is per
thread); every other thread of the process keeps the default. Elsewhere
than Linux this does nothing.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any

_PR_SET_TIMERSLACK = 29


def _prctl() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_int
    return fn


_PRCTL = _prctl()


def precise_timers(slack_ns: int = 1) -> bool:
    """Set the calling thread's timer slack; whether it was set."""
    if _PRCTL is None:
        return False
    return bool(_PRCTL(_PR_SET_TIMERSLACK, ctypes.c_ulong(slack_ns), 0, 0, 0) == 0)
