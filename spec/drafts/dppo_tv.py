"""dppo_tv: DPPO-Binary-TV (arXiv 2602.04879), verl ``dppo_tv``.

verl 0.9.1, verl/trainer/ppo/core_algos.py, ``compute_policy_loss_dppo_tv``:
``pg_losses = -advantages * truncated_ratio * log_prob * valid_mask`` with

- ``truncated_ratio = clamp(ratio, max=clip_ratio_c).detach()``, ratio = exp(clamp(log r, ±20));
- ``valid_mask`` (detached) = (p − p_old <= delta_high) if A > 0 else (p − p_old >= −delta_low),
  with p = exp(log_prob), p_old = exp(old_log_prob) (not clamped);
- delta_low/high read from ``clip_ratio_low``/``clip_ratio_high`` (default 0.2; "the TV divergence
  threshold"), trunc from ``config.get("clip_ratio_c", 20.0)``: ActorConfig's field is 3.0, so the
  20.0 only applies to a config without the key.

V = min(r, trunc)·mask on ∇log π. The mask is a condition on p − p_old = p_old·(r − 1): it depends
on p_old, not on r alone, so the per-token weight is a function of (r, p_old, A) (the spec's W is
in p and p_old, so it fits; its breakpoints r = 1 ± delta/p_old are not the eps ones the obligations
are indexed by: see docs/library-losses.md).
"""

from __future__ import annotations

import sympy as sp

from spec.core import Branch, MethodSpec
from spec.drafts.symbols import REGION_HPARAMS, delta_high, delta_low, hparam, trunc
from spec.symbols import A, p, p_old, r, ratio, sg

DELTA_LOW = hparam("delta_low", 0.2, "delta_low > 0", 0.0)
DELTA_HIGH = hparam("delta_high", 0.2, "delta_high > 0", 0.0)
TRUNC = hparam("trunc", 3.0, "trunc > 0", 0.0)
HPARAMS = (DELTA_LOW, DELTA_HIGH, TRUNC)
FLAGS = {"delta_low": "--delta-low", "delta_high": "--delta-high", "trunc": "--trunc"}
LIBRARY_NAMES = {"verl": {"delta_low": "actor.clip_ratio_low", "delta_high": "actor.clip_ratio_high",
                          "trunc": "actor.clip_ratio_c"}}
SAMPLES = {delta_low: [sp.Rational(1, 5), sp.Rational(1, 20)], delta_high: [sp.Rational(1, 5), sp.Rational(1, 20)],
           trunc: [sp.Integer(3), sp.Integer(20), sp.Rational(3, 2)]}


def keep(sign: int) -> sp.Boolean:
    """The valid mask as a condition on r and p_old: p − p_old <= delta_high (A > 0), >= −delta_low."""
    return p_old * (r - 1) <= delta_high if sign > 0 else p_old * (r - 1) >= -delta_low


def branch(sign: int) -> Branch:
    V = sp.Piecewise((sp.Min(r, trunc), keep(sign)), (0, True))
    J = sp.Piecewise((sp.Min(sg(ratio), trunc) * sp.log(p), keep(sign).subs(r, ratio)), (0, True))
    return Branch.from_V(V, J=J)


_POS, _NEG = branch(1), branch(-1)
_IN = Branch(W=sp.Piecewise((_POS.W, A > 0), (_NEG.W, True)), J=sp.Piecewise((_POS.J, A > 0), (_NEG.J, True)))

SPEC = MethodSpec(
    name="dppo_tv",
    title="DPPO-Binary-TV (truncated IS, mask on p - p_old)",
    summary="V = min(r, trunc) where p - p_old <= delta_high (A > 0) / >= -delta_low (A <= 0), else 0",
    hparams=REGION_HPARAMS + HPARAMS,
    branches={"IN": _IN, "LN": _NEG, "HP": _POS, "LP": _POS, "HN": _NEG},
)

#: the mathematically right status of each obligation for this draft (library defaults' domains)
EXPECTED = {"continuity": "proved", "boundedness": "proved", "vanishing": "disproved", "monotonicity": "disproved", "bias": "disproved", "surrogate": "proved", "logit_bound": "proved", "family": "disproved"}

#: worked examples: one completion token, p_old = 0.4, library defaults, float64; ``V`` is
#: −(d loss/d log_prob)/A. Computed by spec/drafts/library_examples.py with the lines:
#: verl: loss, _ = get_policy_loss_fn("dppo_tv")(old_log_prob, log_prob, advantages, response_mask, "token-mean", ActorConfig(strategy="fsdp", rollout_n=1, ppo_micro_batch_size_per_gpu=1)); loss.backward()
EXAMPLES = (
    {"library": "verl", "r": 0.6, "p_old": 0.4, "A": -1.0, "loss": -0.8562698133840875, "V": 0.6000000000000001},
    {"library": "verl", "r": 1.3, "p_old": 0.4, "A": 1.0, "loss": 0.8501044076286631, "V": 1.3},
    {"library": "verl", "r": 1.6, "p_old": 0.4, "A": 1.0, "loss": 0.0, "V": 0.0},
    {"library": "verl", "r": 2.0, "p_old": 0.4, "A": -0.5, "loss": -0.2231435513142097, "V": 2.0},
)
