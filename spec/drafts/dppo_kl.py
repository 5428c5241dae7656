"""dppo_kl: DPPO-Binary-KL (arXiv 2602.04879), verl ``dppo_kl``.

verl 0.9.1, verl/trainer/ppo/core_algos.py, ``compute_policy_loss_dppo_kl``: as ``dppo_tv``
(``-advantages * truncated_ratio * log_prob * valid_mask``, truncated_ratio = sg(min(r, trunc)))
with the mask on the binary KL of the sampled token's Bernoulli (p_old vs p):

``binary_kl = old_prob * (old_log_prob - log_prob) + (1 - old_prob) * log((1 - old_prob + 1e-8) / (1 - prob + 1e-8))``;
valid if binary_kl <= delta_high or p <= p_old (A > 0), binary_kl <= delta_low or p >= p_old (A <= 0).

In r (p = r·p_old): KL = −p_old·log r + (1 − p_old)·log((1 − p_old + 1e-8)/(1 − r·p_old + 1e-8)), the
1e-8 kept as the code has it. The weight depends on (r, p_old, A); the bridge needs log for it.
"""

from __future__ import annotations

import sympy as sp

from spec.core import Branch, MethodSpec
from spec.drafts.dppo_tv import DELTA_HIGH, DELTA_LOW, TRUNC
from spec.drafts.symbols import REGION_HPARAMS, delta_high, delta_low, trunc
from spec.symbols import A, p, p_old, r, ratio, sg

HPARAMS = (DELTA_LOW, DELTA_HIGH, TRUNC)
FLAGS = {"delta_low": "--delta-low", "delta_high": "--delta-high", "trunc": "--trunc"}
LIBRARY_NAMES = {"verl": {"delta_low": "actor.clip_ratio_low", "delta_high": "actor.clip_ratio_high",
                          "trunc": "actor.clip_ratio_c"}}
SAMPLES = {delta_low: [sp.Rational(1, 5), sp.Rational(1, 20)], delta_high: [sp.Rational(1, 5), sp.Rational(1, 20)],
           trunc: [sp.Integer(3), sp.Integer(20), sp.Rational(3, 2)]}
TINY = sp.Rational(1, 10**8)


def binary_kl(x: sp.Expr) -> sp.Expr:
    """KL(Bernoulli(p_old) || Bernoulli(x·p_old)) as the code computes it (with its 1e-8)."""
    return -p_old * sp.log(x) + (1 - p_old) * sp.log((1 - p_old + TINY) / (1 - x * p_old + TINY))


def keep(sign: int, x: sp.Expr = r) -> sp.Boolean:
    if sign > 0:
        return sp.Or(binary_kl(x) <= delta_high, x <= 1)
    return sp.Or(binary_kl(x) <= delta_low, x >= 1)


def branch(sign: int) -> Branch:
    V = sp.Piecewise((sp.Min(r, trunc), keep(sign)), (0, True))
    J = sp.Piecewise((sp.Min(sg(ratio), trunc) * sp.log(p), keep(sign, ratio)), (0, True))
    return Branch.from_V(V, J=J)


_POS, _NEG = branch(1), branch(-1)
_IN = Branch(W=sp.Piecewise((_POS.W, A > 0), (_NEG.W, True)), J=sp.Piecewise((_POS.J, A > 0), (_NEG.J, True)))

SPEC = MethodSpec(
    name="dppo_kl",
    title="DPPO-Binary-KL (truncated IS, mask on the binary KL of the token)",
    summary="V = min(r, trunc) where binary KL <= delta_high or r <= 1 (A > 0) / <= delta_low or r >= 1 (A <= 0)",
    hparams=REGION_HPARAMS + HPARAMS,
    branches={"IN": _IN, "LN": _NEG, "HP": _POS, "LP": _POS, "HN": _NEG},
)

#: the mathematically right status of each obligation for this draft (library defaults' domains)
EXPECTED = {"continuity": "proved", "boundedness": "proved", "vanishing": "proved", "monotonicity": "disproved", "bias": "disproved", "surrogate": "proved", "logit_bound": "proved", "family": "disproved"}

#: worked examples: one completion token, p_old = 0.4, library defaults, float64; ``V`` is
#: −(d loss/d log_prob)/A. Computed by spec/drafts/library_examples.py with the lines:
#: verl: loss, _ = get_policy_loss_fn("dppo_kl")(old_log_prob, log_prob, advantages, response_mask, "token-mean", ActorConfig(strategy="fsdp", rollout_n=1, ppo_micro_batch_size_per_gpu=1)); loss.backward()
EXAMPLES = (
    {"library": "verl", "r": 0.6, "p_old": 0.4, "A": -1.0, "loss": -0.8562698133840875, "V": 0.6000000000000001},
    {"library": "verl", "r": 0.3, "p_old": 0.4, "A": -1.0, "loss": 0.0, "V": 0.0},
    {"library": "verl", "r": 1.6, "p_old": 0.4, "A": 1.0, "loss": 0.714059364205471, "V": 1.6},
    {"library": "verl", "r": 2.0, "p_old": 0.4, "A": 1.0, "loss": 0.0, "V": 0.0},
)
