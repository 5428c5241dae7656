"""tis: REINFORCE with a truncated importance weight, V = min(r, trunc): TRL ``cispo``, verl bypass REINFORCE.

- TRL 1.16, ``GRPOTrainer._compute_loss``, ``loss_type="cispo"``:
  ``clamped_ratios = torch.clamp(coef_1, max=self.epsilon_high).detach()``;
  ``per_token_loss = -clamped_ratios * advantages * per_token_logps``. trunc = ``epsilon_high``
  (ScaleRL's ε_max, recommended 5.0), which defaults to ``epsilon`` = 0.2: with TRL's defaults
  every token's weight is min(r, 0.2). No lower clip, so this is *not* the spec's ``cispo``
  (V = clip(r, 1 − eps_low, 1 + eps_high); it is that at eps_low -> 1, 1 + eps_high = trunc).
- verl 0.9.1, ``compute_policy_loss_bypass_mode`` with ``rollout_correction.loss_type="reinforce"``
  and ``rollout_is="token"`` -> ``compute_policy_loss_reinforce``: ``-advantages * log_prob *
  rollout_is_weights``, w = min(exp(clamp(log r, ±20)), rollout_is_threshold = 2.0), detached
  (``rollout_corr_helper.compute_rollout_correction_weights``). RolloutCorrectionConfig's own
  default is ``rollout_is="sequence"`` (a sequence weight: not this draft).

V = min(r, trunc) on ∇log π for either sign of A; W = min(r, trunc)/p; J = sg(min(r, trunc))·log p.
Default trunc = 2.0 (verl's threshold); the TRL examples run with TRL's effective 0.2.
"""

from __future__ import annotations

import sympy as sp

from spec.core import Branch, MethodSpec
from spec.drafts.symbols import REGION_HPARAMS, hparam, trunc
from spec.symbols import p, r, ratio, sg

TRUNC = hparam("trunc", 2.0, "trunc > 0", 0.0)
HPARAMS = (TRUNC,)
FLAGS = {"trunc": "--trunc"}
LIBRARY_NAMES = {"trl": {"trunc": "epsilon_high (default: epsilon = 0.2)"},
                 "verl": {"trunc": "actor.policy_loss.rollout_correction.rollout_is_threshold (2.0)"}}
SAMPLES = {trunc: [sp.Integer(2), sp.Rational(1, 5), sp.Integer(5)]}

_ALL = Branch.from_V(sp.Min(r, trunc), J=sg(sp.Min(ratio, trunc)) * sp.log(p))

SPEC = MethodSpec(
    name="tis",
    title="TIS (REINFORCE with a truncated importance weight; TRL's cispo)",
    summary="V = min(r, trunc) in every region, for either sign of A",
    hparams=REGION_HPARAMS + HPARAMS,
    branches={"IN": _ALL, "LN": _ALL, "HP": _ALL, "LP": _ALL, "HN": _ALL},
)

#: the mathematically right status of each obligation for this draft (library defaults' domains)
EXPECTED = {"continuity": "proved", "boundedness": "proved", "vanishing": "disproved", "monotonicity": "disproved", "bias": "disproved", "surrogate": "proved", "logit_bound": "proved", "family": "disproved"}

#: worked examples: one completion token, p_old = 0.4, float64, the library's defaults (TRL's
#: epsilon_high falls back to 0.2: ``hparams``); ``V`` is −(d loss/d log_prob)/A. Computed by
#: spec/drafts/library_examples.py with the lines:
#: trl: loss = GRPOTrainer._compute_loss(trainer, None, inputs); loss.backward()  # trainer: GRPOConfig(loss_type="cispo") defaults, _get_per_token_logps_and_entropies returning log_prob
#: verl: loss, _ = get_policy_loss_fn("bypass_mode")(old_log_prob, log_prob, advantages, response_mask, "token-mean", ActorConfig(strategy="fsdp", rollout_n=1, ppo_micro_batch_size_per_gpu=1, policy_loss=PolicyLossConfig(loss_mode="bypass_mode", rollout_correction=RolloutCorrectionConfig(rollout_is="token", loss_type="reinforce")))); loss.backward()
EXAMPLES = (
    {"library": "verl", "r": 0.1, "p_old": 0.4, "A": -1.0, "loss": -0.32188758248682015, "V": 0.10000000000000002},
    {"library": "verl", "r": 1.3, "p_old": 0.4, "A": 1.0, "loss": 0.8501044076286631, "V": 1.3},
    {"library": "verl", "r": 3.0, "p_old": 0.4, "A": -0.5, "loss": 0.1823215567939548, "V": 2.0},
    {"library": "trl", "r": 0.1, "p_old": 0.4, "A": -1.0, "loss": -0.32188758248682015, "V": 0.10000000000000002, "hparams": {"trunc": 0.2}},
    {"library": "trl", "r": 1.3, "p_old": 0.4, "A": 1.0, "loss": 0.1307852934813328, "V": 0.2, "hparams": {"trunc": 0.2}},
    {"library": "trl", "r": 3.0, "p_old": 0.4, "A": -0.5, "loss": 0.01823215567939548, "V": 0.2, "hparams": {"trunc": 0.2}},
)
