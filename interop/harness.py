"""Real Redis + real Ruby Sidekiq for the cross-language tests.

Two ways to get them, one interface (:class:`InteropEnv`):

* containers (default): podman serves the Docker API and testcontainers starts a Redis (network
  alias ``redis``) and a Sidekiq container from the images interop/images/build.sh makes. Any
  Sidekiq version x any Redis flavour.
* host (fallback, or ``INTEROP_MODE=host``): a redis-server on a free 127.0.0.1 port and the
  host's Debian ``sidekiq`` (6.4.1 only). No containers at all.

Everything started here is stopped here: Sidekiq gets SIGTERM (its own shutdown), then SIGKILL
after a grace period; containers and networks are removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import redis as redispy

if TYPE_CHECKING:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.network import Network

T = TypeVar("T")

INTEROP_DIR = Path(__file__).resolve().parent
RUBY_DIR = INTEROP_DIR / "ruby"
IMAGES_DIR = INTEROP_DIR / "images"
IMAGE_PREFIX = "localhost/gokogeri"

# Sidekiq version under test -> image tag (the Debian suite that ships it, see images/build.sh).
SIDEKIQ_VERSIONS: dict[str, str] = {"6.4.1": "6", "7.3.2": "7", "8.1.7": "8"}
REDIS_FLAVOURS: dict[str, str] = {
    "redis-7.0": f"{IMAGE_PREFIX}/redis:7.0",
    "redis-8.0": f"{IMAGE_PREFIX}/redis:8.0",
    "valkey-9": f"{IMAGE_PREFIX}/valkey:9",
}
HOST_FLAVOUR = "host-redis"
# The default matrix: every Sidekiq on Redis 7.0 (Sidekiq 7/8's minimum), plus one Sidekiq per
# other flavour, spread over the versions. INTEROP_MATRIX=full runs all nine.
DEFAULT_MATRIX: list[tuple[str, str]] = [
    ("6.4.1", "redis-7.0"),
    ("7.3.2", "redis-7.0"),
    ("8.1.7", "redis-7.0"),
    ("8.1.7", "redis-8.0"),
    ("7.3.2", "valkey-9"),
]

# Where the Ruby files are inside the Sidekiq containers (mounted read-only, not baked in).
CONTAINER_RUBY_DIR = "/opt/interop"
# The queues the Ruby Sidekiq works. Jobs meant for Python go to "python", which nobody here works,
# so tests can read them back byte for byte.
SIDEKIQ_QUEUES = ("default", "ruby")
SIDEKIQ_CONCURRENCY = 5
DONE_KEY = "interop:done"  # RecordJob & co. RPUSH one JSON record per run job (jobs.rb)
# Keys a test may leave behind; cleared before each test. The processes set, identity hashes and
# stat:* belong to the running Sidekiq and are kept.
TEST_KEYS = ("interop:done", "queues", "schedule", "retry", "dead")
TEST_KEY_PATTERNS = ("queue:*", "gokogeri:*")  # gokogeri:*: a Python node's own bookkeeping

READY_TIMEOUT = 60.0  # Sidekiq boots in <1 s; a cold page cache on a busy CI box is far slower
STOP_GRACE = 30  # seconds Sidekiq gets after SIGTERM: more than its own 25 s shutdown timeout
WEB_PORT = 9292  # inside the web container
# On every container and network we create, so `podman-service.sh clean` can remove what a
# killed test run left behind without touching anyone else's containers.
LABELS = {"org.gokogeri.interop": "1"}


class InteropError(RuntimeError):
    """The interop environment could not be started or used."""


def matrix(kind: str | None = None) -> list[tuple[str, str]]:
    kind = kind or os.environ.get("INTEROP_MATRIX", "default")
    if kind == "full":
        return [(v, f) for v in SIDEKIQ_VERSIONS for f in REDIS_FLAVOURS]
    if kind == "default":
        return list(DEFAULT_MATRIX)
    raise InteropError(f"INTEROP_MATRIX must be 'default' or 'full', got {kind!r}")


def env_id(version: str, flavour: str) -> str:
    return f"{version}@{flavour}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    check: Callable[[], T | None],
    timeout: float,
    what: str,
    interval: float = 0.05,
    on_poll: Callable[[], object] | None = None,
) -> T:
    """Call ``check()`` until it returns something truthy; raise InteropError after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        if on_poll is not None:
            on_poll()
        try:
            result = check()
            if result:
                return result
        except (redispy.ConnectionError, redispy.TimeoutError, OSError) as e:
            last_error = e
        if time.monotonic() > deadline:
            suffix = f" (last error: {last_error})" if last_error else ""
            raise InteropError(f"timed out after {timeout:.0f} s waiting for {what}{suffix}")
        time.sleep(interval)


# --- podman / Docker API --------------------------------------------------------------------------


def podman_env(sock: Path) -> dict[str, str]:
    """The variables testcontainers needs against podman (see podman-service.sh for why)."""
    return {
        "DOCKER_HOST": f"unix://{sock}",
        "TESTCONTAINERS_RYUK_DISABLED": "true",
        "TESTCONTAINERS_CONNECTION_MODE": "docker_host",
        "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF", str(IMAGES_DIR / "containers.conf")),
    }


def missing_images(versions: Iterable[str], flavours: Iterable[str]) -> list[str]:
    """Images (of the ones these versions/flavours need) that podman does not have."""
    if shutil.which("podman") is None:
        return ["podman itself"]
    env = {**os.environ, "CONTAINERS_CONF": podman_env(Path())["CONTAINERS_CONF"]}
    names = [f"{IMAGE_PREFIX}/sidekiq:{SIDEKIQ_VERSIONS[v]}" for v in set(versions)]
    names += [REDIS_FLAVOURS[f] for f in set(flavours)]
    return [
        n
        for n in sorted(names)
        if subprocess.run(["podman", "image", "exists", n], env=env, check=False).returncode != 0
    ]


@dataclass
class PodmanService:
    """The Docker-API socket: an already running one, or one this session starts and stops."""

    sock: Path
    owned_run_dir: Path | None = None

    @classmethod
    def ensure(cls) -> PodmanService:
        host = os.environ.get("DOCKER_HOST", "")
        if host.startswith("unix://") and Path(host[len("unix://") :]).is_socket():
            return cls(Path(host[len("unix://") :]))
        default = INTEROP_DIR / ".run" / "podman.sock"  # where setup.sh leaves it running
        if default.is_socket() and _docker_ping(default):
            return cls(default)
        run_dir = Path(tempfile.mkdtemp(prefix="gokogeri-podman-"))
        subprocess.run(
            [str(INTEROP_DIR / "podman-service.sh"), "start"],
            env={**os.environ, "INTEROP_RUN_DIR": str(run_dir)},
            check=True,
        )
        return cls(run_dir / "podman.sock", owned_run_dir=run_dir)

    def activate(self) -> None:
        # testcontainers reads these when it is imported and when it creates its client.
        os.environ.update(podman_env(self.sock))
        from testcontainers.core.config import testcontainers_config

        testcontainers_config.ryuk_disabled = True

    def close(self) -> None:
        if self.owned_run_dir is None:
            return
        subprocess.run(
            [str(INTEROP_DIR / "podman-service.sh"), "stop"],
            env={**os.environ, "INTEROP_RUN_DIR": str(self.owned_run_dir)},
            check=False,
        )
        shutil.rmtree(self.owned_run_dir, ignore_errors=True)


def _docker_ping(sock: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        try:
            s.connect(str(sock))
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n")
            return b" 200 " in s.recv(1024)
        except OSError:
            return False


# --- the environment a test gets ------------------------------------------------------------------


@dataclass
class WebUI:
    url: str
    stop: Callable[[], None]


@dataclass
class InteropEnv:
    """A running Redis + Sidekiq pair, seen from the test process.

    ``redis_url`` reaches Redis from the host (127.0.0.1); ``sidekiq_version`` is what the
    running Sidekiq reports (``Sidekiq::VERSION``); ``series`` is the parameter it was asked for.
    """

    series: str
    flavour: str
    mode: str  # "containers" | "host"
    redis_url: str
    sidekiq_version: str = ""
    redis_version: str = ""
    _closers: list[Callable[[], object]] = field(default_factory=list, repr=False)
    _web: WebUI | None = field(default=None, repr=False)

    @property
    def id(self) -> str:
        return env_id(self.series, self.flavour)

    @property
    def major(self) -> int:
        return int(self.sidekiq_version.split(".")[0])

    def redis(self) -> redispy.Redis:
        """A new client (bytes in and out, so payloads can be compared byte for byte)."""
        return redispy.Redis.from_url(self.redis_url, socket_timeout=10)

    # Overridden by the two implementations.
    def ruby(self, script: str, *args: str, stdin: str | None = None) -> str:
        raise NotImplementedError

    def _start_web(self) -> WebUI:
        raise NotImplementedError

    def restart_sidekiq(self) -> None:
        """Stop the Ruby Sidekiq (SIGTERM: its own shutdown, which flushes its stats
        counters and leaves the ``processes`` set) and start a new one on the same Redis.

        Sidekiq flushes ``stat:*`` only on its heartbeat (5 s in 6.x, 10 s in 7/8) and at
        exit; after a restart nothing it ran is left unflushed, so Stats are exact.
        """
        raise NotImplementedError

    def ruby_json(self, script: str, *args: str, stdin: str | None = None) -> Any:
        out = self.ruby(script, *args, stdin=stdin)
        try:
            return json.loads(out)
        except json.JSONDecodeError:
            raise InteropError(f"{script} printed no JSON: {out!r}") from None

    @property
    def web_url(self) -> str:
        """Sidekiq's Web UI for this Redis (started on first use, stopped with the env)."""
        if self._web is None:
            self._web = self._start_web()
            self._closers.append(self._web.stop)
        return self._web.url

    def reset(self) -> None:
        """Forget what earlier tests left in Redis (not the running Sidekiq's own keys)."""
        r = self.redis()
        try:
            keys: list[Any] = list(TEST_KEYS)
            for pattern in TEST_KEY_PATTERNS:
                keys.extend(r.scan_iter(match=pattern, count=1000))
            r.delete(*keys)
        finally:
            r.close()

    def raw_list(self, key: str) -> list[bytes]:
        """A list's elements, head first, as the exact bytes stored."""
        r = self.redis()
        try:
            return cast(list[bytes], r.lrange(key, 0, -1))
        finally:
            r.close()

    def raw_zset(self, key: str) -> list[tuple[bytes, float]]:
        """A sorted set's (member bytes, score), lowest score first."""
        r = self.redis()
        try:
            return cast(list[tuple[bytes, float]], r.zrange(key, 0, -1, withscores=True))
        finally:
            r.close()

    def raw_set(self, key: str) -> set[bytes]:
        r = self.redis()
        try:
            return cast(set[bytes], r.smembers(key))
        finally:
            r.close()

    def done_records(self) -> list[dict[str, Any]]:
        return [json.loads(x) for x in self.raw_list(DONE_KEY)]

    def wait_done(self, jids: Sequence[str], timeout: float = 20.0) -> dict[str, dict[str, Any]]:
        """Wait until Ruby has run every job in ``jids``; their records (jobs.rb) by jid."""
        wanted = set(jids)

        def check() -> dict[str, dict[str, Any]] | None:
            found = {rec["jid"]: rec for rec in self.done_records() if rec.get("jid") in wanted}
            return found if len(found) == len(wanted) else None

        return wait_for(check, timeout, f"Sidekiq to run {len(wanted)} job(s)", interval=0.05)

    def close(self) -> None:
        while self._closers:
            closer = self._closers.pop()
            with contextlib.suppress(Exception):
                closer()


def _check_version(env: InteropEnv) -> None:
    got = env.sidekiq_version
    if got.split(".")[0] != env.series.split(".")[0]:
        raise InteropError(f"asked for Sidekiq {env.series}, the image runs {got}")


def _redis_version(url: str) -> str:
    r = redispy.Redis.from_url(url)
    try:
        info = r.info("server")
        return str(info.get("valkey_version") or info.get("redis_version"))
    finally:
        r.close()


# --- containers -----------------------------------------------------------------------------------


class ContainerEnv(InteropEnv):
    network: Network
    redis_c: DockerContainer
    sidekiq_c: DockerContainer

    @classmethod
    def start(cls, series: str, flavour: str) -> ContainerEnv:
        from testcontainers.core.container import DockerContainer
        from testcontainers.core.network import Network

        network = Network(docker_network_kw={"labels": dict(LABELS)})
        network.create()
        env = cls(series=series, flavour=flavour, mode="containers", redis_url="")
        env.network = network
        env._closers.append(network.remove)
        try:
            # Published on the host's loopback only; Sidekiq reaches it by its network alias.
            env.redis_c = (
                DockerContainer(REDIS_FLAVOURS[flavour])
                .with_kwargs(labels=dict(LABELS))
                .with_network(network)
                .with_network_aliases("redis")
            )
            _publish_on_loopback(env.redis_c, 6379)
            env.redis_c.start()
            env._closers.append(lambda: _stop_container(env.redis_c, grace=2))
            port = env.redis_c.get_exposed_port(6379)
            env.redis_url = f"redis://127.0.0.1:{port}/0"
            _wait_ping(env, f"{flavour} to answer PING")
            env.redis_version = _redis_version(env.redis_url)

            env._start_sidekiq()
            # Looks env.sidekiq_c up when called: restart_sidekiq replaces it.
            env._closers.append(lambda: _stop_container(env.sidekiq_c, grace=STOP_GRACE))
            env.sidekiq_version = env.ruby_version()
            _check_version(env)
        except BaseException:
            env.close()
            raise
        return env

    def _start_sidekiq(self) -> None:
        from testcontainers.core.container import DockerContainer

        self.sidekiq_c = (
            DockerContainer(f"{IMAGE_PREFIX}/sidekiq:{SIDEKIQ_VERSIONS[self.series]}")
            .with_kwargs(labels=dict(LABELS))
            .with_network(self.network)
            .with_env("REDIS_URL", "redis://redis:6379/0")
            .with_volume_mapping(str(RUBY_DIR), CONTAINER_RUBY_DIR, "ro")
            .with_command(_sidekiq_command(f"{CONTAINER_RUBY_DIR}/jobs.rb"))
        )
        before = _processes(self)
        self.sidekiq_c.start()
        _wait_sidekiq_ready(self, before, on_poll=lambda: _check_running(self.sidekiq_c, "Sidekiq"))

    def restart_sidekiq(self) -> None:
        _stop_container(self.sidekiq_c, grace=STOP_GRACE)
        self._start_sidekiq()

    def ruby_version(self) -> str:
        return self._exec(["ruby", "-rsidekiq", "-e", "print Sidekiq::VERSION"]).strip()

    def ruby(self, script: str, *args: str, stdin: str | None = None) -> str:
        cmd = ["ruby", f"{CONTAINER_RUBY_DIR}/{script}", *args]
        if stdin is None:
            return self._exec(cmd)
        # The Docker exec API has no simple stdin; hand it over through the environment.
        piped = 'printf %s "$INTEROP_STDIN" | exec "$@"'
        return self._exec(["sh", "-c", piped, "sh", *cmd], {"INTEROP_STDIN": stdin})

    def _exec(self, cmd: list[str], environment: Mapping[str, str] | None = None) -> str:
        wrapped = self.sidekiq_c.get_wrapped_container()
        code, (out, err) = wrapped.exec_run(cmd, demux=True, environment=dict(environment or {}))
        stdout = (out or b"").decode()
        if code != 0:
            stderr = (err or b"").decode()
            raise InteropError(f"{' '.join(cmd)} exited {code}:\n{stderr}{stdout}")
        return stdout

    def _start_web(self) -> WebUI:
        from testcontainers.core.container import DockerContainer

        web = (
            DockerContainer(f"{IMAGE_PREFIX}/sidekiq:{SIDEKIQ_VERSIONS[self.series]}")
            .with_kwargs(labels=dict(LABELS))
            .with_network(self.network)
            .with_env("REDIS_URL", "redis://redis:6379/0")
            .with_volume_mapping(str(RUBY_DIR), CONTAINER_RUBY_DIR, "ro")
            # 0.0.0.0 inside the container's own network namespace; the host sees 127.0.0.1 only.
            .with_command(f"rackup -s puma -o 0.0.0.0 -p {WEB_PORT} {CONTAINER_RUBY_DIR}/config.ru")
        )
        _publish_on_loopback(web, WEB_PORT)
        web.start()
        try:
            url = f"http://127.0.0.1:{web.get_exposed_port(WEB_PORT)}"
            _wait_http(url, on_poll=lambda: _check_running(web, "the Web UI"))
        except BaseException:
            _stop_container(web, grace=5)
            raise
        return WebUI(url=url, stop=lambda: _stop_container(web, grace=5))


def _sidekiq_command(jobs_rb: str) -> list[str]:
    cmd = ["sidekiq", "-r", jobs_rb]
    for q in SIDEKIQ_QUEUES:
        cmd += ["-q", q]
    return [*cmd, "-c", str(SIDEKIQ_CONCURRENCY)]


def _publish_on_loopback(container: DockerContainer, port: int) -> None:
    """Publish ``port`` on a random port of the host's 127.0.0.1 only.

    testcontainers' with_bind_ports cannot name a host address, but the docker client it
    passes ``ports`` to takes an (address, port) pair.
    """
    ports = cast(dict[str, Any], container.ports)
    ports[f"{port}/tcp"] = ("127.0.0.1", None)


def _check_running(container: DockerContainer, what: str) -> None:
    wrapped = container.get_wrapped_container()
    wrapped.reload()
    if wrapped.status not in ("created", "running"):
        logs = wrapped.logs().decode(errors="replace")
        raise InteropError(f"{what} container exited ({wrapped.status}):\n{logs[-4000:]}")


def _stop_container(container: DockerContainer, grace: int) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds (the engine does that), then remove."""
    wrapped = container.get_wrapped_container()
    with contextlib.suppress(Exception):
        wrapped.stop(timeout=grace)
    container.stop()  # testcontainers: force-remove the container and its anonymous volumes


# --- host fallback --------------------------------------------------------------------------------


class HostEnv(InteropEnv):
    workdir: Path
    redis_proc: subprocess.Popen[bytes]
    sidekiq_proc: subprocess.Popen[bytes]

    @classmethod
    def start(cls) -> HostEnv:
        for tool in ("redis-server", "sidekiq", "ruby"):
            if shutil.which(tool) is None:
                raise InteropError(
                    f"host mode needs {tool} (apt-get install redis-server ruby-sidekiq)"
                )
        workdir = Path(tempfile.mkdtemp(prefix="gokogeri-interop-"))
        port = free_port()
        env = cls(
            series="6.4.1",
            flavour=HOST_FLAVOUR,
            mode="host",
            redis_url=f"redis://127.0.0.1:{port}/0",
        )
        env.workdir = workdir
        env._closers.append(lambda: shutil.rmtree(workdir, ignore_errors=True))
        try:
            env.redis_proc = _spawn(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(workdir)],
                workdir / "redis.log",
            )  # fmt: skip
            env._closers.append(lambda: _stop_process(env.redis_proc, grace=10))
            _wait_ping(env, "redis-server to answer PING",
                       on_poll=lambda: _check_alive(env.redis_proc, workdir / "redis.log"))  # fmt: skip
            env.redis_version = _redis_version(env.redis_url)
            env._start_sidekiq()
            env._closers.append(lambda: _stop_process(env.sidekiq_proc, grace=STOP_GRACE))
            env.sidekiq_version = subprocess.run(
                ["ruby", "-rsidekiq", "-e", "print Sidekiq::VERSION"],
                capture_output=True, text=True, check=True,
            ).stdout.strip()  # fmt: skip
            _check_version(env)
        except BaseException:
            env.close()
            raise
        return env

    def _start_sidekiq(self) -> None:
        log = self.workdir / "sidekiq.log"
        before = _processes(self)
        self.sidekiq_proc = _spawn(
            _sidekiq_command(str(RUBY_DIR / "jobs.rb")), log, env=self._ruby_env()
        )
        _wait_sidekiq_ready(self, before, on_poll=lambda: _check_alive(self.sidekiq_proc, log))

    def restart_sidekiq(self) -> None:
        _stop_process(self.sidekiq_proc, grace=STOP_GRACE)
        self._start_sidekiq()

    def _ruby_env(self) -> dict[str, str]:
        return {**os.environ, "REDIS_URL": self.redis_url}

    def ruby(self, script: str, *args: str, stdin: str | None = None) -> str:
        cmd = ["ruby", str(RUBY_DIR / script), *args]
        res = subprocess.run(
            cmd, input=stdin, capture_output=True, text=True, env=self._ruby_env(), timeout=60
        )
        if res.returncode != 0:
            raise InteropError(
                f"{' '.join(cmd)} exited {res.returncode}:\n{res.stderr}{res.stdout}"
            )
        return res.stdout

    def _start_web(self) -> WebUI:
        port = free_port()
        server = "puma" if shutil.which("puma") else "webrick"
        log = self.workdir / "web.log"
        proc = _spawn(
            [
                "rackup",
                "-s",
                server,
                "-o",
                "127.0.0.1",
                "-p",
                str(port),
                str(RUBY_DIR / "config.ru"),
            ],
            log,
            env=self._ruby_env(),
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_http(url, on_poll=lambda: _check_alive(proc, log))
        except BaseException:
            _stop_process(proc, grace=5)
            raise
        return WebUI(url=url, stop=lambda: _stop_process(proc, grace=5))


def _spawn(
    cmd: list[str], log: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None, cwd=log.parent,
        )  # fmt: skip


def _check_alive(proc: subprocess.Popen[bytes], log: Path) -> None:
    if proc.poll() is not None:
        tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
        raise InteropError(f"{proc.args!r} exited with {proc.returncode}:\n{tail}")


def _stop_process(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM (Sidekiq and Redis shut down cleanly on it), SIGKILL after ``grace`` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- shared ---------------------------------------------------------------------------------------


def _wait_ping(env: InteropEnv, what: str, on_poll: Callable[[], object] | None = None) -> None:
    r = env.redis()
    try:
        wait_for(lambda: r.ping(), 30, what, on_poll=on_poll)
    finally:
        r.close()


def _processes(env: InteropEnv) -> set[bytes]:
    r = env.redis()
    try:
        return cast(set[bytes], r.smembers("processes"))
    finally:
        r.close()


def _wait_sidekiq_ready(env: InteropEnv, before: set[bytes], on_poll: Callable[[], object]) -> None:
    """Sidekiq is ready once its heartbeat has put it in the ``processes`` set.

    Ready means a member that was not there ``before`` the start: on a restart, a Python
    node (or a killed Sidekiq's leftover entry) may already be in the set.
    """
    r = env.redis()
    try:
        wait_for(lambda: cast(set[bytes], r.smembers("processes")) - before, READY_TIMEOUT,
                 "Sidekiq's heartbeat", interval=0.05, on_poll=on_poll)  # fmt: skip
    finally:
        r.close()


def _wait_http(url: str, on_poll: Callable[[], object]) -> None:
    def check() -> bool:
        try:
            with urllib.request.urlopen(url + "/", timeout=5) as resp:
                return int(resp.status) == 200
        except (urllib.error.URLError, ConnectionError):
            return False

    wait_for(check, READY_TIMEOUT, f"the Web UI at {url}", interval=0.1, on_poll=on_poll)


@contextlib.contextmanager
def started(series: str, flavour: str, mode: str) -> Iterator[InteropEnv]:
    env: InteropEnv = HostEnv.start() if mode == "host" else ContainerEnv.start(series, flavour)
    try:
        yield env
    finally:
        env.close()
