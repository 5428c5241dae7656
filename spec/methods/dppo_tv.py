"""dppo_tv: DPPO-Binary-TV (arXiv 2602.04879), verl ``dppo_tv``: truncated IS, masked by p − p_old.

verl 0.9.1, ``compute_policy_loss_dppo_tv``: ``pg_losses = -advantages * truncated_ratio * log_prob
* valid_mask`` with

- ``truncated_ratio = clamp(ratio, max=clip_ratio_c).detach()``, ratio = exp(clamp(log r, ±20));
- ``valid_mask`` (detached) = (p − p_old <= delta_high) if A > 0 else (p − p_old >= −delta_low),
  p = exp(log_prob), p_old = exp(old_log_prob), unclamped;
- delta_low/high are ``clip_ratio_low``/``clip_ratio_high`` (0.2, "the TV divergence threshold"),
  trunc is ``config.get("clip_ratio_c", 20.0)``: ActorConfig's field is 3.0, so 3.0 is the effective
  default (20.0 only for a config without the key).

V = min(r, trunc)·mask on ∇log π; J = sg(min(r, trunc))·log p·mask. The mask is a condition on
p − p_old = p_old·(r − 1): the weight is a function of (r, p_old, A), not of r alone, with its cut-offs
at r = 1 + delta_high/p_old (A > 0) and r = 1 − delta_low/p_old (A < 0). eps_low, eps_high only cut
the regions (metrics, obligations), so "continuity" (stated at the eps breakpoints) holds and says
nothing about the mask's own jump at those cut-offs; W drops from min(r, trunc)/p to 0 there.

:func:`dppo_spec` is the DPPO family's record, shared with ``dppo_kl`` (which changes the mask).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import sympy as sp

from spec.core import Branch, Example, LibraryExample, MethodSpec
from spec.hparams import DELTA_HIGH, DELTA_LOW, EPS_HIGH, EPS_LOW, TRUNC
from spec.symbols import A, p, p_old, r, ratio, sg

delta_low, delta_high, trunc = DELTA_LOW.symbol, DELTA_HIGH.symbol, TRUNC.symbol

#: what every DPPO variant fails, and why (the mask only drops tokens: W is min(r, trunc)/r or 0)
DPPO_DISPROVED = {
    "monotonicity": "W*p_old = min(r, trunc)/r is constant (1) on LN where the mask keeps the token",
    "bias": "W*p_old = 0 where the mask drops a token: |W - 1/p_old| = 1/p_old, and trunc/r inside when trunc < r",
    "family": "no n, m: it would have to be GPPO and pg at once",
}


def dppo_spec(name: str, title: str, summary: str, keep: Callable[[int, sp.Expr], sp.Boolean],
              disproved: Mapping[str, str], examples: tuple[Example, ...],
              library: tuple[LibraryExample, ...], sources: str) -> MethodSpec:
    """V = min(r, trunc) where ``keep(sign of A, x)`` holds for the ratio x, else 0; the A > 0 mask on
    HP and LP, the A <= 0 one on LN and HN, either inside by the sign of A (verl: ``advantages > 0``)."""

    def branch(sign: int) -> Branch:
        V = sp.Piecewise((sp.Min(r, trunc), keep(sign, r)), (0, True))
        J = sp.Piecewise((sp.Min(sg(ratio), trunc) * sp.log(p), keep(sign, ratio)), (0, True))
        return Branch.from_V(V, J=J)

    pos, neg = branch(1), branch(-1)
    inside = Branch(W=sp.Piecewise((pos.W, A > 0), (neg.W, True)), J=sp.Piecewise((pos.J, A > 0), (neg.J, True)))
    return MethodSpec(
        name=name, title=title, summary=summary,
        hparams=(EPS_LOW.with_default(0.2), EPS_HIGH.with_default(0.2), DELTA_LOW.with_default(0.2),
                 DELTA_HIGH.with_default(0.2), TRUNC.with_default(3.0)),
        branches={"IN": inside, "LN": neg, "HP": pos, "LP": pos, "HN": neg},
        disproved={**DPPO_DISPROVED, **disproved}, examples=examples, library=library, sources=sources)


def keep_tv(sign: int, x: sp.Expr) -> sp.Boolean:
    """verl's valid mask at ratio x: p − p_old = p_old·(x − 1) <= delta_high (A > 0), >= −delta_low."""
    return p_old * (x - 1) <= delta_high if sign > 0 else p_old * (x - 1) >= -delta_low


SPEC = dppo_spec(
    "dppo_tv", "DPPO-Binary-TV (truncated IS, mask on p - p_old)",
    "V = min(r, trunc) where p - p_old <= delta_high (A > 0) / >= -delta_low (A <= 0), else 0",
    keep_tv,
    disproved={"vanishing": "for p_old <= delta_low the mask keeps every r < 1: W*p_old = 1 as r -> 0"},
    # by hand, p_old = 0.4: p - p_old = 0.4·(r - 1) against ±0.2
    examples=(Example(0.6, -1, 0.6, 0.4), Example(0.3, -1, 0.0, 0.4), Example(1.3, 1, 1.3, 0.4),
              Example(1.6, 1, 0.0, 0.4), Example(0.5, 1, 0.5, 0.4), Example(2.0, -0.5, 2.0, 0.4),
              Example(4.0, -1, 3.0, 0.2), Example(0.1, -1, 0.1, 0.1)),
    library=(
        LibraryExample("verl", 0.6, 0.4, -1.0, -0.8562698133840875, 0.6000000000000001),
        LibraryExample("verl", 1.3, 0.4, 1.0, 0.8501044076286631, 1.3),
        LibraryExample("verl", 1.6, 0.4, 1.0, 0.0, 0.0),
        LibraryExample("verl", 2.0, 0.4, -0.5, -0.2231435513142097, 2.0),
    ),
    sources="verl `dppo_tv` (delta_low, delta_high = actor.clip_ratio_low, clip_ratio_high 0.2; "
            "trunc = actor.clip_ratio_c, 3.0)",
)
