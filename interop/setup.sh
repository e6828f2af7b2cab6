#!/usr/bin/env bash
# One idempotent entry point that prepares a fresh Debian 12 machine for the interop suite:
#   1. apt packages (only the missing ones; apt-get update only when something is missing)
#   2. the Python test dependencies (only when they cannot be imported)
#   3. the container images (only the missing ones, see images/build.sh)
#   4. the podman Docker-API service (left running; stop with interop/podman-service.sh stop)
# Then run:  eval "$(interop/podman-service.sh env)"; python -m pytest interop -q
# (the conftest also finds the service by itself, so the eval is optional).
# Env: PYTHON (default python3), INTEROP_SKIP_IMAGES=1 (host-only setup: no podman images).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"
start=$SECONDS
log() { printf '[setup.sh %(%H:%M:%S)T +%ss] %s\n' -1 "$((SECONDS - start))" "$*" >&2; }

# redis-server, ruby-sidekiq: the host fallback (no containers) runs real Redis and Sidekiq 6.4.1;
# puma/ruby-webrick: its Web UI; podman/runc/debootstrap: the container route and image builds;
# chromium: headless screenshots of Sidekiq's Web UI; ruby-activejob: Rails ActiveJob interop;
# redis-sentinel: the failover tests.
PACKAGES=(redis-server redis-sentinel ruby ruby-sidekiq ruby-activejob puma ruby-webrick podman runc debootstrap chromium curl openssl)
missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    log "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
    log "apt packages present"
fi
# apt's redis-server package may start a daemon on 6379 on machines with an init system; the
# suite never uses it (every test starts its own server), so it is left alone.

if ! "$PYTHON" -c 'import pytest, redis, testcontainers' 2>/dev/null; then
    log "pip install test dependencies"
    # Debian's own python3 refuses system-wide pip installs (PEP 668): point PYTHON at a venv.
    "$PYTHON" -m pip install -q 'pytest>=8' 'redis>=5' 'testcontainers>=4.8' || {
        log "pip install failed; create a virtualenv and rerun with PYTHON=/path/to/venv/bin/python"
        exit 1
    }
else
    log "python test dependencies present"
fi

if [[ "${INTEROP_SKIP_IMAGES:-0}" != 1 ]]; then
    log "images"
    "$HERE/images/build.sh"
fi

"$HERE/podman-service.sh" start
log "done; environment for the tests:"
"$HERE/podman-service.sh" env
