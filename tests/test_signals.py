"""gokogeri.signals in a real process with real signals: the relay thread acts
on them off the handler, a second install re-targets it, and a signal storm
while the main thread starts threads neither deadlocks nor loses a stop."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).parent.parent

SCRIPT = textwrap.dedent(
    """
    import json, logging, os, signal, threading, time
    from gokogeri.signals import install_signal_handlers

    class Stub:
        # What the relay calls on a Node, recorded.
        def __init__(self, name):
            self.name, self.calls = name, []
            self.logger = logging.getLogger(name)
            self.stopped = threading.Event()
        def request_stop(self, hard=False):
            self.calls.append("hard" if hard else "stop")
            if hard:
                self.stopped.set()
        def quiet(self):
            self.calls.append("quiet")
        def dump_threads(self):
            self.calls.append("dump")

    first, second = Stub("first"), Stub("second")
    install_signal_handlers(first)
    install_signal_handlers(second)  # a later node in the same process
    me = os.getpid()
    for _ in range(200):  # TTINs while this thread starts threads and counts them
        os.kill(me, signal.SIGTTIN)
        threading.Thread(target=lambda: None).start()
        threading.active_count()
    os.kill(me, signal.SIGTSTP)
    os.kill(me, signal.SIGTERM)
    time.sleep(0.2)  # two TERMs sent at once may arrive as one signal
    os.kill(me, signal.SIGINT)
    assert second.stopped.wait(10), second.calls
    relays = [t for t in threading.enumerate() if t.name == "gokogeri-signals"]
    print(json.dumps({"first": first.calls, "second": second.calls, "relays": len(relays)}))
    """
)


def test_relay_acts_off_the_handler_and_follows_the_latest_node() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["first"] == [] and got["relays"] == 1
    calls = got["second"]
    # Standard signals coalesce while pending, so some TTINs merge; none is lost
    # after the last, and the order of the rest is kept.
    assert calls[-3:] == ["quiet", "stop", "hard"] and set(calls[:-3]) == {"dump"}
