"""Redis configuration and connections (the seed's ``redis`` package).

``Config`` is plain data; ``ConnManager`` owns the connection pool and hands
out dedicated connections for blocking commands, which must never hold a
pooled connection for seconds at a time.

Where Redis is: a ``redis://``/``rediss://``/``unix://`` URL, or Redis Sentinel
(``Config(sentinels=[(host, port)], service="mymaster")`` or the
``redis+sentinel://HOST:PORT[,HOST:PORT]/SERVICE/DB`` URL, ``rediss+sentinel://``
for TLS). TLS files and switches may ride in the URL's query
(``?ssl_ca_certs=...&ssl_certfile=...&ssl_keyfile=...&ssl_cert_reqs=none``) or
in the environment (GOKOGERI_REDIS_TLS_CA/_CERT/_KEY/_VERIFY), so a single
``--redis-url`` or environment carries everything an operator command needs.

Sentinel failover: redis-py only asks Sentinel for the master when it opens a
connection, and Sentinel leaves the old master accepting writes for seconds
after it promoted the replica (it demotes it on a later round), so pooled and
blocked connections would keep writing into a server whose data is about to
be thrown away. The ConnManager therefore listens to every sentinel: when a
failover starts promoting a replica it severs every connection and holds new
ones (the "fence") until ``+switch-master`` names the new master, which is
then asked of the sentinels by highest config epoch. Commands in flight at
that moment fail with a ConnectionError (nothing is silently dropped); later
ones wait, then run on the new master.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import re
import socket
import threading
import time
import urllib.parse
import weakref
from dataclasses import dataclass, field
from importlib import resources
from types import TracebackType
from typing import Any, Literal

import redis as redispy
import redis.connection as rconn
import redis.sentinel as rsentinel
from redis.backoff import NoBackoff
from redis.retry import Retry

from gokogeri import wire
from gokogeri.keys import Keys

DEFAULT_URL = "redis://localhost:6379/0"
DEFAULT_SERVICE = "mymaster"  # Sentinel's conventional master name
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
# Longest a failover may hold new connections: Sentinel switches in about a
# second; past this we go back to asking the sentinels, switch or not.
FAILOVER_FENCE = 10.0
# A discovered master address is reused this long (new connections after a
# failover would otherwise each ask every sentinel).
DISCOVERY_TTL = 5.0
# Pause before re-subscribing to a sentinel that went away.
WATCH_RETRY = 1.0

_log = logging.getLogger("gokogeri.redis")

# redis-py leaves these untyped; calling them through Any keeps --strict on the rest.
_parse_url: Any = rconn.parse_url
_BlockingPool: Any = redispy.BlockingConnectionPool
_SentinelPool: Any = rsentinel.SentinelConnectionPool
_sentinel_init: Any = rsentinel.Sentinel.__init__
_managed_init: Any = rsentinel.SentinelManagedConnection.__init__

# Query parameters gokogeri understands in any URL (aliases -> Config field).
_TLS_QUERY = {
    "ssl_ca_certs": "tls_ca",
    "tls_ca": "tls_ca",
    "ssl_certfile": "tls_cert",
    "tls_cert": "tls_cert",
    "ssl_keyfile": "tls_key",
    "tls_key": "tls_key",
    "ssl_cert_reqs": "tls_verify",
    "tls_verify": "tls_verify",
}
_SENTINEL_QUERY = ("sentinel_username", "sentinel_password")
_SECRET_QUERY = ("password", "sentinel_password")


def default_url() -> str:
    """GOKOGERI_REDIS_URL, then REDIS_URL, then the local default."""
    return os.environ.get("GOKOGERI_REDIS_URL") or os.environ.get("REDIS_URL") or DEFAULT_URL


def _env(name: str) -> str | None:
    return os.environ.get(name) or None


def _to_verify(value: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on", "required"):
        return True
    if v in ("0", "false", "no", "off", "none"):
        return False
    raise ValueError(f"TLS verify must be required/none (or 1/0), got {value!r}")


@dataclass
class Config:
    """Where Redis is and how gokogeri talks to it.

    url: redis://[user:password@]host:port/db, rediss:// for TLS,
        unix:///path/to/socket?db=N, or
        redis+sentinel://[user:password@]HOST:PORT[,HOST:PORT]/SERVICE/DB
        (rediss+sentinel:// for TLS to sentinels and servers alike).
    sentinels, service: Sentinel addresses and the master's name; when
        given, ``url`` only contributes credentials, db and TLS options.
    db: the database number (None: from the URL, else 0).
    username, password: an ACL user (None: from the URL).
    sentinel_username, sentinel_password: for sentinels that require auth
        (None: from the URL query, else none).
    tls: force TLS (rediss:// and rediss+sentinel:// imply it).
    tls_ca, tls_cert, tls_key: CA bundle, client certificate and key files
        (None: the URL query, then GOKOGERI_REDIS_TLS_CA/_CERT/_KEY; the CA
        defaults to the system store).
    tls_verify: verify the server certificate and host name (default on;
        None: the URL query, then GOKOGERI_REDIS_TLS_VERIFY, then on).
    pool_size: connections shared by enqueuers, acknowledgements and the
        heartbeat; blocking fetches use dedicated connections on top.
    socket_timeout: for ordinary commands.
    long_poll_timeout: server-side timeout of blocking fetches (Sidekiq's 2 s);
        the socket waits this long plus socket_timeout.
    failover_fence: longest a Sentinel failover holds new connections.
    namespace: Sidekiq 6's redis-namespace prefix ("" = none; 7+ has none).
    timestamp_format: how new timestamps are written: "float" seconds, which
        every Sidekiq reads, or "ms" integers, which only Sidekiq 8 reads and
        which is what Sidekiq 8 itself writes.
    """

    url: str = field(default_factory=default_url)
    pool_size: int = 20
    socket_timeout: float = 5.0
    connect_timeout: float = 5.0
    long_poll_timeout: float = 2.0
    namespace: str = ""
    timestamp_format: Literal["float", "ms"] = "float"
    sentinels: list[tuple[str, int]] | None = None
    service: str | None = None
    db: int | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sentinel_username: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)
    tls: bool = False
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_verify: bool | None = None
    failover_fence: float = FAILOVER_FENCE

    def __post_init__(self) -> None:
        if self.timestamp_format not in ("float", "ms"):
            raise ValueError(
                f"timestamp_format must be 'float' or 'ms', got {self.timestamp_format!r}"
            )
        if self.pool_size < 1:
            raise ValueError(f"pool_size must be at least 1, got {self.pool_size}")
        if self.long_poll_timeout <= 0:
            raise ValueError("long_poll_timeout must be positive")
        if self.sentinels is not None:
            if not self.sentinels:
                raise ValueError("sentinels must name at least one (host, port)")
            self.sentinels = [(str(h), int(p)) for h, p in self.sentinels]
        self.target()  # a bad URL or option fails here, not at first use

    def __repr__(self) -> str:
        # Not the dataclass repr: the URL may hold a password.
        return (
            f"Config(url={self.redacted_url()!r}, namespace={self.namespace!r}, "
            f"pool_size={self.pool_size}, timestamp_format={self.timestamp_format!r})"
        )

    @property
    def is_sentinel(self) -> bool:
        return self.sentinels is not None or _scheme(self.url) in SENTINEL_SCHEMES

    def redacted_url(self) -> str:
        """Where Redis is, with any password replaced: safe to log."""
        if self.sentinels is not None:
            t = self.target()
            hosts = ",".join(f"{h}:{p}" for h, p in t.sentinels)
            scheme = "rediss+sentinel" if t.tls else "redis+sentinel"
            user = t.kwargs.get("username") or ""
            auth = f"{user}:***@" if t.kwargs.get("password") else (f"{user}@" if user else "")
            return f"{scheme}://{auth}{hosts}/{t.service}/{t.kwargs.get('db', 0)}"
        return redact_url(self.url)

    def target(self) -> _Target:
        """The resolved connection settings (raises ValueError on bad ones)."""
        return _resolve(self)


def redact_url(url: str) -> str:
    """``url`` with the password in its user part and query replaced by ***."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, hosts = netloc.rsplit("@", 1)
        user, sep, _password = userinfo.partition(":")
        netloc = f"{user}:***@{hosts}" if sep else netloc
    query = parts.query
    if query:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
        query = "&".join(
            f"{k}=***" if k in _SECRET_QUERY else f"{k}={urllib.parse.quote(v, safe='/')}"
            for k, v in pairs
        )
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=query))


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


@dataclass
class _Target:
    """Config resolved: connection kwargs for redis-py, plus Sentinel settings."""

    kwargs: dict[str, Any]
    tls: bool
    sentinels: list[tuple[str, int]]
    service: str
    sentinel_kwargs: dict[str, Any]


def _split_hosts(netloc: str) -> tuple[str | None, str | None, list[tuple[str, int]]]:
    user: str | None = None
    password: str | None = None
    if "@" in netloc:
        userinfo, netloc = netloc.rsplit("@", 1)
        u, sep, p = userinfo.partition(":")
        user = urllib.parse.unquote(u) or None
        password = urllib.parse.unquote(p) if sep else None
    hosts: list[tuple[str, int]] = []
    for part in netloc.split(","):
        host, sep, port = part.strip().rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"sentinel address {part!r} must be HOST:PORT")
        hosts.append((host.strip("[]"), int(port)))
    return user, password, hosts


def _resolve(cfg: Config) -> _Target:
    scheme = _scheme(cfg.url)
    parts = urllib.parse.urlsplit(cfg.url)
    query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    mine: dict[str, str] = {}
    for name in list(query):
        if name in _TLS_QUERY:
            mine[_TLS_QUERY[name]] = query.pop(name)
        elif name in _SENTINEL_QUERY:
            mine[name] = query.pop(name)

    sentinel = cfg.sentinels is not None or scheme in SENTINEL_SCHEMES
    url_user: str | None = None
    url_password: str | None = None
    sentinels: list[tuple[str, int]] = []
    service = DEFAULT_SERVICE
    db = 0
    if scheme in SENTINEL_SCHEMES:
        url_user, url_password, sentinels = _split_hosts(parts.netloc)
        path = [p for p in parts.path.split("/") if p]
        if len(path) > 2:
            raise ValueError("sentinel URL path must be /SERVICE or /SERVICE/DB")
        if path:
            service = urllib.parse.unquote(path[0])
        if len(path) == 2:
            if not path[1].isdigit():
                raise ValueError(f"sentinel URL db must be a number, got {path[1]!r}")
            db = int(path[1])
        if "db" in query:
            db = int(query.pop("db"))
        if query:
            raise ValueError(f"unknown sentinel URL option(s): {', '.join(sorted(query))}")
        kwargs: dict[str, Any] = {}
        tls = scheme == "rediss+sentinel"
    elif sentinel:
        # Config(sentinels=...): the URL may still carry credentials/db.
        kwargs = {}
        tls = False
        if scheme in ("redis", "rediss") and cfg.url != DEFAULT_URL:
            base = _parse_url(urllib.parse.urlunsplit(parts._replace(query="")))
            url_user, url_password = base.get("username"), base.get("password")
            db = int(base.get("db", 0))
            tls = scheme == "rediss"
    else:
        if scheme not in ("redis", "rediss", "unix"):
            raise ValueError(
                "Redis URL must start with redis://, rediss://, unix://, "
                f"redis+sentinel:// or rediss+sentinel://, got {redact_url(cfg.url)!r}"
            )
        rest = urllib.parse.urlencode(query)
        kwargs = _parse_url(urllib.parse.urlunsplit(parts._replace(query=rest)))
        kwargs.pop("connection_class", None)
        tls = scheme == "rediss"
        if scheme == "unix":
            kwargs["connection_class"] = _UnixConnection
        db = int(kwargs.pop("db", 0))
        url_user = kwargs.pop("username", None)
        url_password = kwargs.pop("password", None)

    if cfg.sentinels is not None:
        sentinels = list(cfg.sentinels)
    if cfg.service is not None:
        service = cfg.service
    if cfg.db is not None:
        db = cfg.db
    tls = tls or cfg.tls
    kwargs["db"] = db
    username = cfg.username if cfg.username is not None else url_user
    password = cfg.password if cfg.password is not None else url_password
    if username:
        kwargs["username"] = username
    if password is not None:
        kwargs["password"] = password

    ca = cfg.tls_ca or mine.get("tls_ca") or _env("GOKOGERI_REDIS_TLS_CA")
    cert = cfg.tls_cert or mine.get("tls_cert") or _env("GOKOGERI_REDIS_TLS_CERT")
    key = cfg.tls_key or mine.get("tls_key") or _env("GOKOGERI_REDIS_TLS_KEY")
    verify_s = mine.get("tls_verify") or _env("GOKOGERI_REDIS_TLS_VERIFY")
    verify = (
        cfg.tls_verify
        if cfg.tls_verify is not None
        else (_to_verify(verify_s) if verify_s is not None else True)
    )
    if (cert is None) != (key is None):
        raise ValueError("a TLS client certificate needs both tls_cert and tls_key")
    for label, file in (("tls_ca", ca), ("tls_cert", cert), ("tls_key", key)):
        if file is not None and not os.path.isfile(file):
            raise ValueError(f"{label} file {file!r} does not exist")
    tls_kwargs: dict[str, Any] = {}
    if tls:
        if "path" in kwargs:
            raise ValueError("TLS options do not apply to a unix:// socket")
        tls_kwargs = {
            "ssl_ca_certs": ca,
            "ssl_certfile": cert,
            "ssl_keyfile": key,
            "ssl_cert_reqs": "required" if verify else "none",
            "ssl_check_hostname": verify,
        }
        kwargs.update(tls_kwargs)
    elif ca or cert:
        # TLS files with a plain redis:// URL: the operator clearly meant TLS.
        raise ValueError("TLS files given but the URL is not rediss:// (or set tls=True)")

    sentinel_kwargs: dict[str, Any] = {}
    if sentinel:
        if not sentinels:
            raise ValueError("Sentinel mode needs at least one sentinel HOST:PORT")
        s_user = cfg.sentinel_username or mine.get("sentinel_username")
        s_pass = cfg.sentinel_password or mine.get("sentinel_password")
        if s_user:
            sentinel_kwargs["username"] = s_user
        if s_pass:
            sentinel_kwargs["password"] = s_pass
        if tls:
            sentinel_kwargs["ssl"] = True
            sentinel_kwargs.update(tls_kwargs)
        sentinel_kwargs["socket_timeout"] = cfg.socket_timeout
        sentinel_kwargs["socket_connect_timeout"] = cfg.connect_timeout
    return _Target(kwargs, tls, sentinels, service, sentinel_kwargs)


# --- permission errors ---

# Redis names the refused command in a NOPERM reply, except inside a script,
# where it only says "script: <sha>, on @user_script:<line>".
_SCRIPT_REF = re.compile(r"script: ([0-9a-f]{40}), on @user_script:(\d+)")


@functools.cache
def _scripts_by_sha() -> dict[str, tuple[str, list[str]]]:
    """sha1 -> (file name, lines) for gokogeri's own Lua scripts, in both the
    forms scripts.py may load (with and without the Redis 7 flags line)."""
    found: dict[str, tuple[str, list[str]]] = {}
    for entry in resources.files("gokogeri").iterdir():
        if not entry.name.endswith(".lua"):
            continue
        text = entry.read_text(encoding="utf-8")
        variants = [text]
        if text.startswith("#!lua"):
            variants.append(text.split("\n", 1)[1])
        for variant in variants:
            sha = hashlib.sha1(variant.encode()).hexdigest()  # Redis's script id, not security
            found[sha] = (entry.name, variant.splitlines())
    return found


def explain_noperm(message: str) -> str:
    """A NOPERM message with the refused script line named, if it was ours."""
    m = _SCRIPT_REF.search(message)
    if m is None:
        return message
    script = _scripts_by_sha().get(m.group(1))
    if script is None:
        return message
    name, lines = script
    n = int(m.group(2))
    line = lines[n - 1].strip() if 0 < n <= len(lines) else "?"
    return (
        f"{message} [{name} line {n}: {line}] (the Redis user lacks this command "
        "or a key it names; docs/scale.md lists the ACL rules a node needs)"
    )


class _ExplainingMixin:
    """Names the command a script was refused (see explain_noperm)."""

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().read_response(*args, **kwargs)  # type: ignore[misc]  # a mixin
        except redispy.ResponseError as e:
            # Redis 7.0 reports a refusal inside a script as a plain error.
            text = str(e)
            if "user executing the script" not in text:
                raise
            better = explain_noperm(text)
            raise redispy.exceptions.NoPermissionError(better) from e


class _Connection(_ExplainingMixin, rconn.Connection):
    pass


class _SSLConnection(_ExplainingMixin, rconn.SSLConnection):
    pass


class _UnixConnection(_ExplainingMixin, rconn.UnixDomainSocketConnection):
    pass


for _cls in (_Connection, _SSLConnection, _UnixConnection):
    wire.register(_cls)


# --- Sentinel ---


class _Fence:
    """Failover state shared by every connection of one ConnManager."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self._open = threading.Event()
        self._open.set()
        self._until = 0.0  # monotonic time the current fence lifts by itself
        self._lock = threading.Lock()
        self._conns: weakref.WeakSet[rconn.AbstractConnection] = weakref.WeakSet()
        self.switches = 0  # failovers followed, for logs and tests

    def wait(self) -> None:
        while not self._open.is_set():
            left = self._until - time.monotonic()
            if left <= 0:
                return
            self._open.wait(left)

    def track(self, conn: rconn.AbstractConnection) -> None:
        with self._lock:
            self._conns.add(conn)

    def close(self) -> None:
        self._until = time.monotonic() + self.limit
        self._open.clear()
        self.sever(None)

    def open(self) -> None:
        self._open.set()

    def sever(self, keep: tuple[str, int] | None) -> int:
        """Shut down the socket of every connection not to ``keep``.

        Only the socket is shut down, never the Connection object: its owner
        thread may be inside it, and will see the closed socket as a
        ConnectionError and clean up itself.
        """
        with self._lock:
            conns = list(self._conns)
        n = 0
        for conn in conns:
            addr = (getattr(conn, "host", None), getattr(conn, "port", None))
            if keep is not None and addr == keep:
                continue
            sock = getattr(conn, "_sock", None)  # redis-py keeps the socket private
            if sock is None:
                continue
            with contextlib.suppress(OSError):
                # socket.socket.shutdown, not SSLSocket.shutdown: the latter
                # drops the SSL object under a thread that may be reading it.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
                n += 1
        return n


class _Sentinels(rsentinel.Sentinel):
    """redis-py's Sentinel, choosing the master by the highest config epoch.

    Right after a switch the sentinels disagree for a moment; the one with
    the newest epoch is right, whichever answers first.
    """

    def __init__(self, target: _Target) -> None:
        _sentinel_init(self, target.sentinels, sentinel_kwargs=target.sentinel_kwargs)
        self._cached: tuple[tuple[str, int], float] | None = None
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        self._cached = None

    def _check(self, state: dict[str, Any], service_name: str) -> bool:
        check: Any = self.check_master_state  # untyped in redis-py
        return bool(check(state, service_name))

    def discover_master(self, service_name: str) -> tuple[str, int]:
        cached = self._cached
        if cached is not None and time.monotonic() - cached[1] < DISCOVERY_TTL:
            return cached[0]
        best: tuple[int, tuple[str, int]] | None = None
        errors: list[str] = []
        for s in self.sentinels:
            try:
                state = s.sentinel_master(service_name)
            except redispy.RedisError as e:
                errors.append(f"{s.connection_pool.connection_kwargs.get('port')}: {e}")
                continue
            if not isinstance(state, dict) or not self._check(state, service_name):
                continue
            epoch = int(state.get("config-epoch", 0))
            addr = (str(state["ip"]), int(state["port"]))
            if best is None or epoch > best[0]:
                best = (epoch, addr)
        if best is None:
            detail = f" ({'; '.join(errors)})" if errors else ""
            raise rsentinel.MasterNotFoundError(
                f"no sentinel knows a healthy master for {service_name!r}{detail}"
            )
        self._cached = (best[1], time.monotonic())
        return best[1]


class _SentinelConnectionMixin:
    """Waits out a failover before connecting; registers itself for severing."""

    _fence: _Fence
    _sentinels: _Sentinels

    def _init_fence(self, kwargs: dict[str, Any]) -> None:
        self._fence = kwargs.pop("gokogeri_fence")
        self._sentinels = kwargs.pop("gokogeri_sentinels")


class _FencedConnection(
    _ExplainingMixin, _SentinelConnectionMixin, rsentinel.SentinelManagedConnection
):
    def __init__(self, **kwargs: Any) -> None:
        self._init_fence(kwargs)
        _managed_init(self, **kwargs)

    def connect(self) -> None:
        self._fence.wait()
        self._fence.track(self)
        try:
            super().connect()  # type: ignore[no-untyped-call]  # redis-py is untyped here
        except redispy.ConnectionError:
            self._sentinels.invalidate()
            raise

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().read_response(*args, **kwargs)
        except redispy.ConnectionError:
            # Includes redis-py's "previous master is now a slave" (READONLY).
            self._sentinels.invalidate()
            raise


class _FencedSSLConnection(_FencedConnection, rconn.SSLConnection):
    pass


class _BlockingSentinelPool(rsentinel.SentinelConnectionPool, redispy.BlockingConnectionPool):
    """Sentinel's master discovery with BlockingConnectionPool's waiting."""


class _Watcher:
    """One thread per sentinel, subscribed to the failover events of ``service``."""

    CHANNELS = (
        "+failover-state-send-slaveof-noone",
        "+switch-master",
        "-failover-abort-not-elected",
        "-failover-abort-no-good-slave",
        "-failover-abort-slave-timeout",
        "+failover-end-for-timeout",
    )

    def __init__(self, target: _Target, fence: _Fence, sentinels: _Sentinels) -> None:
        self._target = target
        self._fence = fence
        self._sentinels = sentinels
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pid = -1
        self._lock = threading.Lock()

    def ensure_started(self) -> None:
        """Start (or, in a forked child, restart) the listener threads."""
        if self._pid == os.getpid() or self._stop.is_set():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._threads = []
            for host, port in self._target.sentinels:
                t = threading.Thread(
                    target=self._listen,
                    args=(host, port),
                    name=f"gokogeri-sentinel-{host}:{port}",
                    daemon=True,
                )
                self._threads.append(t)
                t.start()

    def stop(self) -> None:
        self._stop.set()
        if self._pid == os.getpid():
            for t in self._threads:
                t.join(WATCH_RETRY + 1.0)

    def _listen(self, host: str, port: int) -> None:
        while not self._stop.is_set():
            client = redispy.Redis(host, port, **self._target.sentinel_kwargs)
            pubsub: Any = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]  # untyped in redis-py
            try:
                pubsub.subscribe(*self.CHANNELS)
                while not self._stop.is_set():
                    msg = pubsub.get_message(timeout=0.5)
                    if msg is not None:
                        self._on_event(_text(msg["channel"]), _text(msg["data"]), port)
            except (redispy.RedisError, OSError) as e:
                if not self._stop.is_set():
                    _log.debug("sentinel %s:%s subscription lost: %s", host, port, e)
                    self._stop.wait(WATCH_RETRY)
            finally:
                with contextlib.suppress(Exception):
                    pubsub.close()
                with contextlib.suppress(Exception):
                    client.close()

    def _on_event(self, channel: str, data: str, sentinel_port: int) -> None:
        service = self._target.service
        words = data.split()
        if channel == "+switch-master":
            # "<service> <old-ip> <old-port> <new-ip> <new-port>"
            if len(words) != 5 or words[0] != service:
                return
            new = (words[3], int(words[4]))
            self._sentinels.invalidate()
            n = self._fence.sever(keep=new)
            self._fence.switches += 1
            self._fence.open()
            _log.warning(
                "Sentinel switched %s to %s:%s; moved %s connections", service, new[0], new[1], n
            )
            return
        # "<type> <name> <ip> <port> @ <service> <master-ip> <master-port>"
        if "@" not in words or words[words.index("@") + 1 : words.index("@") + 2] != [service]:
            return
        if channel == "+failover-state-send-slaveof-noone":
            _log.warning(
                "Sentinel is promoting a replica of %s: holding Redis connections", service
            )
            self._sentinels.invalidate()
            self._fence.close()
        else:
            _log.warning("Sentinel failover of %s ended without a switch (%s)", service, channel)
            self._fence.open()


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


# --- the manager ---


# Live ConnManagers, so a forked child drops the send() cache it inherited.
_MANAGERS: weakref.WeakSet[ConnManager] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for cm in list(_MANAGERS):
        cm._forget_idle_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


class ConnManager:
    """The connection pool for one Redis (or Sentinel service), plus key names
    in its namespace."""

    def __init__(self, config: Config | None = None) -> None:
        self.config = config if config is not None else Config()
        self.keys = Keys(self.config.namespace)
        self._target = self.config.target()
        # No silent retries: a command whose reply was lost may have run, and
        # callers (crash-safe fetch, enqueue) must know that to stay safe.
        common: dict[str, Any] = {
            "socket_connect_timeout": self.config.connect_timeout,
            "retry": Retry(NoBackoff(), 0),
        }
        self._sentinels: _Sentinels | None = None
        self._watcher: _Watcher | None = None
        self._fence = _Fence(self.config.failover_fence)
        self._conn_kwargs: dict[str, Any] = {**self._target.kwargs, **common}
        if self._target.sentinels:
            self._sentinels = _Sentinels(self._target)
            self._watcher = _Watcher(self._target, self._fence, self._sentinels)
            self._conn_kwargs["connection_class"] = (
                _FencedSSLConnection if self._target.tls else _FencedConnection
            )
            self._conn_kwargs["gokogeri_fence"] = self._fence
            self._conn_kwargs["gokogeri_sentinels"] = self._sentinels
            self._pool: redispy.ConnectionPool = _BlockingSentinelPool(  # type: ignore[no-untyped-call]  # redis-py's pool is untyped
                self._target.service, self._sentinels, **self._shared_kwargs()
            )
            self._watcher.ensure_started()
        else:
            self._conn_kwargs.setdefault(
                "connection_class", _SSLConnection if self._target.tls else _Connection
            )
            # A blocking pool: when every connection is busy a caller waits for
            # one instead of failing, as Sidekiq's connection_pool does.
            self._pool = _BlockingPool(**self._shared_kwargs())
        self._client = redispy.Redis(connection_pool=self._pool)
        # send()'s connections, out of the pool while idle (see send); at most
        # half the pool, so clients of the pool itself always find one. Not
        # under Sentinel: the Sentinel pool moves a connection to the new
        # master only at checkout and release, and after a failover the old
        # master keeps accepting writes for seconds (they would be lost).
        self._idle: list[Any] = []
        self._idle_max = 0 if self._sentinels is not None else max(1, self.config.pool_size // 2)
        _MANAGERS.add(self)

    def _shared_kwargs(self) -> dict[str, Any]:
        # Options in the URL's query (socket_timeout=..., as redis-py's
        # from_url takes them) win over the Config's, as they always did.
        return {
            "max_connections": self.config.pool_size,
            "timeout": self.config.socket_timeout + self.config.connect_timeout,
            "socket_timeout": self.config.socket_timeout,
            "health_check_interval": 30,
            **self._conn_kwargs,
        }

    def _dedicated_kwargs(self) -> dict[str, Any]:
        return {
            "socket_timeout": self.config.socket_timeout + self.config.long_poll_timeout,
            **self._conn_kwargs,
            "max_connections": 1,
        }

    @property
    def client(self) -> redispy.Redis:
        """A client over the shared pool (thread-safe; bytes in and out)."""
        self._watch()
        return self._client

    @property
    def failovers(self) -> int:
        """How many Sentinel switches this manager has followed."""
        return self._fence.switches

    def _watch(self) -> None:
        if self._watcher is not None:
            self._watcher.ensure_started()  # after a fork, listen again

    def send(self, *commands: tuple[Any, ...]) -> list[Any]:
        """Send ``commands`` in one round trip on a pooled connection; their replies.

        The same as a non-transactional pipeline without its bookkeeping,
        which costs about a third of a small enqueue's time. Connections for
        send() are kept in a small lock-free cache in front of the pool: a
        checkout from redis-py's pool (lock, pid and health bookkeeping, its
        metrics hooks) cost more than the encoding of a job; the command I/O
        itself is gokogeri.wire's. A connection
        error while sending is retried once on a fresh connection (nothing
        reached Redis); one while reading is raised, because the commands
        may have run and a retry could push a job twice.
        """
        if self._watcher is not None:
            self._watcher.ensure_started()  # after a fork, listen again
        for attempt in (1, 2):
            conn = self._take()
            try:
                try:
                    if wire.supported(conn):
                        packed = wire.pack_many(commands, conn)
                        replies = wire.call(conn, packed, len(commands))
                    else:  # Sentinel-managed: redis-py's own path
                        replies = self._send_slow(conn, commands)
                except wire.NotSent:
                    # Redis restarted or a failover cut us: every cached
                    # connection is as dead as this one.
                    self._drop_idle()
                    if attempt == 2:
                        raise
                    continue
                except (redispy.ConnectionError, redispy.TimeoutError):
                    self._drop_idle()
                    raise
                for reply in replies:
                    if isinstance(reply, Exception):
                        if isinstance(reply, redispy.ConnectionError):  # LOADING, NOAUTH
                            conn.disconnect()
                            self._drop_idle()
                        raise reply
                return replies
            finally:
                self._give(conn)
        raise AssertionError("unreachable")

    @staticmethod
    def _send_slow(conn: Any, commands: tuple[tuple[Any, ...], ...]) -> list[Any]:
        try:
            conn.send_packed_command(conn.pack_commands(commands))
        except (redispy.ConnectionError, redispy.TimeoutError) as e:
            conn.disconnect()
            raise wire.NotSent(str(e)) from e
        replies: list[Any] = []
        for _ in commands:
            try:
                replies.append(conn.read_response())
            except redispy.ResponseError as e:
                replies.append(e)  # read every reply to keep the connection in step
            except (redispy.BusyLoadingError, redispy.AuthenticationError) as e:
                replies.append(e)  # replies (LOADING, NOAUTH), as wire.call returns them
            except BaseException:
                conn.disconnect()
                raise
        return replies

    def _take(self) -> Any:
        try:
            return self._idle.pop()  # atomic under the GIL: no lock
        except IndexError:
            pool: Any = self._pool  # redis-py leaves get_connection untyped
            return pool.get_connection()

    def _give(self, conn: Any) -> None:
        if len(self._idle) < self._idle_max:
            self._idle.append(conn)
        else:
            pool: Any = self._pool
            pool.release(conn)

    def _drop_idle(self) -> None:
        pool: Any = self._pool
        while True:
            try:
                conn = self._idle.pop()
            except IndexError:
                return
            conn.disconnect()
            pool.release(conn)

    def _forget_idle_after_fork(self) -> None:
        # The parent's sockets: never used (nor closed) by the child.
        self._idle = []

    def dedicated(self) -> redispy.Redis:
        """A client with its own single connection, for blocking commands.

        Its socket waits long_poll_timeout longer than usual, so a blocking
        command that times out on the server returns nil instead of
        raising a socket timeout while its reply is on the way. Under
        Sentinel it follows failovers like the shared pool.
        """
        self._watch()
        pool: redispy.ConnectionPool
        if self._sentinels is not None:
            pool = _SentinelPool(self._target.service, self._sentinels, **self._dedicated_kwargs())
        else:
            pool = redispy.ConnectionPool(**self._dedicated_kwargs())
        return redispy.Redis(connection_pool=pool)

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
        self._drop_idle()
        self._pool.disconnect()
        if self._sentinels is not None:
            with contextlib.suppress(Exception):
                self._sentinels.close()

    def __enter__(self) -> ConnManager:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ConnManager(url={self.config.redacted_url()!r})"
