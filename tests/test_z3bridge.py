"""The z3 bridge on non-polynomial claims (exp, log, sigmoid, radicals): proved / refuted / unknown.

Through the path the engine uses (``Inequality.decide`` -> ``engine.by_z3`` -> ``z3bridge.refute``)
and on the bridge itself. Soundness is checked against claims whose truth is known in closed form.
"""

from __future__ import annotations

import math
import random

import pytest
import sympy as sp
import z3

from proofs import engine, z3bridge
from proofs.engine import DISPROVED, PROVED, UNKNOWN, Context, Inequality
from spec import symbols as S

x = sp.Symbol("x", real=True)
tau = sp.Symbol("tau", positive=True)
r = S.r


def sigmoid(y):
    return 1 / (1 + sp.exp(-y))


def gate(k: sp.Expr, y: sp.Expr) -> sp.Expr:
    """k·σ(y)(1 − σ(y)): SAPO's weight for k = 4 (at most k/4)."""
    return k * sigmoid(y) * (1 - sigmoid(y))


def decide(statement, where=sp.true) -> engine.Outcome:
    """An inequality claim decided as the engine decides one (samples first, then z3)."""
    return Inequality("claim", statement, where).decide(Context(domain=sp.true), {})


# --- true claims are proved ----------------------------------------------------------------
@pytest.mark.parametrize("label, statement, where", [
    ("log r < r", sp.log(r) < r, r > 0),
    ("log r <= r - 1", sp.log(r) <= r - 1, r > 0),
    ("SAPO's gate <= 1", gate(4, tau * (r - 1)) <= 1, r > 0),
    ("SAPO's gate rises below r = 1", sp.diff(gate(4, tau * (r - 1)), r) > 0, r < sp.Rational(4, 5)),
    ("SAPO's gate falls above r = 1", sp.diff(gate(4, tau * (r - 1)), r) < 0, r > sp.Rational(6, 5)),
    ("cosh >= 1", sp.cosh(tau * (r - 1)) >= 1, r > 0),
    ("cube root below the mean", r ** sp.Rational(1, 3) <= (r + 2) / 3, r > 0),
    ("r^k e^(-r) <= r^k, symbolic k", r**tau * sp.exp(-r) <= r**tau, r > 0),
])
def test_true_non_polynomial_claim_is_proved_by_z3(label, statement, where):
    outcome = decide(statement, where)
    assert outcome.status == PROVED, (label, outcome)
    assert "z3" in outcome.how


def test_sapo_boundedness_needs_the_exp_abstraction():
    # the polynomial-only translation refuses exp; refute adds exp's side facts and proves it
    claim = gate(4, tau * (engine.u - 1)) <= 1
    with pytest.raises(z3bridge.Unsupported, match="side facts"):
        z3bridge.to_z3(claim, {engine.u: z3.Real("u"), tau: z3.Real("tau")})
    assert z3bridge.refute(claim, sp.true, [engine.u, tau])[0] == PROVED


# --- false claims are refuted with a real counterexample ------------------------------------
@pytest.mark.parametrize("label, statement, where, var", [
    ("a 5σ(1−σ) gate exceeds 1 at r = 1", gate(5, tau * (r - 1)) <= 1, r > 0, r),
    ("log r >= r - 1", sp.log(r) >= r - 1, r > 0, r),
    ("the gate rises on the wrong side", sp.diff(gate(4, tau * (r - 1)), r) > 0, r > sp.Rational(1, 2), r),
    ("exp(x) >= 2.72·x (false near x = 1)", sp.exp(x) >= sp.Rational(272, 100) * x, sp.true, x),
    ("sqrt(r) <= r", sp.sqrt(r) <= r, r > 0, r),
])
def test_false_claim_is_refuted_and_the_point_really_violates_it(label, statement, where, var):
    # z3 directly (the engine would often find these at its sample points first)
    free = sorted(statement.free_symbols | where.free_symbols, key=str)
    status, model = z3bridge.refute(statement, where, free)
    assert status == DISPROVED, label
    point = {s: sp.nsimplify(model[s.name]) for s in free}
    assert where.subs(point) is sp.true
    assert statement.subs(point) is sp.false, (label, point)


def test_false_claim_through_the_engine_is_disproved():
    outcome = decide(gate(5, tau * (r - 1)) <= 1, r > 0)
    assert outcome.status == DISPROVED and outcome.counterexample


def test_a_spurious_model_is_refined_not_reported():
    # exp(x) >= 2.7x is true (min of e^x - 2.7x is 2.7(1 - ln 2.7) > 0) but only barely: the first
    # models of the abstraction violate it, and only tangent cuts near x = ln 2.7 rule them out
    claim = sp.exp(x) >= sp.Rational(27, 10) * x
    assert z3bridge.decide(claim, sp.true, [x]).status == PROVED
    saved = z3bridge.REFINEMENTS
    try:
        z3bridge.REFINEMENTS = 0
        verdict = z3bridge.decide(claim, sp.true, [x])
    finally:
        z3bridge.REFINEMENTS = saved
    assert verdict.status == "unknown" and "not counterexamples" in verdict.reason


def test_verdicts_agree_with_the_closed_form_truth():
    # exp(x) >= a·x + b for all x: true iff b <= a − a·ln a (a > 0); never proved when false,
    # never refuted when true
    rng = random.Random(0)
    seen = set()
    for _ in range(16):
        a = sp.Rational(rng.randint(1, 40), 10)
        b = sp.Rational(rng.randint(-20, 20), 10)
        truth = float(b) <= float(a) - float(a) * math.log(float(a))
        verdict = z3bridge.decide(sp.exp(x) >= a * x + b, sp.true, [x])
        seen.add(verdict.status)
        if verdict.status == PROVED:
            assert truth, (a, b)
        elif verdict.status == DISPROVED:
            assert not truth, (a, b)
            at = sp.nsimplify(verdict.model["x"])
            assert (sp.exp(at) >= a * at + b) is sp.false, (a, b, at)
    assert {PROVED, DISPROVED} <= seen


# --- what cannot be translated or decided stays unknown, with the reason ---------------------
def test_untranslatable_claim_is_unknown_with_the_reason():
    outcome = decide(sp.sin(r) < r + 1, r > 0)
    assert outcome.status == UNKNOWN
    assert "cannot translate sin" in outcome.how


def test_log_of_a_possibly_negative_argument_is_not_encoded():
    outcome = decide(sp.log(x + 1) < x + 1, x > -2)
    assert outcome.status == UNKNOWN
    assert "log(x + 1) > 0 does not follow" in outcome.how
    assert decide(sp.log(x + 1) <= x, x > -1).status == PROVED  # where it is defined: proved


def test_true_but_beyond_the_tangent_facts_is_unknown_not_proved():
    # exp(x) > 1 + x + x²/2 for x > 0 is true, but tangent lines cannot bound the cubic gap near 0
    outcome = decide(sp.exp(x) > 1 + x + x**2 / 2, x > 0)
    assert outcome.status == UNKNOWN
    assert "not counterexamples" in outcome.how
    with pytest.raises(z3bridge.Undecided):
        z3bridge.refute(sp.exp(x) > 1 + x + x**2 / 2, x > 0, [x])


def test_polynomial_claims_behave_as_before():
    status, model = z3bridge.refute(r**2 < 2, r > 1, [r])
    assert status == DISPROVED and sp.nsimplify(model["r"]) ** 2 >= 2
    assert z3bridge.refute(r**2 >= 0, sp.true, [r]) == (PROVED, None)
