#!/usr/bin/env bash
# Installs everything gokogeri's tests need on a fresh Debian 12 machine, then
# runs the static checks, the test suite (real Redis, real Sidekiq 6.4.1) and
# the interop suite (Sidekiq 6.4.1, 7.3.2 and 8.1.7 in podman containers).
# Idempotent: packages, Python deps and container images that exist are reused.
# CI (.ci/run) calls exactly this. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"

# Debian packages, container images (built offline from Debian rootfs, only
# when missing) and podman's Docker-API service for testcontainers.
PYTHON="$PYTHON" bash interop/setup.sh
# Stop the podman service we may have started, whatever happens next.
trap 'bash interop/podman-service.sh stop >/dev/null 2>&1 || true' EXIT

"$PYTHON" -m pip install -q --disable-pip-version-check -e '.[dev]'

echo "== static checks"
ruff check gokogeri codegen tests interop bench examples
bash tests/typecheck.sh
mypy --strict --explicit-package-bases tests/faults

echo "== tests and interop"
"$PYTHON" -m pytest tests interop -p no:cacheprovider "$@"

echo "== the example project's own suite (gokogeri's pytest plugin)"
(cd examples && "$PYTHON" -m pytest -q -p no:cacheprovider)
