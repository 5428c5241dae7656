"""Method-independent lemma for obligation 7: the softmax score has norm at most √2.

For logits z and π = softmax(z), ∂log π_t/∂z = e_t − π, so the per-token gradient on the logits
is A·V·(e_t − π) and its norm is |A|·|V|·‖e_t − π‖. The lemma: ‖e_t − π‖² ≤ 2, proved with
z3 on the probability simplex for K = 2..6 outcomes, after SymPy checks ∂log π_t/∂z = e_t − π
symbolically for K = 3.
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from proofs import z3bridge
from proofs.engine import DISPROVED, PROVED, Outcome


def score_identity(k: int = 3) -> bool:
    """SymPy: d log softmax(z)_0 / dz_j == [j = 0] − softmax(z)_j for every j."""
    z = sp.symbols(f"z0:{k}", real=True)
    denom = sum(sp.exp(zj) for zj in z)
    log_pi0 = z[0] - sp.log(denom)
    return all(sp.simplify(sp.diff(log_pi0, zj) - (int(j == 0) - sp.exp(zj) / denom)) == 0
               for j, zj in enumerate(z))


def simplex_bound(k: int) -> str:
    """z3: for π on the K-simplex, (1 − π_0)² + Σ_{j>0} π_j² ≤ 2."""
    pi = sp.symbols(f"pi0:{k}", real=True)
    norm2 = (1 - pi[0]) ** 2 + sum(x**2 for x in pi[1:])
    simplex = sp.And(*(x >= 0 for x in pi), sp.Eq(sum(pi), 1))
    status, _ = z3bridge.refute(norm2 <= 2, simplex, list(pi))
    return status


@cache
def softmax_lemma() -> Outcome:
    """The lemma's outcome (computed once per process)."""
    if not score_identity():
        return Outcome(DISPROVED, "sympy: d log softmax != e_t - pi")
    bad = [k for k in range(2, 7) if simplex_bound(k) != PROVED]
    if bad:
        return Outcome(DISPROVED, f"z3: softmax score bound fails for K in {bad}")
    return Outcome(PROVED, "lemma ||e_t - pi|| <= sqrt(2): sympy (K=3) + z3 (K=2..6)")
