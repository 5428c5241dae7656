"""The method drafts (spec/drafts): library examples match the SymPy weights, and ``prove`` decides them.

Each draft's ``EXAMPLES`` were computed with verl's / TRL's own loss code
(spec/drafts/library_examples.py); here the draft's SymPy V and surrogate must reproduce them.
Then every obligation is decided through the engine's public path (``proofs.run.prove``) with the
draft's sample values, and must equal the draft's ``EXPECTED``, the limits included (a
``Limit`` that trusts ``sympy.limit`` as the engine once did fails here: it "proves" dppo_tv's
false vanishing claim and crashes on dppo_kl's).
"""

from __future__ import annotations

import math

import pytest
import sympy as sp

from proofs import engine
from proofs.engine import UNKNOWN
from proofs.run import prove
from proofs.theorems import THEOREMS
from spec import symbols as S
from spec.core import REGIONS, region_condition
from spec.drafts import DRAFTS

EPS = {S.eps_low: sp.Rational(1, 5), S.eps_high: sp.Rational(1, 5)}  # where the regions are cut


def _point(example: dict) -> tuple[str, int, dict]:
    r, A = sp.nsimplify(example["r"]), sp.nsimplify(example["A"])
    region = next(g for g in REGIONS if region_condition(g).subs({S.r: r, S.A: A, **EPS}) is sp.true)
    return region, 1 if A > 0 else -1, {S.r: r, S.p_old: sp.nsimplify(example["p_old"])}


@pytest.mark.parametrize("name", list(DRAFTS))
def test_library_examples_match_the_drafts_weight_and_surrogate(name):
    draft = DRAFTS[name]
    spec = draft.SPEC
    assert len(draft.EXAMPLES) >= 3
    for ex in draft.EXAMPLES:
        defaults = spec.subs_values(ex.get("hparams"))  # the library's default where it differs
        region, sign, at = _point(ex)
        V = spec.case(spec.V_r(region), sign).subs(defaults).subs(at)
        assert math.isclose(float(V), ex["V"], rel_tol=1e-7, abs_tol=1e-12), (name, ex, float(V))
        J = spec.case(S.strip_sg(spec.J(region)), sign).subs(defaults).subs(S.p, S.r * S.p_old).subs(at)
        loss = -ex["A"] * float(J)  # one token: the loss is −A·J
        assert math.isclose(loss, ex["loss"], rel_tol=1e-7, abs_tol=1e-12), (name, ex, loss)


def test_verl_and_trl_sapo_are_the_same_per_token_loss():
    rows = {}
    for ex in DRAFTS["sapo"].EXAMPLES:
        rows.setdefault((ex["r"], ex["A"]), {})[ex["library"]] = ex
    assert rows and all(set(pair) == {"verl", "trl"} for pair in rows.values())
    for pair in rows.values():
        # equal up to ~1e-8: verl's seq-mean-token-mean adds 1e-8 to the token count, and TRL's
        # torch.where(A > 0, 1.0, 1.05) makes the temperatures float32 (tau_neg = 1.0499999523)
        assert math.isclose(pair["verl"]["V"], pair["trl"]["V"], rel_tol=1e-7)
        assert pair["verl"]["V"] != pair["trl"]["V"]


@pytest.mark.parametrize("name", list(DRAFTS))
def test_defaults_are_inside_their_domains(name):
    for h in DRAFTS[name].SPEC.hparams:
        assert h.check(h.default) is None, (name, h.name)
        assert h.condition().subs(h.symbol, h.exact(h.default)) is sp.true


CASES = [(name, theorem) for name in DRAFTS for theorem in THEOREMS]


def _prove_draft(name: str, theorem: str, monkeypatch) -> list:
    """The draft's records for one theorem, decided with its sample values; they must be EXPECTED."""
    draft = DRAFTS[name]
    for symbol, values in draft.SAMPLES.items():
        monkeypatch.setitem(engine.SAMPLES, symbol, values)
    records = prove(THEOREMS[theorem], draft.SPEC, expected=draft.EXPECTED[theorem])
    assert records and all(r.status != UNKNOWN for r in records), [(r.instance, r.how) for r in records]
    assert {r.status for r in records} == {draft.EXPECTED[theorem]}, [(r.how, r.counterexample) for r in records]
    return records


@pytest.mark.parametrize("name, theorem", CASES)
def test_prove_decides_every_obligation_of_every_draft(name, theorem, monkeypatch):
    _prove_draft(name, theorem, monkeypatch)


def test_the_vanishing_limits_are_decided_with_checkable_evidence(monkeypatch):
    # dppo_tv: the mask's branch near r = 0 depends on p_old vs delta_low; disproved at a sample
    # point with p_old <= delta_low, where the limit is 1
    [tv] = _prove_draft("dppo_tv", "vanishing", monkeypatch)
    cex = tv.counterexample
    assert sp.Rational(cex["p_old"]) <= sp.Rational(cex["delta_low"]) and cex["limit"] == "1", cex
    # vespo: r**(k_neg - 1), an exponent of either sign; disproved at a sample k_neg < 1 (limit oo)
    [ve] = _prove_draft("vespo", "vanishing", monkeypatch)
    assert sp.Rational(ve.counterexample["k_neg"]) < 1 and ve.counterexample["limit"] == "oo", ve.counterexample
    # tis: Min(r, trunc) = r near r = 0 for every trunc > 0: W*p_old -> 1, for all hyper-parameters
    [ti] = _prove_draft("tis", "vanishing", monkeypatch)
    assert ti.counterexample["limit"] == "1" and "Min resolved" in ti.how, (ti.how, ti.counterexample)
    # dppo_kl: the binary KL -> oo as r -> 0+, so the mask drops the token for every p_old, delta_low
    [kl] = _prove_draft("dppo_kl", "vanishing", monkeypatch)
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
def test_a_limit_that_trusts_sympy_limit_fails_the_drafts_check(name, monkeypatch):
    monkeypatch.setattr(engine.Limit, "decide", _blind_limit_decide)
    # dppo_tv: "proved" (the mask condition dropped); dppo_kl: TypeError; vespo, tis: unknown
    with pytest.raises((AssertionError, TypeError)):
        _prove_draft(name, "vanishing", monkeypatch)


def test_sapo_is_fully_decided_with_z3_on_the_sigmoid():
    # the three obligations the polynomial-only bridge left unknown (issue 14)
    draft = DRAFTS["sapo"]
    for theorem in ("boundedness", "monotonicity", "logit_bound"):
        records = prove(THEOREMS[theorem], draft.SPEC)
        assert [r.status for r in records] == ["proved"]
        assert "z3" in records[0].how


def test_the_engine_gaps_expected_statuses_are_right():
    # dppo_tv, vanishing: for p_old <= delta_low the mask keeps every r < 1, so W·p_old = 1 as r -> 0
    tv = DRAFTS["dppo_tv"]
    w = tv.SPEC.case(tv.SPEC.V_r("LN"), -1) / S.r
    at = {S.p_old: sp.Rational(1, 10), tv.DELTA_LOW.symbol: sp.Rational(1, 5), tv.TRUNC.symbol: 3}
    assert all(w.subs(at).subs(S.r, sp.Rational(1, 10**k)) == 1 for k in (3, 6, 9))
    assert tv.EXPECTED["vanishing"] == "disproved"
    # vespo, vanishing: k_neg = 1/2 (inside k_neg > 0) makes W·p_old = e^λ r^(-1/2) e^(-λr) diverge
    ve = DRAFTS["vespo"]
    w = ve.SPEC.case(ve.SPEC.V_r("LN"), -1) / S.r
    assert sp.limit(w.subs({ve.K_NEG.symbol: sp.Rational(1, 2), ve.LAMBDA_NEG.symbol: 2}), S.r, 0, "+") == sp.oo
    assert ve.EXPECTED["vanishing"] == "disproved"
    # dppo_kl, vanishing: the binary KL -> oo as r -> 0, so the mask drops the token (W = 0)
    kl = DRAFTS["dppo_kl"]
    w = kl.SPEC.case(kl.SPEC.V_r("LN"), -1) / S.r
    at = {S.p_old: sp.Rational(1, 10), kl.DELTA_LOW.symbol: sp.Rational(1, 5), kl.TRUNC.symbol: 3}
    assert w.subs(at).subs(S.r, sp.Rational(1, 10**6)) == 0
    assert kl.EXPECTED["vanishing"] == "proved"
    # tis, vanishing: W·p_old = min(r, trunc)/r = 1 for r < trunc
    ti = DRAFTS["tis"]
    w = ti.SPEC.case(ti.SPEC.V_r("LN"), -1) / S.r
    assert w.subs(ti.TRUNC.symbol, 2).subs(S.r, sp.Rational(1, 10**6)) == 1
    assert ti.EXPECTED["vanishing"] == "disproved"
