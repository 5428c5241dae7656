"""The proof engine's limit obligations (proofs.engine.Limit): sound, decided, never a crash.

``sympy.limit`` drops Piecewise conditions that carry free symbols, has no series for Min/Max at
the point and fails on powers whose exponent has an unknown sign; the engine resolves those
branches near the point first, splits into cases on a sign the domains leave open, disproves at a
concrete point, and otherwise says "unknown".
"""

from __future__ import annotations

import pytest
import sympy as sp
from test_spec_library import _blind_limit_decide

from proofs import engine
from proofs.engine import DISPROVED, PROVED, UNKNOWN, Context, Limit, Near
from spec import symbols as S

r, p_old, el, eh, b1 = S.r, S.p_old, S.eps_low, S.eps_high, S.beta1
#: the domains the claims below are decided against (as for a method with these hyper-parameters)
CTX = Context(domain=sp.And(el < 1, eh > 0, b1 > 0))


def _decide(expr: sp.Expr, expected: sp.Expr = sp.S.Zero):
    return Limit("claim", expr, r, sp.S.Zero, expected).decide(CTX, {})


def _check_mask_claims(decide) -> None:
    """The soundness checks on masks whose branch near r = 0 depends on the hyper-parameters."""
    # keeps the token (W*p_old = 1) iff p_old <= eps_low near r = 0: false, shown at a point
    for threshold in (el, el / 100):  # no sample point has p_old <= eps_low/100: z3's model of the case
        out = decide(sp.Piecewise((1, p_old * (r - 1) >= -threshold), (0, True)))
        assert out.status == DISPROVED, out
        cex = out.counterexample
        at = {p_old: sp.Rational(cex["p_old"]), el: sp.Rational(cex["eps_low"])}
        assert at[p_old] <= threshold.subs(at) and cex["limit"] == "1", cex
    # true in every case (r or 0 both vanish): proved by cases on the sign of eps_low - p_old
    out = decide(sp.Piecewise((r, p_old * (r - 1) >= -el), (0, True)))
    assert out.status == PROVED and "by cases" in out.how, out


def test_a_branch_that_depends_on_the_hyper_parameters_is_not_proved():
    _check_mask_claims(_decide)


def test_a_limit_that_trusts_sympy_limit_fails_the_mask_checks():
    mutant = lambda expr, expected=sp.S.Zero: _blind_limit_decide(  # noqa: E731
        Limit("claim", expr, r, sp.S.Zero, expected), CTX, {})
    with pytest.raises(AssertionError):
        _check_mask_claims(mutant)


def test_a_branch_settled_for_every_hyper_parameter_is_resolved_and_proved():
    # -p_old*log r -> oo: the condition fails near r = 0 whatever p_old, eps_low: W*p_old = 0 there
    out = _decide(sp.Piecewise((1 / r, -p_old * sp.log(r) <= el), (0, True)))
    assert out.status == PROVED and "Piecewise resolved" in out.how, out
    # the sides meet at the point (p_old*r -> 0): decided by the sign of p_old*r itself
    out = _decide(sp.Piecewise((1, p_old * r > 0), (0, True)), sp.S.One)
    assert out.status == PROVED, out


def test_min_max_abs_take_their_branch_near_the_point():
    assert _decide(sp.Min(r, eh) / r, sp.S.One).status == PROVED
    out = _decide(sp.Min(r, eh) / r)
    assert out.status == DISPROVED and out.counterexample["limit"] == "1", out
    assert _decide(sp.Max(r, eh) * r).status == PROVED
    assert _decide(sp.Abs(r - el) / el, sp.S.One).status == PROVED


def test_exponent_signs_come_from_the_domains_or_a_sample_point():
    # 1 - eps_low > 0 only by the domain eps_low < 1 (z3), not by SymPy's assumptions
    assert _decide(r ** (1 - el)).status == PROVED
    out = _decide(r ** (el - 1))
    assert out.status == DISPROVED and out.counterexample["limit"] == "oo", out
    # beta1 - 1 has either sign in the domain: beta1 = 1/2 (a sample value) diverges
    out = _decide(r ** (b1 - 1))
    assert out.status == DISPROVED and sp.Rational(out.counterexample["beta1"]) < 1, out
    assert out.counterexample["limit"] == "oo"


def test_sympy_errors_are_unknown_with_the_reason_not_a_crash(monkeypatch):
    def broken(*args, **kwargs):
        raise TypeError("Invalid comparison of non-real zoo")

    monkeypatch.setattr(sp, "limit", broken)
    out = _decide(r)
    assert out.status == UNKNOWN and "TypeError" in out.how, out


def test_an_unsupported_function_is_unknown_even_when_the_claim_is_false():
    out = _decide(sp.floor(r) * r)  # true (0 on (0, 1)) but floor is not resolved: unknown
    assert out.status == UNKNOWN and "floor" in out.how, out
    out = _decide(sp.ceiling(r))  # false (1 on (0, 1)): unknown, not proved
    assert out.status == UNKNOWN and "ceiling" in out.how, out


def test_near_never_resolves_an_unsettled_condition():
    near = Near(r, sp.S.Zero, sp.And(el < 1, p_old <= 1))
    with pytest.raises(engine.Open):
        near.eventually(p_old * (r - 1) >= -el)
    assert near.eventually(sp.Or(r >= 1, -sp.log(r) <= el)) is False
    assert near.eventually(sp.And(r < 1, r < el)) is True
