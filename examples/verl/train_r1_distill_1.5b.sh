#!/usr/bin/env bash
# DGPO on DeepSeek-R1-Distill-Qwen-1.5B with verl 0.9.x on ONE node (8 GPUs by default).
#
# Needs, in the environment that runs this: verl 0.9.x with its GPU extras (e.g. `pip install
# 'verl[vllm]==0.9.1'`) and this package (`pip install -e '.[verl]'`), whose `verl.plugins` entry
# point registers the dgpo loss in every process verl starts. Data: parquet files in verl's RL
# format (verl's examples/data_preprocess/*.py write them), paths in TRAIN_FILES / VAL_FILES.
#
#   bash examples/verl/train_r1_distill_1.5b.sh                       # the settings in common.sh
#   DGPO_N=1 GPUS_PER_NODE=4 bash examples/verl/train_r1_distill_1.5b.sh trainer.total_epochs=1
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=examples/verl/common.sh
. "$here/common.sh"

# verl ignores a plugin that fails to import, and some settings replace the loss: check both here,
# with the interpreter that trains and the overrides it gets (dgpo verl-check, docs/scale.md).
"$VERL_PYTHON" -m dgpo_cli verl-check "${DGPO_OVERRIDES[@]}" "$@"
exec "$VERL_PYTHON" -m verl.trainer.main_ppo "${DGPO_OVERRIDES[@]}" "$@"
