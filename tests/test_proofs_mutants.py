"""Every obligation catches a mutant of DGPO, and the real DGPO passes every obligation."""

from __future__ import annotations

import pytest
import sympy as sp

from proofs import engine
from proofs.engine import DISPROVED, PROVED, UNKNOWN, Context, Inequality
from proofs.expected import EXPECTED
from proofs.run import prove
from proofs.theorems import THEOREMS
from spec import METHODS, Branch
from spec import symbols as S
from spec.methods import dgpo

DGPO = METHODS["dgpo"]
p, p_old, n, m, el, eh = S.p, S.p_old, S.n, S.m, S.eps_low, S.eps_high


def _branch(W: sp.Expr) -> Branch:
    """A branch whose surrogate is consistent with W (J = W(sg(p))·p), as DGPO builds them."""
    return Branch(W=W, J=W.subs(p, S.sg(p)) * p)


C_LEFT, C_RIGHT = dgpo.CONSTANTS["C_left"], dgpo.CONSTANTS["C_right"]
MUTANTS = {
    # C_left with n+1 in the exponent of (1 - eps_low): W jumps at r = 1 - eps_low
    "continuity": DGPO.with_branch("LN", _branch(p**n / (p_old ** (n + 1) * (1 - el) ** (n + 1)))),
    # an extra factor (1+eps_high)^(1/m) on HP: W exceeds 1/p_old just above the breakpoint
    "boundedness": DGPO.with_branch("HP", _branch(C_RIGHT * (1 + eh) ** (1 / m) * p ** (-1 / m))),
    # LN left at the policy gradient: W -> 1/p_old, not 0
    "vanishing": DGPO.with_branch("LN", _branch(1 / p_old)),
    # HP growing as p^(1/m) (constant re-solved for continuity): increasing, not decreasing
    "monotonicity": DGPO.with_branch("HP", _branch((p / ((1 + eh) * p_old)) ** (1 / m) / p_old)),
    # LN hard-clipped: bias exactly 1/p_old, not strictly less
    "bias": DGPO.with_branch("LN", _branch(sp.S.Zero)),
    # surrogate freezing one power too many: dJ/dp != W
    "surrogate": DGPO.with_branch("LN", Branch(W=C_LEFT * p**n, J=C_LEFT * S.sg(p) ** (n - 1) * p**2)),
    # LN weight doubled: V > 1 - eps_low near the breakpoint
    "logit_bound": DGPO.with_branch("LN", _branch(2 * C_LEFT * p**n)),
    # HP decay p^(-2/m) (constant re-solved): n = -1, m = 1 no longer gives GPPO
    "family": DGPO.with_branch("HP", _branch((p / ((1 + eh) * p_old)) ** (-2 / m) / p_old)),
}


@pytest.mark.parametrize("theorem", list(THEOREMS))
def test_mutant_is_disproved_with_a_counterexample(theorem):
    records = prove(THEOREMS[theorem], MUTANTS[theorem], expected=PROVED)
    bad = [r for r in records if r.status == DISPROVED]
    assert bad, f"{theorem}: mutant not caught: {[(r.instance, r.status) for r in records]}"
    assert all(r.counterexample for r in bad)
    assert all(r.status != r.expected for r in bad)  # the report would flag it


@pytest.mark.parametrize("theorem", list(THEOREMS))
def test_dgpo_proves_every_obligation(theorem):
    records = prove(THEOREMS[theorem], DGPO)
    assert records and all(r.status == PROVED for r in records), [(r.instance, r.how) for r in records]
    assert EXPECTED[(theorem, "dgpo")] == PROVED


def test_mutants_differ_from_dgpo_only_where_intended():
    for theorem, mutant in MUTANTS.items():
        changed = [reg for reg in DGPO.branches if mutant.branches[reg] is not DGPO.branches[reg]]
        assert len(changed) == 1, theorem


def test_instances_cover_n_m_in_1_to_6_when_not_general():
    records = prove(THEOREMS["monotonicity"], DGPO)
    assert {r.instance for r in records} == {f"n={a},m={b}" for a in range(1, 7) for b in range(1, 7)}
    assert all("z3" in r.how for r in records)


def test_undecidable_claim_is_unknown_not_proved():
    # true (sin r < r + 1 for r > 0), but beyond the z3 translation and without counterexample
    # (log r < r used to be the example; the bridge now proves it: tests/test_z3bridge.py)
    claim = Inequality("sin r < r + 1", sp.sin(S.r) < S.r + 1, S.r > 0)
    outcome = claim.decide(Context(domain=sp.true), {})
    assert outcome.status == UNKNOWN


def test_counterexamples_are_checked_exactly():
    # a false claim: the found point must really violate it
    claim = Inequality("r**2 < 2", S.r**2 < 2, S.r > 1)
    outcome = claim.decide(Context(domain=sp.true), {})
    assert outcome.status == DISPROVED
    r = sp.nsimplify(outcome.counterexample["r"])
    assert r > 1 and not r**2 < 2


def test_z3_refutation_of_a_polynomial_instance():
    stmt = sp.And(engine.u ** 3 > engine.v ** 3, engine.v > 1)
    status, _ = engine.z3bridge.refute(engine.u > engine.v, stmt, [engine.u, engine.v])
    assert status == PROVED
