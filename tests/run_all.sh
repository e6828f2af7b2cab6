#!/usr/bin/env bash
# Installs everything gokogeri's tests need on a fresh Debian 12 machine, then
# runs the unit/integration suite and the interop suite. Idempotent: what is
# already installed or built is skipped. CI (.ci/run) calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
need=()
for pkg in redis-server ruby ruby-sidekiq; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if ((${#need[@]})); then
  apt-get update -q
  apt-get install -y -q "${need[@]}"
fi

python3 -m pip install -q --disable-pip-version-check -e '.[dev]'

echo "== static checks"
ruff check gokogeri codegen tests
bash tests/typecheck.sh

echo "== tests"
python3 -m pytest tests "$@"
