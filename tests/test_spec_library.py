"""The records of the verl / TRL losses (spec/methods: sapo, vespo, gpg, tis, dppo_tv, dppo_kl) against
the libraries' own numbers, and the proof engine's decisions on their non-polynomial weights.

Each record's ``library`` rows were computed with verl's / TRL's own loss code
(scripts/library_examples.py, docs/library-losses.md); the record's SymPy V and surrogate must
reproduce them. The vanishing limits (masks, Min, exponents of either sign) must be decided with
checkable evidence: a ``Limit`` that trusts ``sympy.limit`` as the engine once did fails here (it
"proves" dppo_tv's false vanishing claim and crashes on dppo_kl's).
"""

from __future__ import annotations

import math

import pytest
import sympy as sp

from proofs import engine
from proofs.engine import UNKNOWN
from proofs.run import prove
from proofs.theorems import THEOREMS
from spec import METHODS
from spec import symbols as S
from spec.core import REGIONS, region_condition

LIBRARY_METHODS = [name for name, spec in METHODS.items() if spec.library]
EPS = {S.eps_low: sp.Rational(1, 5), S.eps_high: sp.Rational(1, 5)}  # where the regions are cut


def test_the_library_methods_have_library_rows():
    assert {"sapo", "vespo", "gpg", "tis", "dppo_tv", "dppo_kl"} <= set(LIBRARY_METHODS)
    for name in LIBRARY_METHODS:
        assert METHODS[name].sources, f"spec/methods/{name}.py: say where the libraries have it"


@pytest.mark.parametrize("name", LIBRARY_METHODS)
def test_library_numbers_are_the_records_weight_and_surrogate(name):
    spec = METHODS[name]
    assert len(spec.library) >= 3
    for ex in spec.library:
        values = spec.subs_values(ex.hparams)  # the library's effective value where it differs
        r, A = sp.nsimplify(ex.r), sp.nsimplify(ex.A)
        region = next(g for g in REGIONS if region_condition(g).subs({S.r: r, S.A: A, **EPS}) is sp.true)
        sign, at = 1 if ex.A > 0 else -1, {S.r: r, S.p_old: sp.nsimplify(ex.p_old)}
        V = spec.case(spec.V_r(region), sign).subs(values).subs(at)
        assert math.isclose(float(V), ex.V, rel_tol=1e-7, abs_tol=1e-12), (name, ex, float(V))
        J = spec.case(S.strip_sg(spec.J(region)), sign).subs(values).subs(S.p, S.r * S.p_old).subs(at)
        loss = -ex.A * float(J)  # one token: the loss is −A·J
        assert math.isclose(loss, ex.loss, rel_tol=1e-7, abs_tol=1e-12), (name, ex, loss)


def test_verl_and_trl_sapo_are_the_same_per_token_loss():
    rows: dict = {}
    for ex in METHODS["sapo"].library:
        rows.setdefault((ex.r, ex.A), {})[ex.library] = ex
    assert rows and all(set(pair) == {"verl", "trl"} for pair in rows.values())
    for pair in rows.values():
        # equal up to ~1e-8: verl's seq-mean-token-mean adds 1e-8 to the token count, and TRL's
        # torch.where(A > 0, 1.0, 1.05) makes the temperatures float32 (tau_neg = 1.0499999523)
        assert math.isclose(pair["verl"].V, pair["trl"].V, rel_tol=1e-7)
        assert pair["verl"].V != pair["trl"].V


def test_tis_default_is_verls_and_trls_differs():
    tis = METHODS["tis"]
    assert tis.hparam("trunc").default == 2.0
    assert {ex.hparams["trunc"] for ex in tis.library if ex.library == "trl"} == {0.2}
    assert all(ex.hparams is None for ex in tis.library if ex.library == "verl")


def _decided(name: str, theorem: str) -> list:
    spec = METHODS[name]
    records = prove(THEOREMS[theorem], spec)
    assert records and all(r.status != UNKNOWN for r in records), [(r.instance, r.how) for r in records]
    assert {r.status for r in records} == {spec.expected(theorem)}, [(r.how, r.counterexample) for r in records]
    return records


def test_the_vanishing_limits_are_decided_with_checkable_evidence():
    # dppo_tv: the mask's branch near r = 0 depends on p_old vs delta_low; disproved at a sample
    # point with p_old <= delta_low, where the limit is 1
    [tv] = _decided("dppo_tv", "vanishing")
    cex = tv.counterexample
    assert sp.Rational(cex["p_old"]) <= sp.Rational(cex["delta_low"]) and cex["limit"] == "1", cex
    # vespo: r**(k_neg - 1), an exponent of either sign; disproved at a sample k_neg < 1 (limit oo)
    [ve] = _decided("vespo", "vanishing")
    assert sp.Rational(ve.counterexample["k_neg"]) < 1 and ve.counterexample["limit"] == "oo", ve.counterexample
    # tis: Min(r, trunc) = r near r = 0 for every trunc > 0: W*p_old -> 1, for all hyper-parameters
    [ti] = _decided("tis", "vanishing")
    assert ti.counterexample["limit"] == "1" and "Min resolved" in ti.how, (ti.how, ti.counterexample)
    # dppo_kl: the binary KL -> oo as r -> 0+, so the mask drops the token for every p_old, delta_low
    [kl] = _decided("dppo_kl", "vanishing")
    assert "Piecewise resolved" in kl.how, kl.how


def _blind_limit_decide(self, ctx, inst):
    """Limit.decide as it was before issue 14: it trusts sympy.limit (the mutant)."""
    expr = ctx.prepare(self.expr).subs(inst)
    try:
        value = sp.limit(expr, self.var, self.point, "+")
    except (NotImplementedError, ValueError):
        value = None
    if value is None or value.has(sp.Limit):
        return None if set(ctx.family) & expr.free_symbols else engine.Outcome(UNKNOWN, "sympy limit failed")
    value = sp.refine(value, sp.Q.lt(S.eps_low, 1))
    if engine.is_zero(value - self.expected) if value.is_finite else False:
        return engine.Outcome(engine.PROVED, "sympy limit")
    if value.free_symbols and not value.is_infinite:
        cex = engine.search_identity(value, self.expected, sp.true)
        if cex is None:
            return None if set(ctx.family) & expr.free_symbols else engine.Outcome(UNKNOWN, "sympy limit")
        return engine.Outcome(engine.DISPROVED, "sympy limit", {"claim": self.label, "limit": str(value), **cex})
    return engine.Outcome(engine.DISPROVED, "sympy limit", {"claim": self.label, "limit": str(value)})


@pytest.mark.parametrize("name", ["dppo_tv", "dppo_kl", "vespo", "tis"])
def test_a_limit_that_trusts_sympy_limit_fails_the_records_check(name, monkeypatch):
    monkeypatch.setattr(engine.Limit, "decide", _blind_limit_decide)
    # dppo_tv: "proved" (the mask condition dropped); dppo_kl: TypeError; vespo, tis: unknown
    with pytest.raises((AssertionError, TypeError)):
        _decided(name, "vanishing")


def test_sapo_is_fully_decided_with_z3_on_the_sigmoid():
    # the three obligations the polynomial-only bridge left unknown (issue 14)
    for theorem in ("boundedness", "monotonicity", "logit_bound"):
        records = prove(THEOREMS[theorem], METHODS["sapo"])
        assert [r.status for r in records] == ["proved"]
        assert "z3" in records[0].how


def test_the_expected_vanishing_statuses_are_right():
    # dppo_tv: for p_old <= delta_low the mask keeps every r < 1, so W·p_old = 1 as r -> 0
    tv = METHODS["dppo_tv"]
    w = tv.case(tv.V_r("LN"), -1) / S.r
    at = {S.p_old: sp.Rational(1, 10), tv.hparam("delta_low").symbol: sp.Rational(1, 5), tv.hparam("trunc").symbol: 3}
    assert all(w.subs(at).subs(S.r, sp.Rational(1, 10**k)) == 1 for k in (3, 6, 9))
    assert tv.expected("vanishing") == "disproved"
    # vespo: k_neg = 1/2 (inside k_neg > 0) makes W·p_old = e^λ r^(-1/2) e^(-λr) diverge
    ve = METHODS["vespo"]
    w = ve.case(ve.V_r("LN"), -1) / S.r
    k_neg, lam = ve.hparam("k_neg").symbol, ve.hparam("lambda_neg").symbol
    assert sp.limit(w.subs({k_neg: sp.Rational(1, 2), lam: 2}), S.r, 0, "+") == sp.oo
    assert ve.expected("vanishing") == "disproved"
    # dppo_kl: the binary KL -> oo as r -> 0, so the mask drops the token (W = 0)
    kl = METHODS["dppo_kl"]
    w = kl.case(kl.V_r("LN"), -1) / S.r
    at = {S.p_old: sp.Rational(1, 10), kl.hparam("delta_low").symbol: sp.Rational(1, 5), kl.hparam("trunc").symbol: 3}
    assert w.subs(at).subs(S.r, sp.Rational(1, 10**6)) == 0
    assert kl.expected("vanishing") == "proved"
    # tis: W·p_old = min(r, trunc)/r = 1 for r < trunc
    ti = METHODS["tis"]
    w = ti.case(ti.V_r("LN"), -1) / S.r
    assert w.subs(ti.hparam("trunc").symbol, 2).subs(S.r, sp.Rational(1, 10**6)) == 1
    assert ti.expected("vanishing") == "disproved"
