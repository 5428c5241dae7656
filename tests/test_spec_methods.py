"""The spec's structure, its agreement with docs/methods.md, and DGPO's solved constants."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sympy as sp

from spec import CASES, METHODS, REGIONS, region_condition, sg, strip_sg
from spec import symbols as S
from spec.family import CLAIMS
from spec.methods import dgpo

DOCS = Path(__file__).resolve().parents[1] / "docs" / "methods.md"


def _docs_defaults() -> dict[str, dict[str, float | None]]:
    """The defaults table of docs/methods.md, parsed: | `name` | eps_low 0.2, ... |."""
    out = {}
    for name, body in re.findall(r"^\| `(\w+)` \| ((?:\w+ [\w.]+(?:, )?)+) \|$", DOCS.read_text(), re.M):
        pairs = [item.split() for item in body.split(", ")]
        out[name] = {k: (None if v == "None" else float(v)) for k, v in pairs}
    return out


def test_docs_defaults_table_is_the_spec_defaults():
    docs = _docs_defaults()
    assert set(docs) == set(METHODS)
    for name, spec in METHODS.items():
        assert {k: (None if v is None else float(v)) for k, v in spec.defaults().items()} == docs[name], name


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_covers_every_region(name):
    spec = METHODS[name]
    assert set(spec.branches) == set(REGIONS)
    for region in REGIONS:
        assert not spec.V_r(region).has(S.p)  # V is written in the ratio
        # and in p_old only where a method's examples say how (DPPO's masks move with p_old)
        if spec.V_r(region).has(S.p_old):
            assert spec.examples and all(ex.p_old is not None for ex in spec.examples), (name, region)


@pytest.mark.parametrize("name", list(METHODS))
def test_defaults_lie_in_their_domains(name):
    for h in METHODS[name].hparams:
        assert h.check(h.default) is None, (name, h.name)


def test_symbol_names_and_assumptions():
    assert set(S.SYMBOLS) == {"p", "p_old", "r", "A", "eps_low", "eps_high", "n", "m", "beta1", "beta2",
                              "dual_clip"}
    assert S.n.is_integer and S.n.is_positive and S.m.is_integer and S.m.is_positive
    assert S.p.is_positive and S.p_old.is_positive and S.eps_low.is_positive and S.A.is_real


def test_sg_has_value_x_and_derivative_zero():
    assert sp.diff(sg(S.p) * S.p, S.p) == sg(S.p)
    assert sg(S.p).subs(S.p, sp.Rational(1, 3)) == sp.Rational(1, 3)
    assert strip_sg(sg(S.p) ** 2 * S.p_old) == S.p**2 * S.p_old


def test_dgpo_constants_satisfy_continuity_and_match_the_docs_formula():
    c_left, c_right = dgpo.CONSTANTS["C_left"], dgpo.CONSTANTS["C_right"]
    for region, const, value in (("LN", dgpo.C_left, c_left), ("HP", dgpo.C_right, c_right)):
        eq = dgpo.CONTINUITY[region]
        assert sp.simplify((eq.lhs - eq.rhs).subs(const, value)) == 0
    # docs/methods.md, written independently of the solver
    docs_left = 1 / (S.p_old ** (S.n + 1) * (1 - S.eps_low) ** S.n)
    docs_right = (1 + S.eps_high) ** (1 / S.m) / S.p_old ** ((S.m - 1) / S.m)
    assert sp.simplify(c_left - docs_left) == 0
    assert sp.simplify(c_right - docs_right) == 0


def test_dgpo_constants_are_solved_not_typed():
    source = Path(dgpo.__file__).read_text()
    assert "sp.solve(" in source
    assert "(1 - eps_low) ** n" not in source and "(1 - eps_low)**n" not in source


def test_family_facts_hold_for_dgpo():
    for claim in CLAIMS:
        for _, _, lhs, rhs in claim.pairs(METHODS["dgpo"], METHODS[claim.target]):
            assert sp.simplify(lhs - rhs) == 0, claim.label


def test_region_conditions_partition_the_ratio_axis():
    hp = {S.eps_low: sp.Rational(1, 5), S.eps_high: sp.Rational(3, 10)}
    for r in (sp.Rational(1, 2), sp.Rational(4, 5), 1, sp.Rational(13, 10), 2):
        for a in (-1, 1):
            holding = [reg for reg in REGIONS if region_condition(reg).subs({**hp, S.r: r, S.A: a})]
            assert len(holding) == 1, (r, a, holding)
    assert {reg for reg, _ in CASES} == set(REGIONS)


def test_breakpoints_include_dual_clip_only_where_the_method_has_it():
    assert set(METHODS["grpo"].breakpoints()) == {"left", "right", "dual_clip"}
    assert set(METHODS["dgpo"].breakpoints()) == {"left", "right"}


@pytest.mark.parametrize("name", list(METHODS))
def test_worked_examples_are_what_the_spec_gives(name):
    """The record's examples (typed by hand) against the spec's V at the defaults."""
    spec = METHODS[name]
    assert spec.examples, f"spec/methods/{name}.py has no worked examples"
    values = spec.subs_values()
    for r, a, v, p_old in spec.examples:
        region = next(reg for reg in REGIONS
                      if region_condition(reg).subs(values).subs({S.r: sp.nsimplify(r), S.A: a}) is sp.true)
        at = {S.r: sp.nsimplify(r)} if p_old is None else {S.r: sp.nsimplify(r), S.p_old: sp.nsimplify(p_old)}
        got = sp.N(spec.case(spec.V_r(region), 1 if a > 0 else -1).subs(values).subs(at))
        assert float(got) == pytest.approx(v, rel=1e-12, abs=1e-15), (name, r, a, region)


def test_expected_statuses_name_real_obligations():
    from proofs.theorems import THEOREMS

    for name, spec in METHODS.items():
        assert set(spec.disproved) <= set(THEOREMS), name
        assert all(why.strip() for why in spec.disproved.values()), f"{name}: say why"


@pytest.mark.parametrize("name", list(METHODS))
def test_proof_samples_lie_in_each_records_domain(name):
    """The proof engine scans a parameter's samples for counterexamples: a record that narrows a
    domain (``with_domain``) must not leave samples outside it."""
    for h in METHODS[name].hparams:
        for x in h.samples:
            value = int(x) if h.integer else float(x)
            assert h.check(value) is None, (name, h.name, x)
        assert h.default is None or not h.samples or h.check(h.default) is None


def test_a_record_must_give_every_building_block_its_default():
    """spec/hparams.py's building blocks carry no default: the record gives it (one place)."""
    from spec.core import MethodSpec
    from spec.hparams import EPS_HIGH, EPS_LOW, TRUNC, UNSET

    assert all(h.default is UNSET for h in (EPS_LOW, EPS_HIGH, TRUNC))
    pg = METHODS["pg"]
    with pytest.raises(ValueError, match="eps_high has no default"):
        MethodSpec(name="x", title="x", summary="x", hparams=(EPS_LOW.with_default(0.2), EPS_HIGH),
                   branches=pg.branches)
