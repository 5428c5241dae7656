#!/usr/bin/env bash
# DGPO on DeepSeek-R1-Distill-Qwen-1.5B with verl 0.9.x on SEVERAL nodes (a Ray cluster).
#
# Every node needs the same environment as the single-node script (verl with GPU extras and this
# package installed: the entry point registers the loss in each Ray worker) and the data at the
# same paths. Start the cluster, then launch from the head node:
#
#   head node:    ray start --head --port=6379
#   other nodes:  ray start --address=<head-ip>:6379
#   head node:    NNODES=4 bash examples/verl/train_r1_distill_1.5b_multinode.sh
#
# NNODES x GPUS_PER_NODE GPUs train one model with FSDP; the loss is normalized over the global
# batch (verl's global_batch_info), so results do not depend on the number of nodes.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${NNODES:?set NNODES to the number of nodes in the Ray cluster (e.g. NNODES=4)}"
if [ "$NNODES" -lt 2 ]; then
  echo "NNODES=$NNODES: use examples/verl/train_r1_distill_1.5b.sh for one node" >&2
  exit 2
fi
# shellcheck source=examples/verl/common.sh
. "$here/common.sh"
export RAY_ADDRESS="${RAY_ADDRESS:-auto}"  # join the running cluster instead of starting one

# the check runs with the interpreter that trains and the overrides it gets (docs/scale.md)
"$VERL_PYTHON" -m dgpo_cli verl-check "${DGPO_OVERRIDES[@]}" "$@"
exec "$VERL_PYTHON" -m verl.trainer.main_ppo "${DGPO_OVERRIDES[@]}" "$@"
