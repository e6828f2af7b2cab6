"""``python -m tests.scale.acl_probe``: derive a node's ACL needs from what the
code really sends.

Runs tests/scale/lifecycle.py against a private redis-server while MONITOR
records every command, Lua's included; asks Redis (COMMAND GETKEYS) which
arguments are keys; prints the commands, the keys with the node identity and
jids generalised, and the Pub/Sub channels. docs/scale.md's rule set is
written from this output; tests/test_acl.py proves the rules suffice.
"""

from __future__ import annotations

import re
import tempfile
import threading
from typing import Any

import redis as redispy

from gokogeri.testing import RedisServer
from tests.scale.lifecycle import run_lifecycle

# Commands whose first argument is a subcommand ACL rules name (CLIENT|ID).
CONTAINERS = {"CLIENT", "SCRIPT", "CONFIG", "OBJECT", "MEMORY", "XINFO", "FUNCTION", "ACL"}
PUBSUB_PUBLISH = {"PUBLISH", "SPUBLISH"}
PUBSUB_SUBSCRIBE = {"SUBSCRIBE", "SSUBSCRIBE", "PSUBSCRIBE"}
LINE = re.compile(r"^\d+\.\d+ \[\d+ ([^\]]+)\] (.*)$")


ARG = re.compile(r'"((?:[^"\\]|\\.)*)"')


def _args(rest: str) -> list[str]:
    # MONITOR quotes every argument C-style; escapes only matter inside
    # payloads, never in command names or the keys we generalise.
    return [a.replace('\\"', '"') for a in ARG.findall(rest)]


IDENTITY = re.compile(r"[\w.-]+:\d+:[0-9a-f]{12}")


def generalise(key: str) -> str:
    key = IDENTITY.sub("{identity}", key)
    key = re.sub(r"\b[0-9a-f]{24}\b", "{jid}", key)
    key = re.sub(r"\d{4}-\d{2}-\d{2}", "{date}", key)
    return key


def probe() -> dict[str, Any]:
    sock = tempfile.mktemp(prefix="gokogeri-probe-", suffix=".sock")
    with RedisServer(extra_args=["--unixsocket", sock]) as server:
        # The probe's own looking goes over the socket, so MONITOR can tell it apart.
        admin = redispy.Redis(unix_socket_path=sock)
        lines: list[str] = []
        stop = threading.Event()
        mon_client = redispy.Redis.from_url(server.url)
        conn: Any = mon_client.connection_pool.get_connection()
        conn.send_command("MONITOR")
        conn.read_response()  # OK

        def monitor() -> None:
            while not stop.is_set():
                line = conn.read_response()
                lines.append(
                    line.decode(errors="replace") if isinstance(line, bytes) else str(line)
                )

        t = threading.Thread(target=monitor, daemon=True)
        t.start()
        run_lifecycle(server.url, admin)
        stop.set()
        admin.ping()
        t.join(5)
        conn.disconnect()
        commands: set[str] = set()
        keys: set[str] = set()
        channels: set[str] = set()
        for line in lines:
            m = LINE.match(line)
            if m is None or m.group(1).startswith("unix:"):
                continue
            args = _args(m.group(2))
            if not args:
                continue
            name = args[0].upper()
            if name in ("MONITOR",):
                continue
            full = f"{name}|{args[1].upper()}" if name in CONTAINERS and len(args) > 1 else name
            commands.add(full.lower())
            if name in PUBSUB_PUBLISH:
                channels.add(args[1])
                continue
            if name in PUBSUB_SUBSCRIBE:
                channels.update(args[1:])
                continue
            try:
                got = admin.command_getkeys(*args)
            except redispy.ResponseError:
                continue  # no keys
            for k in got:
                keys.add(generalise(k if isinstance(k, str) else k.decode()))
        admin.close()
    return {"commands": sorted(commands), "keys": sorted(keys), "channels": sorted(channels)}


def main() -> None:
    out = probe()
    print("commands:", " ".join(out["commands"]))
    print("keys:")
    for k in out["keys"]:
        print("  ", k)
    print("channels:", " ".join(out["channels"]))


if __name__ == "__main__":
    main()
