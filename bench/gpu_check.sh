#!/usr/bin/env bash
# Issue 7's one GPU run (see bench/gpu_check.py). Run from the repository root on the GPU machine,
# whose python3 already has torch and transformers; results go to $OUT (or ./gpu_out).
set -uo pipefail
out="${OUT:-gpu_out}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/nvidia-smi.csv" 2>&1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, torch.cuda.get_device_name(0))"
python3 -m bench.gpu_check --out "$out/gpu.json" "$@" 2>&1 | tee "$out/gpu.log"
