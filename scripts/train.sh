#!/usr/bin/env bash
# The main job: `dgpo train` on its built-in default (SmolLM2-135M-Instruct, arithmetic, DGPO n=1 m=2)
# into runs/default; extra arguments go to `dgpo train` (e.g. --preset smoke, --set loss=grpo, --resume).
set -euo pipefail
exec dgpo train "$@"
