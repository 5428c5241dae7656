"""Every method's gradient and loss value against an independent float64 evaluation of
docs/methods.md (tests/test_ref_reference.py), plus regions, metrics and the registry."""

from __future__ import annotations

import math
import pathlib
import subprocess
import sys

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_ref_reference import load

import dgpo_ref
from dgpo_ref import _generated_hparams as GENERATED
from spec import METHODS as SPECS

REF = load()
METHODS = sorted(dgpo_ref.LOSSES)
#: the methods the independent float64 reference writes out (tests/test_ref_reference.py)
WRITTEN = sorted(REF.WRITTEN)


def _hparam(method: str, name: str) -> st.SearchStrategy:
    """A value inside the method's domain (from its spec record, through the generated module)."""
    lower, upper, integer, optional, _ = GENERATED.DOMAINS[method][name]
    if integer:
        inner = st.integers(lower + 1, lower + 4)
    else:
        hi = upper if upper is not None else lower + 2.0
        inner = st.floats(lower + 0.05 * (hi - lower), hi - 0.05 * (hi - lower))
    return st.one_of(st.none(), inner) if optional else inner


def _reference(method, lp, olp, adv, mask, hp):
    """(loss, grad) in float64 from the reference table, token-mean."""
    n_tok = max(int(mask.sum()), 1)
    grad = torch.zeros_like(lp, dtype=torch.float64)
    loss = 0.0
    for (b, t), on in zip(torch.cartesian_prod(*(torch.arange(s) for s in lp.shape)).tolist(), mask.flatten()):
        if not on:
            continue
        r, a = math.exp(float(lp[b, t]) - float(olp[b, t])), float(adv[b])
        grad[b, t] = -a * REF.weight_v(method, r, a, float(lp[b, t]), **hp) / n_tok
        loss += -a * REF.value_j(method, r, a, float(lp[b, t]), **hp) / n_tok
    return loss, grad


def _near_kink(r, hp, margin):
    points = [1 - hp["eps_low"], 1 + hp["eps_high"]] + ([hp["dual_clip"]] if hp.get("dual_clip") else [])
    return any(abs(r / x - 1) < margin for x in points)


def _run(method, lp, olp, adv, mask, hp, dtype):
    lp_t = lp.detach().to(dtype).clone().requires_grad_(True)
    loss, metrics = dgpo_ref.policy_loss(
        method, log_prob=lp_t, old_log_prob=olp.to(dtype), advantages=adv.to(dtype),
        response_mask=mask, **hp,
    )
    loss.backward()
    return loss, lp_t.grad, metrics


@st.composite
def batches(draw, method):
    b, t = draw(st.integers(1, 4)), draw(st.integers(1, 6))
    logs = st.floats(-8.0, 0.0)
    lp = torch.tensor(draw(st.lists(st.lists(logs, min_size=t, max_size=t), min_size=b, max_size=b)))
    olp = torch.tensor(draw(st.lists(st.lists(logs, min_size=t, max_size=t), min_size=b, max_size=b)))
    adv = torch.tensor(draw(st.lists(st.sampled_from([-2.0, -0.5, 0.0, 0.7, 1.5]), min_size=b, max_size=b)))
    mask = torch.tensor(draw(st.lists(st.lists(st.booleans(), min_size=t, max_size=t), min_size=b, max_size=b)))
    hp = {k: draw(_hparam(method, k)) for k in dgpo_ref.LOSSES[method].defaults}
    return lp.double(), olp.double(), adv.double(), mask, hp


@pytest.mark.parametrize("method", WRITTEN)
@pytest.mark.parametrize("dtype,margin,rtol", [(torch.float64, 1e-9, 1e-10), (torch.float32, 1e-4, 2e-5)])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_gradient_and_value_match_reference(method, dtype, margin, rtol, data):
    lp, olp, adv, mask, hp = data.draw(batches(method))
    lp, olp = lp.to(dtype).double(), olp.to(dtype).double()  # exactly representable in dtype
    ratios = torch.exp(lp - olp)
    if any(_near_kink(float(r), hp, margin) for r in ratios[mask]):
        return
    ref_loss, ref_grad = _reference(method, lp, olp, adv, mask, hp)
    loss, grad, _ = _run(method, lp, olp, adv, mask, hp, dtype)
    assert loss.dtype == dtype and grad.dtype == dtype
    torch.testing.assert_close(grad.double(), ref_grad, rtol=rtol, atol=1e-300)
    assert math.isclose(loss.item(), ref_loss, rel_tol=rtol, abs_tol=rtol * (1 + ref_grad.abs().sum().item()))


@pytest.mark.parametrize("method", METHODS)
def test_worked_examples(method):
    """V per region at the defaults: the worked examples of the method's record (spec/methods/), numbers
    typed from the formulas by hand (float64)."""
    rows = SPECS[method].examples
    assert len(rows) >= 3, f"spec/methods/{method}.py: give a few worked examples"
    olp = torch.tensor([[-3.0 if ex.p_old is None else math.log(ex.p_old)] for ex in rows], dtype=torch.float64)
    lp = olp + torch.tensor([[math.log(ex.r)] for ex in rows], dtype=torch.float64)
    adv = torch.tensor([float(ex.A) for ex in rows], dtype=torch.float64)
    mask = torch.ones_like(lp, dtype=torch.bool)
    _, grad, _ = _run(method, lp, olp, adv, mask, {}, torch.float64)
    expected = torch.tensor([[-ex.A * ex.V / len(rows)] for ex in rows], dtype=torch.float64)
    torch.testing.assert_close(grad, expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("method", ["grpo", "gppo", "ce_gppo"])
def test_dual_clip_zeroes_hn_beyond_c(method):
    olp = torch.full((2, 1), -3.0, dtype=torch.float64)
    lp = olp + torch.tensor([[math.log(2.5)], [math.log(3.5)]], dtype=torch.float64)
    _, grad, _ = _run(method, lp, olp, torch.tensor([-1.0, -1.0], dtype=torch.float64),
                      torch.ones_like(lp, dtype=torch.bool), {"dual_clip": 3.0}, torch.float64)
    assert grad[0, 0].item() == pytest.approx(2.5 / 2) and grad[1, 0].item() == 0.0


def _log_prob_hitting(r: float, old: float) -> torch.Tensor:
    """A float64 log_prob with exp(log_prob − old) == r exactly (searched over nearby floats)."""
    x = torch.tensor(old + math.log(r), dtype=torch.float64)
    for _ in range(64):
        got = float(torch.exp(x - torch.tensor(old, dtype=torch.float64)))
        if got == r:
            return x
        x = torch.nextafter(x, torch.tensor(math.inf if got < r else -math.inf, dtype=torch.float64))
    raise AssertionError(f"no float64 log_prob hits r={r}")


def test_breakpoints_belong_to_in():
    """Exactly at r = 1 − eps_low and 1 + eps_high the token is IN (grpo keeps V = r there)."""
    r = torch.tensor([[0.75], [1.5]], dtype=torch.float64)  # exact binary fractions
    olp = torch.tensor([[0.0], [-0.5]], dtype=torch.float64)
    lp = torch.stack([_log_prob_hitting(float(x), float(o)) for x, o in zip(r, olp)]).reshape(r.shape)
    assert torch.equal(torch.exp(lp - olp), r)
    adv = torch.tensor([-1.0, 1.0], dtype=torch.float64)
    mask = torch.ones_like(r, dtype=torch.bool)
    _, grad, metrics = _run("grpo", lp, olp, adv, mask, {"eps_low": 0.25, "eps_high": 0.5}, torch.float64)
    assert metrics["region/IN"] == 1.0
    torch.testing.assert_close(grad, torch.tensor([[0.75 / 2], [-1.5 / 2]], dtype=torch.float64))
    # one ulp outside: LN and HP, gradient 0
    out = torch.nextafter(r, torch.tensor([[0.0], [2.0]], dtype=torch.float64))
    _, grad, metrics = _run("grpo", olp + torch.log(out), olp, adv, mask, {"eps_low": 0.25, "eps_high": 0.5},
                            torch.float64)
    assert metrics["region/IN"] < 1.0 and metrics["region/LN"] + metrics["region/HP"] > 0


def test_zero_advantage_regions_and_gradient():
    """A = 0 outside IN counts in LP (r small) / HN (r large) and gets zero gradient."""
    olp = torch.full((1, 3), -3.0, dtype=torch.float64)
    lp = olp + torch.log(torch.tensor([[0.5, 2.0, 1.0]], dtype=torch.float64))
    _, grad, m = _run("dgpo", lp, olp, torch.zeros(1, dtype=torch.float64), torch.ones_like(lp, dtype=torch.bool),
                      {}, torch.float64)
    assert torch.equal(grad, torch.zeros_like(grad))
    assert (m["region/LP"], m["region/HN"], m["region/IN"]) == pytest.approx((1 / 3, 1 / 3, 1 / 3))


def test_metrics_regions_v_kl_ratio():
    r = [0.5, 1.0, 1.5, 0.5, 1.5]
    adv = [-1.0, 1.0, 1.0, 1.0, -1.0]  # LN, IN, HP, LP, HN
    olp = torch.full((1, 5), -3.0, dtype=torch.float64)
    lp = olp + torch.log(torch.tensor([r], dtype=torch.float64))
    lp_t = lp.clone().requires_grad_()
    _, m = dgpo_ref.policy_loss("dgpo", log_prob=lp_t, old_log_prob=olp, advantages=torch.tensor([adv]).double(),
                                response_mask=torch.ones_like(lp))
    assert all(isinstance(v, float) for v in m.values())
    for region in dgpo_ref.REGIONS:
        assert m[f"region/{region}"] == pytest.approx(0.2)
    assert m["v_mean/LN"] == pytest.approx(0.25 / 0.8) and m["v_max/HP"] == pytest.approx(math.sqrt(1.8))
    logs = [math.log(x) for x in r]
    assert m["kl/k1"] == pytest.approx(-sum(logs) / 5)
    assert m["kl/k3"] == pytest.approx(sum(x - 1 - math.log(x) for x in r) / 5)
    assert (m["ratio/min"], m["ratio/mean"], m["ratio/max"]) == pytest.approx((0.5, 1.0, 1.5))
    assert m["nonfinite_tokens"] == 0.0 and m["tokens"] == 5.0


def test_token_weight_is_v_over_p():
    p, p_old = torch.tensor([0.1, 0.5, 0.3], dtype=torch.float64), torch.tensor([0.5, 0.1, 0.3], dtype=torch.float64)
    adv = torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    for method in WRITTEN:
        w = dgpo_ref.token_weight(method, p, p_old, adv)
        ref = [REF.weight_v(method, float(a) and float(x / y), float(a)) / float(x) for x, y, a in zip(p, p_old, adv)]
        torch.testing.assert_close(w, torch.tensor(ref, dtype=torch.float64), rtol=1e-12, atol=0)
    assert dgpo_ref.token_weight("pg", 0.2, 0.4, 1.0).item() == pytest.approx(1 / 0.4)
    with pytest.raises(ValueError, match="p_old"):
        dgpo_ref.token_weight("pg", 0.2, 0.0, 1.0)


def test_registry_rows_defaults_and_domains_are_the_spec_records():
    assert list(dgpo_ref.LOSSES) == list(SPECS)
    for name, row in dgpo_ref.LOSSES.items():
        spec = SPECS[name]
        assert row.name == name and dict(row.defaults) == spec.defaults()
        assert set(row.domains) == set(row.defaults)
        with pytest.raises(TypeError):
            row.defaults["eps_low"] = 0.3  # read-only mapping
        for h in spec.hparams:  # the generated check accepts and rejects what the spec's does
            probes = [h.default, h.lower, h.lower + 0.5, h.lower + 1, h.lower + 2.5, None, math.inf, math.nan]
            probes += [] if h.upper == math.inf else [h.upper, h.upper - 1e-9, (h.lower + h.upper) / 2]
            for x in probes:
                spec_ok = h.check(x) is None and (not h.integer or x is None or float(x).is_integer())
                ref_ok = row.domains[h.name].holds(int(x) if h.integer and spec_ok and x is not None else x)
                assert spec_ok == ref_ok, (name, h.name, x)
    kw = dgpo_ref.dgpo_loss.__kwdefaults__
    assert {k: kw[k] for k in SPECS["dgpo"].hparam_names} == SPECS["dgpo"].defaults()


def test_a_spec_method_row_cannot_carry_its_own_defaults():
    with pytest.raises(ValueError, match="spec/methods/dgpo.py"):
        dgpo_ref.LossSpec(name="dgpo", terms=dgpo_ref.LOSSES["dgpo"].terms, summary="x",
                          defaults={"eps_low": 0.2, "eps_high": 0.2, "n": 1, "m": 3},
                          domains=dgpo_ref.LOSSES["dgpo"].domains)


def test_dgpo_loss_is_policy_loss_dgpo():
    torch.manual_seed(0)
    lp, olp = -torch.rand(3, 4, dtype=torch.float64) * 2, -torch.rand(3, 4, dtype=torch.float64) * 2
    kw = dict(old_log_prob=olp, advantages=torch.tensor([1.0, -1.0, 0.5]).double(),
              response_mask=torch.ones(3, 4), n=2, m=3)
    a, _ = dgpo_ref.dgpo_loss(log_prob=lp, **kw)
    b, _ = dgpo_ref.policy_loss("dgpo", log_prob=lp, **kw)
    assert a.item() == b.item()


def test_import_pulls_in_no_sympy():
    code = ("import sys, dgpo_ref; bad = [m for m in sys.modules if m.split('.')[0] in "
            "('sympy', 'z3', 'hypothesis', 'pytest', '_pytest')]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=pathlib.Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "[]"


def test_a_new_method_needs_only_a_terms_function_and_a_registry_row(monkeypatch):
    """DESIGN.md: a new method is one file and one row; policy_loss, token_weight, metrics follow."""

    def half_pg(t, *, eps_low, eps_high):
        return dgpo_ref.Terms(log_v=t.log_r - math.log(2), log_j=t.log_r - math.log(2))

    row = dgpo_ref.LossSpec(name="half_pg", terms=half_pg, summary="pg at half weight",
                            defaults={"eps_low": 0.2, "eps_high": 0.2}, domains=dgpo_ref.LOSSES["pg"].domains)
    monkeypatch.setitem(dgpo_ref.LOSSES, "half_pg", row)
    lp, olp = torch.tensor([[-1.0, -2.0]], dtype=torch.float64), torch.tensor([[-1.5, -1.0]], dtype=torch.float64)
    adv = torch.tensor([1.0], dtype=torch.float64)
    _, g_half, m = _run("half_pg", lp, olp, adv, torch.ones(1, 2, dtype=torch.bool), {}, torch.float64)
    _, g_pg, _ = _run("pg", lp, olp, adv, torch.ones(1, 2, dtype=torch.bool), {}, torch.float64)
    torch.testing.assert_close(g_half, g_pg / 2)
    assert m["v_max/HP"] == pytest.approx(math.exp(0.5) / 2)
    assert dgpo_ref.token_weight("half_pg", 0.5, 0.25, 1.0).item() == pytest.approx(2.0)
    with pytest.raises(ValueError, match="eps_low"):
        dgpo_ref.policy_loss("half_pg", log_prob=lp, old_log_prob=olp, advantages=adv,
                             response_mask=torch.ones(1, 2), eps_low=1.5)
