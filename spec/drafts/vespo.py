"""vespo: Variational sEquence-level Soft Policy Optimization (arXiv 2602.10693), TRL ``loss_type="vespo"``.

TRL 1.16, trl/trainer/grpo_trainer.py, ``GRPOTrainer.get_gamma_weights`` (a ``@torch.no_grad``
static method) and ``_compute_loss``: ``per_token_loss = -phi_seq * advantages * per_token_logps``
with φ(w) = exp(λ + k·log w − λ·w), the Gamma weighting normalised to φ(1) = 1, where

- w is the **sequence** ratio: log w = clamp(Σ_t clamp(log r_t, −20, 20), log 1e-8, 20) (a sum over
  the completion's tokens, not GSPO's mean), times the vLLM IS ratio when that correction is on;
- (k, λ) = (k_pos, lambda_pos) if A >= 0 else (k_neg, lambda_neg), λ clamped to >= 1e-4,
  defaults (2, 3) and (3, 2); φ's NaN/±inf are set to 0.

So V = φ(w) on ∇log π_t for every token t of the sequence: the weight depends on the whole
sequence, and is a per-token function of (r, A) only for one-token completions (w = r). This draft
is that per-token form, V = φ(r); a record built from it describes VESPO exactly for T = 1 and is
the per-token analogue otherwise (docs/library-losses.md). W = φ(r)/p; surrogate J = sg(φ(r))·log p.
"""

from __future__ import annotations

import sympy as sp

from spec.core import Branch, MethodSpec
from spec.drafts.symbols import REGION_HPARAMS, hparam, k_neg, k_pos, lambda_neg, lambda_pos
from spec.symbols import A, p, r, ratio, sg

K_POS = hparam("k_pos", 2.0, "k_pos > 0", 0.0)
LAMBDA_POS = hparam("lambda_pos", 3.0, "lambda_pos > 0", 0.0)
K_NEG = hparam("k_neg", 3.0, "k_neg > 0", 0.0)
LAMBDA_NEG = hparam("lambda_neg", 2.0, "lambda_neg > 0", 0.0)
HPARAMS = (K_POS, LAMBDA_POS, K_NEG, LAMBDA_NEG)
FLAGS = {"k_pos": "--k-pos", "lambda_pos": "--lambda-pos", "k_neg": "--k-neg", "lambda_neg": "--lambda-neg"}
LIBRARY_NAMES = {"trl": {"k_pos": "vespo_k_pos", "lambda_pos": "vespo_lambda_pos",
                         "k_neg": "vespo_k_neg", "lambda_neg": "vespo_lambda_neg"}}
SAMPLES = {k_pos: [sp.Integer(2), sp.Rational(1, 2), sp.Integer(1)],
           lambda_pos: [sp.Integer(3), sp.Rational(1, 2), sp.Integer(1)],
           k_neg: [sp.Integer(3), sp.Rational(1, 2), sp.Integer(1)],
           lambda_neg: [sp.Integer(2), sp.Rational(1, 2), sp.Integer(1)]}


def phi(x: sp.Expr, k: sp.Expr, lam: sp.Expr) -> sp.Expr:
    """φ(x) = e^λ·x^k·e^(−λx) (φ(1) = 1), the code's exp(λ + k·log x − λ·x)."""
    return sp.exp(lam) * x**k * sp.exp(-lam * x)


def branch(k: sp.Expr, lam: sp.Expr) -> Branch:
    return Branch.from_V(phi(r, k, lam), J=sg(phi(ratio, k, lam)) * sp.log(p))


_POS, _NEG = branch(k_pos, lambda_pos), branch(k_neg, lambda_neg)
_IN = Branch(W=sp.Piecewise((_POS.W, A >= 0), (_NEG.W, True)), J=sp.Piecewise((_POS.J, A >= 0), (_NEG.J, True)))

SPEC = MethodSpec(
    name="vespo",
    title="VESPO (Gamma-weighted importance ratio; per-token form, exact for one-token sequences)",
    summary="V = e^λ·r^k·e^(−λr) on ∇log π, (k, λ) = (k_pos, lambda_pos) if A >= 0 else (k_neg, lambda_neg)",
    hparams=REGION_HPARAMS + HPARAMS,
    branches={"IN": _IN, "LN": _NEG, "HP": _POS, "LP": _POS, "HN": _NEG},
)

#: the mathematically right status of each obligation for this draft (library defaults' domains)
EXPECTED = {"continuity": "proved", "boundedness": "disproved", "vanishing": "disproved", "monotonicity": "disproved", "bias": "disproved", "surrogate": "proved", "logit_bound": "disproved", "family": "disproved"}

#: worked examples: one completion token, p_old = 0.4, library defaults, float64; ``V`` is
#: −(d loss/d log_prob)/A. Computed by spec/drafts/library_examples.py with the lines:
#: trl: loss = GRPOTrainer._compute_loss(trainer, None, inputs); loss.backward()  # trainer: GRPOConfig(loss_type="vespo") defaults, _get_per_token_logps_and_entropies returning log_prob
EXAMPLES = (
    {"library": "trl", "r": 0.5, "p_old": 0.4, "A": -1.0, "loss": -0.5468632289253345, "V": 0.3397852285573807},
    {"library": "trl", "r": 1.3, "p_old": 0.4, "A": 1.0, "loss": 0.44931465767963974, "V": 0.6871027249616123},
    {"library": "trl", "r": 2.0, "p_old": 0.4, "A": -0.5, "loss": -0.1207967828781288, "V": 1.0826822658929018},
)
