"""vespo: VESPO's Gamma weighting of the importance ratio, per token (arXiv 2602.10693, TRL ``vespo``).

TRL 1.16, ``GRPOTrainer.get_gamma_weights`` (``@torch.no_grad``) and ``_compute_loss``:
``per_token_loss = -phi_seq * advantages * per_token_logps`` with φ(w) = exp(λ + k·log w − λ·w),
the Gamma weighting normalised to φ(1) = 1, where

- w is the **sequence** ratio: log w = clamp(Σ_t clamp(log r_t, −20, 20), log 1e-8, 20) (a sum over
  the completion's tokens), times vLLM's IS ratio when that correction is on;
- (k, λ) = (k_pos, lambda_pos) if A >= 0 else (k_neg, lambda_neg), defaults (2, 3) and (3, 2),
  λ clamped to >= 1e-4; φ's NaN/±inf are set to 0.

So TRL's V_t = φ(∏_s r_s) depends on the whole sequence: VESPO is a per-token method only for
one-token completions (w = r). This record is that per-token form, V = φ(r) = e^λ·r^k·e^(−λr),
W = φ(r)/p, J = sg(φ(r))·log p: it is TRL's loss exactly for T = 1 with 1e-8 <= r <= e^20 (TRL
clamps w there), and the per-token analogue otherwise (docs/library-losses.md). The domains are
k, λ > 0 (TRL's 1e-4 floor on λ is not modelled).
"""

import math

import sympy as sp

from spec.core import Branch, Example, LibraryExample, MethodSpec
from spec.hparams import EPS_HIGH, EPS_LOW, HParam
from spec.symbols import A, p, r, ratio, sg

k_pos, k_neg = sp.Symbol("k_pos", positive=True), sp.Symbol("k_neg", positive=True)
lambda_pos, lambda_neg = sp.Symbol("lambda_pos", positive=True), sp.Symbol("lambda_neg", positive=True)
_R, _I = sp.Rational, sp.Integer
K_POS = HParam("k_pos", k_pos, 2.0, "k_pos > 0", 0.0, samples=(_I(2), _R(1, 2), _I(1)))
LAMBDA_POS = HParam("lambda_pos", lambda_pos, 3.0, "lambda_pos > 0", 0.0, samples=(_I(3), _R(1, 2), _I(1)))
K_NEG = HParam("k_neg", k_neg, 3.0, "k_neg > 0", 0.0, samples=(_I(3), _R(1, 2), _I(1)))
LAMBDA_NEG = HParam("lambda_neg", lambda_neg, 2.0, "lambda_neg > 0", 0.0, samples=(_I(2), _R(1, 2), _I(1)))


def phi(x: sp.Expr, k: sp.Expr, lam: sp.Expr) -> sp.Expr:
    """φ(x) = e^λ·x^k·e^(−λx) (φ(1) = 1), the code's exp(λ + k·log x − λ·x)."""
    return sp.exp(lam) * x**k * sp.exp(-lam * x)


def gamma(k: sp.Expr, lam: sp.Expr) -> Branch:
    return Branch.from_V(phi(r, k, lam), J=sg(phi(ratio, k, lam)) * sp.log(p))


_POS, _NEG = gamma(k_pos, lambda_pos), gamma(k_neg, lambda_neg)
_IN = Branch(W=sp.Piecewise((_POS.W, A >= 0), (_NEG.W, True)), J=sp.Piecewise((_POS.J, A >= 0), (_NEG.J, True)))


def _v(r_: float, k: float, lam: float) -> float:
    return math.exp(lam + k * math.log(r_) - lam * r_)


SPEC = MethodSpec(
    name="vespo",
    title="VESPO (Gamma-weighted importance ratio; per-token form, exact for one-token sequences)",
    summary="V = e^λ·r^k·e^(−λr), (k, λ) = (k_pos, lambda_pos) if A >= 0 else (k_neg, lambda_neg)",
    hparams=(EPS_LOW.with_default(0.2), EPS_HIGH.with_default(0.2), K_POS, LAMBDA_POS, K_NEG, LAMBDA_NEG),
    branches={"IN": _IN, "LN": _NEG, "HP": _POS, "LP": _POS, "HN": _NEG},
    disproved={
        "boundedness": "W*p_old = e^λ·r^(k-1)·e^(-λr) exceeds 1: 2.46 at r = 1/3 on LP at the defaults",
        "vanishing": "for k_neg < 1, W*p_old = e^λ·r^(k_neg-1)·e^(-λr) -> oo as r -> 0",
        "monotonicity": "W*p_old peaks at r = (k-1)/λ: for k_neg <= 1 it decreases in p on LN",
        "bias": "W*p_old = φ(r)/r differs from 1 off r = 1",
        "logit_bound": "V = φ(r) exceeds 1 - eps_low on LN for some k_neg, λ_neg (2.24 at r = 1/4, k_neg = 1/2, λ_neg = 2)",
        "family": "no n, m: it would have to be GPPO and pg at once",
    },
    examples=(Example(1.1, 1, _v(1.1, 2, 3)), Example(1.1, -1, _v(1.1, 3, 2)), Example(0.5, -1, _v(0.5, 3, 2)),
              Example(1.5, 1, _v(1.5, 2, 3)), Example(0.5, 1, _v(0.5, 2, 3)), Example(2.0, -1, _v(2.0, 3, 2))),
    library=(
        LibraryExample("trl", 0.5, 0.4, -1.0, -0.5468632289253345, 0.3397852285573807),
        LibraryExample("trl", 1.3, 0.4, 1.0, 0.44931465767963974, 0.6871027249616123),
        LibraryExample("trl", 2.0, 0.4, -0.5, -0.1207967828781288, 1.0826822658929018),
    ),
    sources="TRL `vespo` (vespo_k_pos 2, vespo_lambda_pos 3, vespo_k_neg 3, vespo_lambda_neg 2), "
            "on the sequence ratio: this per-token form is TRL's loss for one-token completions",
)
