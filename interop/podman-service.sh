#!/usr/bin/env bash
# Serve the Docker API from podman so testcontainers-python can drive it (there is no Docker
# engine on these machines).
#
# Usage: podman-service.sh start|stop|status|env
#   start   start `podman system service` on a unix socket under interop/.run (idempotent)
#   stop    stop it by the PID recorded at start
#   env     print the export lines the test process needs (eval "$(interop/podman-service.sh env)")
#   clean   remove containers and networks a killed test run left behind (label org.gokogeri.interop)
# Env: INTEROP_RUN_DIR (default interop/.run) holds podman.sock, podman.pid and podman.log.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RUN_DIR="${INTEROP_RUN_DIR:-$HERE/.run}"
SOCK="$RUN_DIR/podman.sock"
PID_FILE="$RUN_DIR/podman.pid"
LOG_FILE="$RUN_DIR/podman.log"
# The service starts the containers, so it (not only the client) needs runc + ulimits.
export CONTAINERS_CONF="${CONTAINERS_CONF:-$HERE/images/containers.conf}"

running_pid() {
    local pid
    [[ -f "$PID_FILE" ]] || return 1
    pid="$(cat "$PID_FILE")"
    # A stale pid file (machine rebooted, process died) must not match an unrelated process.
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null &&
        tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "system service" || return 1
    echo "$pid"
}

print_env() {
    cat <<E
export DOCKER_HOST=unix://$SOCK
export TESTCONTAINERS_RYUK_DISABLED=true
export TESTCONTAINERS_CONNECTION_MODE=docker_host
export CONTAINERS_CONF=$CONTAINERS_CONF
E
}
# Why the three testcontainers variables: the Ryuk reaper image cannot be pulled (no Docker Hub),
# and the machines carry a /.dockerenv marker that makes testcontainers look for a gateway IP
# through a Docker-only API field (KeyError 'HostConfig' against podman).

start() {
    local pid
    if pid="$(running_pid)"; then
        echo "podman service already running (pid $pid, $SOCK)" >&2
        return 0
    fi
    command -v podman >/dev/null || { echo "podman is not installed (run interop/setup.sh)" >&2; exit 1; }
    mkdir -p "$RUN_DIR"
    rm -f "$SOCK"
    # --time=0: never exit on idle, tests may pause longer than the default 5 s between calls.
    # setsid: the service must outlive the shell that started it (setup.sh, a CI step).
    setsid podman system service --time=0 "unix://$SOCK" >"$LOG_FILE" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$PID_FILE"
    for _ in $(seq 1 100); do
        # The socket appears when the service listens; ping it too when curl is around.
        if [[ -S "$SOCK" ]] && { ! command -v curl >/dev/null ||
            curl -sf --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1; }; then
            echo "podman service started (pid $pid, $SOCK)" >&2
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "podman service did not come up; log:" >&2
    cat "$LOG_FILE" >&2 || true
    kill "$pid" 2>/dev/null || true
    rm -f "$PID_FILE"
    exit 1
}

stop() {
    local pid
    if ! pid="$(running_pid)"; then
        echo "podman service not running" >&2
        rm -f "$PID_FILE"
        return 0
    fi
    kill -TERM "$pid"
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$PID_FILE" "$SOCK"
    echo "podman service stopped (pid $pid)" >&2
}

# Only what carries our label: other users of podman on the machine are left alone.
clean() {
    local ids
    ids="$(podman ps -aq --filter label=org.gokogeri.interop=1)"
    if [[ -n "$ids" ]]; then
        # shellcheck disable=SC2086  # one id per word
        podman rm -f -t 5 $ids >/dev/null
    fi
    ids="$(podman network ls -q --filter label=org.gokogeri.interop=1)"
    if [[ -n "$ids" ]]; then
        # shellcheck disable=SC2086
        podman network rm -f $ids >/dev/null
    fi
    echo "removed leftover interop containers/networks (if any)" >&2
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) if pid="$(running_pid)"; then echo "running (pid $pid, $SOCK)"; else echo "stopped"; exit 1; fi ;;
    env) print_env ;;
    clean) clean ;;
    *) sed -n '2,11p' "${BASH_SOURCE[0]}" >&2; exit 2 ;;
esac
