"""sapo: Soft Adaptive Policy Optimization (arXiv 2511.20347), verl ``sapo`` and TRL ``loss_type="sapo"``.

Both libraries compute the same per-token loss, −A·(4/τ)·σ(τ(r − 1)), with τ = tau_pos when A > 0
and tau_neg otherwise (both: ``advantages > 0``), defaults 1.0 and 1.05 in both:

- verl 0.9.1, verl/trainer/ppo/core_algos.py, ``compute_policy_loss_sapo``:
  ``gates = torch.sigmoid(tau * (x - 1.0)) * (4.0 / tau)``; ``pg_losses = -gates * advantages``,
  with r = exp(clamp(log_prob − old_log_prob, −20, 20)) and the aggregation forced to
  "seq-mean-token-mean" (whatever ``loss_agg_mode`` says; its 1e-8 in the token count scales the
  loss by 1 − 1e-8 on full sequences).
- TRL 1.16, trl/trainer/grpo_trainer.py, ``GRPOTrainer._compute_loss``:
  ``soft_coef_1 = torch.sigmoid(temperatures * (coef_1 - 1)) * 4 / temperatures``;
  ``per_token_loss = -soft_coef_1 * advantages`` with coef_1 = exp(log_ratio), *no* clamp, and the
  "grpo" aggregation (per-sequence token mean, then mean over sequences).

Differences: verl clamps log r to [−20, 20] and torch.clamp passes no gradient outside, so verl's
weight is exactly 0 for r < e^−20 (where TRL's is r·4σ(−τ)(1−σ(−τ)) ≈ 1.6e−9 at τ = 1.05) and for
r > e^20 (where TRL's gate underflows to 0 anyway); verl's aggregation adds 1e-8 to the token
count (V·(1 − 1e-8) on a one-token sequence); TRL's ``torch.where(advantages > 0, 1.0, 1.05)``
builds the temperatures from Python floats, so they are float32 whatever the logits' dtype
(tau_neg = 1.0499999523: V differs from the float64 formula by ~2e-8 relative, see EXAMPLES).
Same formula, defaults and τ selection otherwise.

Weight: d/dp of (4/τ)σ(τ(p/p_old − 1)) is 4σ(1−σ)/p_old, so W = 4σ(x)(1−σ(x))/p_old with
x = τ(r − 1) and V = p·W = 4·r·σ(x)(1−σ(x)). SAPO has no eps: W is one smooth formula on every
region, so eps_low, eps_high only cut the regions (metrics, obligations) and each claim is decided
for every 0 < eps_low < 1, eps_high > 0.
"""

from __future__ import annotations

import sympy as sp

from spec.core import Branch, MethodSpec
from spec.drafts.symbols import REGION_HPARAMS, hparam, sigmoid, tau_neg, tau_pos
from spec.symbols import A, r, ratio

TAU_POS = hparam("tau_pos", 1.0, "tau_pos > 0", 0.0)
TAU_NEG = hparam("tau_neg", 1.05, "tau_neg > 0", 0.0)
HPARAMS = (TAU_POS, TAU_NEG)
#: CLI flags (as the libraries name them: verl actor.tau_pos / TRL sapo_temperature_pos)
FLAGS = {"tau_pos": "--tau-pos", "tau_neg": "--tau-neg"}
LIBRARY_NAMES = {"verl": {"tau_pos": "actor.tau_pos", "tau_neg": "actor.tau_neg"},
                 "trl": {"tau_pos": "sapo_temperature_pos", "tau_neg": "sapo_temperature_neg"}}
#: sample values for the proof engine's counterexample search
SAMPLES = {tau_pos: [sp.Integer(1), sp.Rational(1, 2), sp.Integer(4)],
           tau_neg: [sp.Rational(21, 20), sp.Rational(1, 2), sp.Integer(4)]}


def gate_weight(tau: sp.Expr) -> sp.Expr:
    """V/r = 4σ(x)(1−σ(x)), x = τ(r − 1): SAPO's weight on ∇π in units of 1/p_old."""
    s = sigmoid(tau * (r - 1))
    return 4 * s * (1 - s)


def branch(tau: sp.Expr) -> Branch:
    """V = r·4σ(1−σ); surrogate J = (4/τ)σ(τ(p/p_old − 1)) (no stop-gradient: the gate is the loss)."""
    return Branch.from_V(r * gate_weight(tau), J=4 / tau * sigmoid(tau * (ratio - 1)))


_POS, _NEG = branch(tau_pos), branch(tau_neg)
_IN = Branch(W=sp.Piecewise((_POS.W, A > 0), (_NEG.W, True)), J=sp.Piecewise((_POS.J, A > 0), (_NEG.J, True)))

SPEC = MethodSpec(
    name="sapo",
    title="SAPO (soft adaptive policy optimization, sigmoid gate)",
    summary="W = 4σ(x)(1−σ(x))/p_old, x = τ(r−1), τ = tau_pos if A > 0 else tau_neg; one formula everywhere",
    hparams=REGION_HPARAMS + HPARAMS,
    branches={"IN": _IN, "LN": _NEG, "HP": _POS, "LP": _POS, "HN": _NEG},
)

#: the mathematically right status of each obligation for this draft (library defaults' domains)
EXPECTED = {"continuity": "proved", "boundedness": "proved", "vanishing": "disproved", "monotonicity": "proved", "bias": "disproved", "surrogate": "proved", "logit_bound": "proved", "family": "disproved"}

#: worked examples: one completion token, p_old = 0.4, library defaults, float64; ``V`` is
#: −(d loss/d log_prob)/A. Computed by spec/drafts/library_examples.py with the lines:
#: trl: loss = GRPOTrainer._compute_loss(trainer, None, inputs); loss.backward()  # trainer: GRPOConfig(loss_type="sapo") defaults, _get_per_token_logps_and_entropies returning log_prob
#: verl: loss, _ = get_policy_loss_fn("sapo")(old_log_prob, log_prob, advantages, response_mask, "token-mean", ActorConfig(strategy="fsdp", rollout_n=1, ppo_micro_batch_size_per_gpu=1)); loss.backward()
EXAMPLES = (
    {"library": "verl", "r": 0.5, "p_old": 0.4, "A": -1.0, "loss": 1.4159383161439836, "V": 0.46706990697199724},
    {"library": "verl", "r": 1.3, "p_old": 0.4, "A": 1.0, "loss": -2.297770044268936, "V": 1.2711832080800465},
    {"library": "verl", "r": 2.0, "p_old": 0.4, "A": -0.5, "loss": 1.4109997938560097, "V": 1.536219568028393},
    {"library": "trl", "r": 0.5, "p_old": 0.4, "A": -1.0, "loss": 1.4159384158165418, "V": 0.4670699145005067},
    {"library": "trl", "r": 1.3, "p_old": 0.4, "A": 1.0, "loss": -2.297770067246636, "V": 1.2711832207918785},
    {"library": "trl", "r": 2.0, "p_old": 0.4, "A": -0.5, "loss": 1.4109998546027234, "V": 1.5362196186653907},
)
