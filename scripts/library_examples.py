"""Recompute the library rows of the method records with the libraries' own torch code (prints JSON).

    .venv/bin/python scripts/library_examples.py trl        # TRL 1.16 (the trl extra)
    .venv-verl/bin/python scripts/library_examples.py verl  # verl 0.9.1 (scripts/setup_verl.sh)

Standalone (torch and the library only, no spec import), so it runs in either environment. Each
example is one completion token with p_old = 0.4 (one token: every aggregation divides by 1),
float64, the library's default hyper-parameters; V = −(d loss / d log_prob)/A. The values are
copied into each record's ``library`` (``LibraryExample`` rows, spec/methods/<name>.py);
tests/test_spec_library.py checks them against the record's SymPy weight and surrogate.
"""

from __future__ import annotations

import json
import math
import sys
from collections import defaultdict
from types import SimpleNamespace

import torch

P_OLD = 0.4
POINTS = {
    "sapo": [(0.5, -1.0), (1.3, 1.0), (2.0, -0.5)],
    "vespo": [(0.5, -1.0), (1.3, 1.0), (2.0, -0.5)],
    "gpg": [(0.5, -1.0), (1.3, 1.0), (2.0, -0.5)],
    "dppo_tv": [(0.6, -1.0), (1.3, 1.0), (1.6, 1.0), (2.0, -0.5)],
    "dppo_kl": [(0.6, -1.0), (0.3, -1.0), (1.6, 1.0), (2.0, 1.0)],
    "tis": [(0.1, -1.0), (1.3, 1.0), (3.0, -0.5)],
}
VERL_CALL = ('loss, _ = get_policy_loss_fn("{mode}")(old_log_prob, log_prob, advantages, response_mask, '
             '"token-mean", ActorConfig(strategy="fsdp", rollout_n=1, ppo_micro_batch_size_per_gpu=1)); '
             'loss.backward()')
TRL_CALL = ('loss = GRPOTrainer._compute_loss(trainer, None, inputs); loss.backward()  # trainer: GRPOConfig('
            'loss_type="{mode}") defaults, _get_per_token_logps_and_entropies returning log_prob')


def _tensors(r: float, adv: float):
    old = torch.tensor([[math.log(P_OLD)]], dtype=torch.float64)
    new = (old + math.log(r)).clone().requires_grad_(True)
    return old, new, torch.tensor([[adv]], dtype=torch.float64)


def verl_example(mode: str, r: float, adv: float) -> dict:
    from verl.trainer.config.algorithm import RolloutCorrectionConfig
    from verl.trainer.ppo.core_algos import get_policy_loss_fn
    from verl.workers.config.actor import ActorConfig, PolicyLossConfig

    extra = {}
    if mode == "bypass_mode":  # REINFORCE with token-level truncated IS (threshold 2.0 by default)
        extra["policy_loss"] = PolicyLossConfig(loss_mode=mode, rollout_correction=RolloutCorrectionConfig(
            rollout_is="token", loss_type="reinforce"))
    config = ActorConfig(strategy="fsdp", rollout_n=1, ppo_micro_batch_size_per_gpu=1, **extra)
    config.global_batch_info.update(dp_size=1, batch_num_tokens=1, global_batch_size=1)
    old_log_prob, log_prob, advantages = _tensors(r, adv)
    response_mask = torch.ones_like(old_log_prob)
    loss, _ = get_policy_loss_fn(mode)(old_log_prob, log_prob, advantages, response_mask, "token-mean", config)
    loss.backward()
    call = VERL_CALL.format(mode=mode)
    if extra:
        call = call.replace("ppo_micro_batch_size_per_gpu=1)", "ppo_micro_batch_size_per_gpu=1, policy_loss=PolicyLossConfig("
                            'loss_mode="bypass_mode", rollout_correction=RolloutCorrectionConfig(rollout_is="token", '
                            'loss_type="reinforce")))')
    return _row("verl", call, r, adv, loss, log_prob.grad)


class _Accelerator:
    num_processes = 1
    sync_gradients = True

    def gather(self, x):
        return x

    gather_for_metrics = gather

    def reduce(self, x, reduction="sum"):
        return x


def trl_example(mode: str, r: float, adv: float) -> dict:
    from trl import GRPOConfig
    from trl.trainer.grpo_trainer import GRPOTrainer

    args = GRPOConfig(output_dir="/tmp/dgpo-library-examples-trl", loss_type=mode, report_to=[], bf16=False, use_cpu=True)
    old_log_prob, log_prob, advantages = _tensors(r, adv)
    trainer = SimpleNamespace(
        args=args, loss_type=mode, top_entropy_quantile=1.0, off_policy_mask_threshold=None,
        importance_sampling_level=args.importance_sampling_level, beta=0.0, use_vllm=False,
        epsilon_low=args.epsilon, epsilon_high=args.epsilon_high if args.epsilon_high is not None else args.epsilon,
        aux_loss_enabled=False, _entropy_bonus_enabled=False, model=SimpleNamespace(training=True),
        current_gradient_accumulation_steps=1, accelerator=_Accelerator(), max_completion_length=1,
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
        get_gamma_weights=GRPOTrainer.get_gamma_weights, get_off_policy_mask=GRPOTrainer.get_off_policy_mask,
        _get_per_token_logps_and_entropies=lambda *a, **k: (log_prob, torch.zeros_like(log_prob), None),
    )
    one = torch.ones(1, 1, dtype=torch.long)
    inputs = {"prompt_ids": one * 0, "prompt_mask": one, "completion_ids": one * 0, "completion_mask": one,
              "advantages": advantages[:, 0], "old_per_token_logps": old_log_prob,
              "num_items_in_batch": torch.tensor(1.0)}
    loss = GRPOTrainer._compute_loss(trainer, None, inputs)
    loss.backward()
    return _row("trl", TRL_CALL.format(mode=mode), r, adv, loss, log_prob.grad)


def _row(library: str, call: str, r: float, adv: float, loss, grad) -> dict:
    g = float(grad.reshape(-1)[0])
    return {"library": library, "call": call, "r": r, "p_old": P_OLD, "A": adv,
            "loss": float(loss.detach()), "dloss_dlogp": g, "V": -g / adv}


#: record name -> the library's loss name
LIBRARY_MODES = {"verl": {"sapo": "sapo", "gpg": "gpg", "dppo_tv": "dppo_tv", "dppo_kl": "dppo_kl", "tis": "bypass_mode"},
                 "trl": {"sapo": "sapo", "vespo": "vespo", "tis": "cispo"}}


def main(library: str) -> None:
    make = {"verl": verl_example, "trl": trl_example}[library]
    out = {name: [make(mode, r, a) for r, a in POINTS[name]] for name, mode in LIBRARY_MODES[library].items()}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in LIBRARY_MODES:
        sys.exit("usage: library_examples.py verl|trl")
    main(sys.argv[1])
