"""sapo: Soft Adaptive Policy Optimization, a sigmoid gate in place of the clip (verl ``sapo``, TRL ``sapo``).

Both libraries compute ``−A·(4/τ)·σ(τ(r − 1))`` per token, τ = tau_pos if A > 0 else tau_neg
(defaults 1.0 and 1.05 in both; A = 0 takes tau_neg, with no gradient):

- verl 0.9.1, ``compute_policy_loss_sapo``: ``gates = sigmoid(tau * (ratio - 1)) * (4 / tau)``,
  ratio = exp(clamp(log r, ±20)) (no gradient beyond: V = 0 for r < e^−20, where the formula gives
  ≈ 1.6e−9·r), aggregation forced to "seq-mean-token-mean" with 1e-8 in the token count;
- TRL 1.16, ``GRPOTrainer._compute_loss``: ``sigmoid(temperatures * (coef_1 - 1)) * 4 / temperatures``,
  no clamp; ``torch.where(advantages > 0, 1.0, 1.05)`` makes the temperatures float32
  (tau_neg = 1.0499999523), so TRL's V differs from the float64 formula by ~2e-8 relative.

d/dp of (4/τ)σ(τ(p/p_old − 1)) is 4σ(1−σ)/p_old: W = 4σ(x)(1−σ(x))/p_old, x = τ(r − 1), and
V = 4·r·σ(x)(1−σ(x)). There is no eps: one smooth formula on every region, so eps_low, eps_high only
cut the regions (metrics, obligations) and each claim is decided for every 0 < eps_low < 1,
eps_high > 0 (the z3 bridge abstracts the exp, docs/spec.md).
"""

import math

import sympy as sp

from spec.core import Branch, Example, LibraryExample, MethodSpec
from spec.hparams import EPS_HIGH, EPS_LOW, HParam
from spec.symbols import A, r, ratio

tau_pos = sp.Symbol("tau_pos", positive=True)
tau_neg = sp.Symbol("tau_neg", positive=True)
TAU_POS = HParam("tau_pos", tau_pos, 1.0, "tau_pos > 0", 0.0,
                 samples=(sp.Integer(1), sp.Rational(1, 2), sp.Integer(4)))
TAU_NEG = HParam("tau_neg", tau_neg, 1.05, "tau_neg > 0", 0.0,
                 samples=(sp.Rational(21, 20), sp.Rational(1, 2), sp.Integer(4)))


def sigmoid(x: sp.Expr) -> sp.Expr:
    """σ(x) = 1/(1 + exp(−x)), torch.sigmoid's function (SymPy has none of its own)."""
    return 1 / (1 + sp.exp(-x))


def gate(tau: sp.Expr) -> Branch:
    """V = 4·r·σ(x)(1 − σ(x)), x = τ(r − 1); J = (4/τ)σ(τ(p/p_old − 1)), the gate is the loss (no sg)."""
    s = sigmoid(tau * (r - 1))
    return Branch.from_V(4 * r * s * (1 - s), J=4 / tau * sigmoid(tau * (ratio - 1)))


_POS, _NEG = gate(tau_pos), gate(tau_neg)
_IN = Branch(W=sp.Piecewise((_POS.W, A > 0), (_NEG.W, True)), J=sp.Piecewise((_POS.J, A > 0), (_NEG.J, True)))


def _v(r_: float, tau: float) -> float:
    s = 1 / (1 + math.exp(-tau * (r_ - 1)))
    return 4 * r_ * s * (1 - s)


SPEC = MethodSpec(
    name="sapo",
    title="SAPO (soft adaptive policy optimization, sigmoid gate)",
    summary="V = 4·r·σ(x)(1−σ(x)), x = τ(r−1), τ = tau_pos if A > 0 else tau_neg; one formula everywhere",
    hparams=(EPS_LOW.with_default(0.2), EPS_HIGH.with_default(0.2), TAU_POS, TAU_NEG),
    branches={"IN": _IN, "LN": _NEG, "HP": _POS, "LP": _POS, "HN": _NEG},
    disproved={
        "vanishing": "W*p_old = 4σ(x)(1-σ(x)) -> 4σ(-tau_neg)(1-σ(-tau_neg)) > 0 as r -> 0",
        "bias": "W*p_old = 4σ(1-σ) < 1 off r = 1: W differs from 1/p_old inside the trust region",
        "family": "no n, m: it would have to be GPPO and pg at once",
    },
    # V by hand: 4·r·s·(1 − s), s = 1/(1 + exp(−τ(r − 1)))
    examples=(Example(1.1, 1, _v(1.1, 1.0)), Example(1.1, -1, _v(1.1, 1.05)), Example(0.5, -1, _v(0.5, 1.05)),
              Example(1.5, 1, _v(1.5, 1.0)), Example(0.5, 1, _v(0.5, 1.0)), Example(2.0, -1, _v(2.0, 1.05)),
              Example(1.3, 1, 1.2711832207918785)),
    library=(
        LibraryExample("verl", 0.5, 0.4, -1.0, 1.4159383161439836, 0.46706990697199724),
        LibraryExample("verl", 1.3, 0.4, 1.0, -2.297770044268936, 1.2711832080800465),
        LibraryExample("verl", 2.0, 0.4, -0.5, 1.4109997938560097, 1.536219568028393),
        LibraryExample("trl", 0.5, 0.4, -1.0, 1.4159384158165418, 0.4670699145005067),
        LibraryExample("trl", 1.3, 0.4, 1.0, -2.297770067246636, 1.2711832207918785),
        LibraryExample("trl", 2.0, 0.4, -0.5, 1.4109998546027234, 1.5362196186653907),
    ),
    sources="verl `sapo` (actor.tau_pos 1.0, actor.tau_neg 1.05); TRL `sapo` (sapo_temperature_pos 1.0, "
            "sapo_temperature_neg 1.05)",
)
