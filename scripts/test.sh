#!/usr/bin/env bash
# The whole test suite: lint, generated artefacts up to date, then pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
echo "== ruff"
ruff check .
echo "== generated files are fresh"
dgpo prove --method all --check
dgpo gen-tests --check
echo "== pytest"
python -m pytest -q --ignore=tests/integrations/verl "$@"
bash scripts/setup_verl.sh && .venv-verl/bin/python -m pytest -q -p no:cacheprovider tests/integrations/verl  # verl needs its own env (docs/scale.md)
