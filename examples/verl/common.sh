#!/usr/bin/env bash
# Shared by the launch scripts in this folder (sourced, not run): verl 0.9.x overrides that train
# DeepSeek-R1-Distill-Qwen-1.5B with DGPO in the paper's setting. tests/integrations/verl composes
# exactly these overrides with verl's own ppo_trainer config and builds the actor config from them.
#
# The paper's setting (shared/PAPER.md): GRPO advantages, no KL term (neither in the reward nor as a
# loss), token-mean aggregation, several mini-batch updates per rollout batch (that is what moves
# the ratio off 1, where DGPO differs from the policy gradient), vLLM rollout, n = 2 and m = 2 for
# 1.5B models. The paper does not publish eps, learning rate or batch sizes: eps are dgpo_ref's
# defaults (0.2, 0.2); lr, 1 024 prompts per rollout in 4 mini-batches of 256 and 5 samples per
# prompt are the values of the authors' verl example script. Every value can be changed by
# exporting the variable before launching, or by appending `key=value` arguments to the script.

MODEL="${MODEL:-deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B}"
TRAIN_FILES="${TRAIN_FILES:-$HOME/data/dgpo/train.parquet}"
VAL_FILES="${VAL_FILES:-$HOME/data/dgpo/test.parquet}"
DGPO_N="${DGPO_N:-2}"
DGPO_M="${DGPO_M:-2}"
EPS_LOW="${EPS_LOW:-0.2}"
EPS_HIGH="${EPS_HIGH:-0.2}"
LR="${LR:-4.63e-7}"
PROMPTS_PER_ROLLOUT="${PROMPTS_PER_ROLLOUT:-1024}"
PROMPTS_PER_MINI_BATCH="${PROMPTS_PER_MINI_BATCH:-256}"
SAMPLES_PER_PROMPT="${SAMPLES_PER_PROMPT:-5}"
MAX_PROMPT_LENGTH="${MAX_PROMPT_LENGTH:-1024}"
MAX_RESPONSE_LENGTH="${MAX_RESPONSE_LENGTH:-8192}"
GPUS_PER_NODE="${GPUS_PER_NODE:-8}"
NNODES="${NNODES:-1}"
EXPERIMENT="${EXPERIMENT:-dgpo-r1-distill-1.5b-n${DGPO_N}-m${DGPO_M}}"

# The launcher: `python3 -m verl.trainer.main_ppo` unless VERL_PYTHON names another interpreter.
VERL_PYTHON="${VERL_PYTHON:-python3}"

DGPO_OVERRIDES=(
  # --- the loss: dgpo from this package's verl plugin, hyper-parameters through its config class
  actor_rollout_ref.actor.policy_loss.loss_mode=dgpo
  actor_rollout_ref.actor.policy_loss._target_=dgpo_ref.integrations.verl_plugin.DGPOPolicyLossConfig
  +actor_rollout_ref.actor.policy_loss.n="$DGPO_N"
  +actor_rollout_ref.actor.policy_loss.m="$DGPO_M"
  actor_rollout_ref.actor.clip_ratio_low="$EPS_LOW"
  actor_rollout_ref.actor.clip_ratio_high="$EPS_HIGH"
  actor_rollout_ref.actor.loss_agg_mode=token-mean
  # --- GRPO advantages, no KL anywhere, no entropy bonus
  algorithm.adv_estimator=grpo
  algorithm.use_kl_in_reward=False
  actor_rollout_ref.actor.use_kl_loss=False
  actor_rollout_ref.actor.entropy_coeff=0
  # --- several mini-batch updates per rollout batch
  data.train_batch_size="$PROMPTS_PER_ROLLOUT"
  actor_rollout_ref.actor.ppo_mini_batch_size="$PROMPTS_PER_MINI_BATCH"
  actor_rollout_ref.actor.ppo_epochs=1
  actor_rollout_ref.actor.use_dynamic_bsz=True
  actor_rollout_ref.actor.ppo_max_token_len_per_gpu=$(( 2 * (MAX_PROMPT_LENGTH + MAX_RESPONSE_LENGTH) ))
  actor_rollout_ref.actor.optim.lr="$LR"
  # --- model and data
  actor_rollout_ref.model.path="$MODEL"
  actor_rollout_ref.model.use_remove_padding=True
  actor_rollout_ref.model.enable_gradient_checkpointing=True
  data.train_files="$TRAIN_FILES"
  data.val_files="$VAL_FILES"
  data.max_prompt_length="$MAX_PROMPT_LENGTH"
  data.max_response_length="$MAX_RESPONSE_LENGTH"
  data.filter_overlong_prompts=True
  data.truncation=error
  # --- vLLM rollout
  actor_rollout_ref.rollout.name=vllm
  actor_rollout_ref.rollout.n="$SAMPLES_PER_PROMPT"
  actor_rollout_ref.rollout.tensor_model_parallel_size=1
  actor_rollout_ref.rollout.gpu_memory_utilization=0.6
  actor_rollout_ref.rollout.log_prob_use_dynamic_bsz=True
  actor_rollout_ref.rollout.log_prob_max_token_len_per_gpu=$(( 2 * (MAX_PROMPT_LENGTH + MAX_RESPONSE_LENGTH) ))
  # --- trainer
  trainer.critic_warmup=0
  trainer.logger='["console"]'
  trainer.project_name=dgpo
  trainer.experiment_name="$EXPERIMENT"
  trainer.n_gpus_per_node="$GPUS_PER_NODE"
  trainer.nnodes="$NNODES"
  trainer.save_freq=50
  trainer.test_freq=10
  trainer.total_epochs=15
)
