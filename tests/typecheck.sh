#!/usr/bin/env bash
# mypy --strict over the whole distribution as users import it: gokogeri with
# codegen/ mounted as gokogeri.codegen. setuptools' editable finder is invisible
# to mypy, so a symlink tree gives mypy the installed layout.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tree="$(mktemp -d)"
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/gokogeri"
for entry in "$root"/gokogeri/*; do
  ln -s "$entry" "$tree/gokogeri/"
done
ln -s "$root/codegen" "$tree/gokogeri/codegen"
cd "$tree"
MYPYPATH="$tree" mypy --config-file "$root/pyproject.toml" -p gokogeri "$@"
# The example project (its generated job package included), against the same tree.
ln -s "$root/examples/example_app" "$tree/example_app"
MYPYPATH="$tree" mypy --config-file "$root/pyproject.toml" -p example_app "$@"
