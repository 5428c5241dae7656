"""DGPO on DeepSeek-R1-Distill-Qwen-1.5B with TRL 1.16.x (DGPOTrainer), one or several nodes.

The same setting as examples/verl/common.sh: GRPO advantages (TRL's group mean/std), no KL
(beta=0), token-mean over the generation batch (TRL's ``dapo`` normalization), 1 024 prompts x 5
samples per generation batch updated in 4 optimizer steps (so the ratio leaves 1), vLLM rollout,
n = 2 and m = 2. The reward is TRL's ``accuracy_reward`` (math-verify parses the answer; nothing
the model writes is executed). Data: a parquet/json file with a ``prompt`` column (chat messages)
and a ``solution`` column.

    accelerate launch --num_processes 8 examples/trl/train_r1_distill_1.5b.py --data train.parquet
    # several nodes: accelerate launch --num_machines N --machine_rank R --main_process_ip HEAD ...
    # any DGPOConfig / GRPOConfig field is a flag: --n 1 --learning_rate 1e-6 --output_dir runs/x
"""

from __future__ import annotations

import sys

PAPER_SETTING = dict(
    loss_name="dgpo", n=2, m=2, epsilon=0.2, epsilon_high=0.2,
    beta=0.0, loss_type="dapo", scale_rewards="group",
    num_generations=5,  # samples per prompt
    per_device_train_batch_size=8,  # completions per GPU per micro-step
    gradient_accumulation_steps=20,  # 8 GPUs x 8 x 20 = 1 280 completions = 256 prompts per optimizer step
    steps_per_generation=80,  # 8 x 8 x 80 = 5 120 completions = 1 024 prompts: 4 optimizer steps each
    num_iterations=1,
    learning_rate=4.63e-7, lr_scheduler_type="constant", max_grad_norm=1.0,
    max_completion_length=8192, temperature=1.0,
    use_vllm=True, vllm_mode="colocate", vllm_gpu_memory_utilization=0.5,
    bf16=True, gradient_checkpointing=True,
    logging_steps=1, save_steps=50, report_to="none", output_dir="runs/trl-dgpo-r1-distill-1.5b",
)
MODEL = "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"


def build_config(argv: list[str]):
    """(DGPOConfig, data path, model) from command-line flags over ``PAPER_SETTING``."""
    from transformers import HfArgumentParser

    from dgpo_ref.integrations.trl import DGPOConfig

    parser = HfArgumentParser(DGPOConfig)
    parser.set_defaults(**PAPER_SETTING)
    parser.add_argument("--data", required=True, help="parquet or json file with prompt and solution columns")
    parser.add_argument("--model", default=MODEL, help=f"model name or folder (default: {MODEL})")
    config, extra = parser.parse_args_into_dataclasses(args=argv)
    return config, extra.data, extra.model


def main(argv: list[str]) -> int:
    from datasets import load_dataset
    from trl.rewards import accuracy_reward

    from dgpo_ref.integrations.trl import DGPOTrainer

    config, data, model = build_config(argv)
    kind = "parquet" if data.endswith(".parquet") else "json"
    dataset = load_dataset(kind, data_files=data, split="train")
    DGPOTrainer(model=model, reward_funcs=accuracy_reward, args=config, train_dataset=dataset).train()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
