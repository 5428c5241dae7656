"""dppo_kl: DPPO-Binary-KL (arXiv 2602.04879), verl ``dppo_kl``: dppo_tv with the mask on a binary KL.

verl 0.9.1, ``compute_policy_loss_dppo_kl``: as ``dppo_tv`` (spec/methods/dppo_tv.py: V =
min(r, trunc)·mask, the same defaults) with the mask on the KL divergence of the sampled token's
Bernoulli, p_old against p, as the code computes it (its 1e-8 kept):

``binary_kl = old_prob * (old_log_prob - log_prob) + (1 - old_prob) * log((1 - old_prob + 1e-8) / (1 - prob + 1e-8))``,

valid if binary_kl <= delta_high or p <= p_old (A > 0), binary_kl <= delta_low or p >= p_old (A <= 0).
In r: KL = −p_old·log r + (1 − p_old)·log((1 − p_old + 1e-8)/(1 − r·p_old + 1e-8)). KL -> oo as r -> 0,
so the mask drops every token far enough below p_old: unlike dppo_tv, W -> 0 on LN (vanishing holds).
"""

from __future__ import annotations

import sympy as sp

from spec.core import Example, LibraryExample
from spec.methods.dppo_tv import delta_high, delta_low, dppo_spec
from spec.symbols import p_old

TINY = sp.Rational(1, 10**8)


def binary_kl(x: sp.Expr) -> sp.Expr:
    """KL(Bernoulli(p_old) || Bernoulli(x·p_old)) as verl computes it (with its 1e-8)."""
    return -p_old * sp.log(x) + (1 - p_old) * sp.log((1 - p_old + TINY) / (1 - x * p_old + TINY))


def keep_kl(sign: int, x: sp.Expr) -> sp.Boolean:
    if sign > 0:
        return sp.Or(binary_kl(x) <= delta_high, x <= 1)
    return sp.Or(binary_kl(x) <= delta_low, x >= 1)


SPEC = dppo_spec(
    "dppo_kl", "DPPO-Binary-KL (truncated IS, mask on the binary KL of the token)",
    "V = min(r, trunc) where binary KL <= delta_high or r <= 1 (A > 0) / <= delta_low or r >= 1 (A <= 0)",
    keep_kl,
    disproved={},
    # by hand, p_old = 0.4: KL(0.6) = 0.0625, KL(0.3) = 0.2518, KL(1.6) = 0.1185, KL(2.0) = 0.3819
    examples=(Example(0.6, -1, 0.6, 0.4), Example(0.3, -1, 0.0, 0.4), Example(1.6, 1, 1.6, 0.4),
              Example(2.0, 1, 0.0, 0.4), Example(0.5, 1, 0.5, 0.4), Example(2.0, -0.5, 2.0, 0.4),
              Example(4.0, -1, 3.0, 0.2), Example(1.1, 1, 1.1, 0.4)),
    library=(
        LibraryExample("verl", 0.6, 0.4, -1.0, -0.8562698133840875, 0.6000000000000001),
        LibraryExample("verl", 0.3, 0.4, -1.0, 0.0, 0.0),
        LibraryExample("verl", 1.6, 0.4, 1.0, 0.714059364205471, 1.6),
        LibraryExample("verl", 2.0, 0.4, 1.0, 0.0, 0.0),
    ),
    sources="verl `dppo_kl` (delta_low, delta_high = actor.clip_ratio_low, clip_ratio_high 0.2; "
            "trunc = actor.clip_ratio_c, 3.0)",
)
