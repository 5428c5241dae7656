"""The compiled fast path (dgpo_ref.fast) agrees with the eager reference: value, gradient, metrics,
errors, for every registered method; it does not recompile for new hyper-parameter values or batch
shapes; and where compiling fails it warns once and falls back."""

from __future__ import annotations

import math

import pytest
import torch

from dgpo_ref import AGG_MODES, LOSSES, fast, policy_loss
from dgpo_ref.fast import compiled_only
from dgpo_ref.loss import reference_policy_loss


def _inputs(dtype=torch.float64, batch=6, length=40, seed=0, spread=0.6, adv_scale=1.0):
    g = torch.Generator().manual_seed(seed)
    old = -torch.rand(batch, length, generator=g, dtype=torch.float64) * 4
    log_r = (torch.rand(batch, length, generator=g, dtype=torch.float64) - 0.5) * 2 * spread
    adv = torch.randn(batch, generator=g, dtype=torch.float64) * adv_scale
    adv[0] = 0.0
    mask = torch.rand(batch, length, generator=g) < 0.8
    return dict(log_prob=(old + log_r).clamp(max=0).to(dtype), old_log_prob=old.to(dtype),
                advantages=adv.to(dtype), response_mask=mask)


def _both(inputs, name="dgpo", **kw):
    out = []
    for fn in (reference_policy_loss, compiled_only):
        lp = inputs["log_prob"].clone().requires_grad_()
        loss, metrics = fn(name, **{**inputs, "log_prob": lp}, **kw)
        loss.backward()
        out.append((loss.detach(), lp.grad, metrics))
    return out


def _assert_same(ref, got, dtype):
    tol = {torch.float64: dict(rtol=1e-12, atol=1e-15)}.get(dtype, dict(rtol=2e-6, atol=1e-7))
    assert got[0].dtype == ref[0].dtype and got[1].dtype == ref[1].dtype
    torch.testing.assert_close(got[0].double(), ref[0].double(), **tol)
    torch.testing.assert_close(got[1].double(), ref[1].double(), **tol)
    assert got[2].keys() == ref[2].keys()
    for key in ref[2]:
        assert math.isclose(got[2][key], ref[2][key], rel_tol=1e-5, abs_tol=1e-9), key


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
@pytest.mark.parametrize("mode", sorted(AGG_MODES))
def test_matches_reference_mixed_regions(dtype, mode):
    inputs = _inputs(dtype)
    ref, got = _both(inputs, loss_agg_mode=mode)
    assert all(ref[2][f"region/{r}"] > 0 for r in ("IN", "LN", "HP", "LP", "HN"))  # every region is hit
    _assert_same(ref, got, dtype)


@pytest.mark.parametrize("hp", [dict(n=1, m=2), dict(n=3, m=1), dict(n=2, m=5, eps_low=0.1, eps_high=0.35)])
def test_matches_reference_hyperparameters_and_normalizer(hp):
    inputs = _inputs(torch.float64, seed=3, spread=2.0)
    ref, got = _both(inputs, normalizer=1000.0, **hp)
    _assert_same(ref, got, torch.float64)


def test_breakpoints_padding_and_zero_advantage():
    inputs = _inputs(torch.float32, seed=5)
    old = inputs["old_log_prob"]
    lp = inputs["log_prob"].clone()
    lp[1, :4] = old[1, :4] + math.log(0.8)   # r at the lower breakpoint (rounded in float32)
    lp[2, :4] = old[2, :4] + math.log(1.2)   # and at the upper one
    mask = inputs["response_mask"].clone()
    mask[3, -3:] = False
    lp[3, -3:] = torch.tensor([float("nan"), float("inf"), -float("inf")])  # padding never enters
    ref, got = _both({**inputs, "log_prob": lp, "response_mask": mask})
    assert torch.isfinite(got[1]).all() and (got[1][3, -3:] == 0).all() and (got[1][0] == 0).all()
    _assert_same(ref, got, torch.float32)


def test_overflow_is_summed_in_log_space_as_the_reference_does():
    inputs = _inputs(torch.float32, seed=7)
    old = inputs["old_log_prob"].clone()
    old[1, :3] = -100.0                                   # r > e^95 > float32 max
    inputs["advantages"][1] = -1.0                        # on HN: V = r, so |A|·V·w overflows
    inputs["response_mask"][1, :3] = True
    ref, got = _both({**inputs, "old_log_prob": old}, check_inputs=False)
    assert ref[2]["nonfinite_tokens"] > 0                 # the regime is real
    torch.testing.assert_close(got[0], ref[0])
    torch.testing.assert_close(got[1], ref[1])
    # metrics: per-token exponentials in the compute dtype (vectorized in the graph, op by op in the
    # reference) summed in float64, so they agree to about 1e-7 relative (docs/api.md, Metrics)
    assert got[2] == ref[2] or all(math.isclose(got[2][k], ref[2][k], rel_tol=1e-6) for k in ref[2])


@pytest.mark.parametrize("check_inputs, metrics", [(True, True), (False, True), (True, False), (False, False)])
def test_cancelling_overflows_give_the_reference_value_in_every_mode(check_inputs, metrics):
    """+inf and -inf per-token values: the direct sum is NaN, the value is their log-space difference.
    The graph computes it itself when the call does not synchronize (no checks, no metrics); otherwise
    it raises a flag with the others and the reference supplies the value."""
    inputs = _inputs(torch.float32, seed=7)
    lp, old = inputs["log_prob"].clone(), inputs["old_log_prob"].clone()
    lp[1, 0], old[1, 0] = -1.0, -96.0                     # A < 0, HN: J = r = e^95 (inf in float32), value +inf
    lp[2, 0], old[2, 0] = -1.0, -1.0 - (190.02 - math.log(1.2))  # A > 0, HP: J = 1.2^(1/2) r^(1/2) = e^95.01, value -inf
    inputs["advantages"][1], inputs["advantages"][2] = -1.0, 1.0
    inputs["response_mask"][1, 0] = inputs["response_mask"][2, 0] = True
    inputs = {**inputs, "log_prob": lp, "old_log_prob": old}
    ref, got = _both(inputs, check_inputs=check_inputs, metrics=metrics)
    assert torch.isfinite(ref[0]) and ref[0].abs() > 1e30  # finite only through the log-space sum
    torch.testing.assert_close(got[0], ref[0])
    torch.testing.assert_close(got[1], ref[1])
    assert got[2].keys() == ref[2].keys()
    if metrics:
        assert got[2]["loss"] == ref[2]["loss"]


@pytest.mark.parametrize("check_inputs, metrics", [(True, True), (False, True), (True, False), (False, False)])
def test_overflowing_v_with_a_finite_coefficient_in_every_mode(check_inputs, metrics):
    """V = e^95 overflows float32 but |A|·V·w does not (A = -0.01, w = 1/N): the gradient entry is the
    finite log-space product. The graph forms it itself when the call does not synchronize;
    otherwise a flag sends the call to the reference's coefficients."""
    inputs = _inputs(torch.float32, seed=11)
    lp, old = inputs["log_prob"].clone(), inputs["old_log_prob"].clone()
    lp[1, 0], old[1, 0] = -1.0, -96.0                     # HN (A < 0): V = r = e^95
    inputs["advantages"][1] = -0.01
    inputs["response_mask"][1, 0] = True
    ref, got = _both({**inputs, "log_prob": lp, "old_log_prob": old}, check_inputs=check_inputs, metrics=metrics)
    assert torch.isfinite(ref[1]).all() and ref[1][1, 0].abs() > 1e35  # finite only through log space
    torch.testing.assert_close(got[1], ref[1])
    torch.testing.assert_close(got[0], ref[0])
    if metrics:
        assert got[2]["nonfinite_tokens"] == ref[2]["nonfinite_tokens"] == 0


def test_without_metrics_returns_empty_dict_and_same_gradient():
    inputs = _inputs(torch.float32, seed=2)
    ref, _ = _both(inputs)
    lp = inputs["log_prob"].clone().requires_grad_()
    loss, metrics = compiled_only("dgpo", **{**inputs, "log_prob": lp}, metrics=False)
    loss.backward()
    assert metrics == {}
    torch.testing.assert_close(lp.grad, ref[1])


@pytest.mark.parametrize("bad", [
    dict(n=0), dict(eps_low=1.0), dict(foo=1),
    dict(log_prob=torch.zeros(3)),
    dict(advantages=torch.full((6,), float("nan"))),
    dict(log_prob=torch.full((6, 40), 0.5, dtype=torch.float64)),
    dict(normalizer=-1.0),
    dict(response_mask=torch.where(torch.arange(40) < 30, 1.0, 0.5).expand(6, 40)),  # a float mask, not 0/1
    dict(loss_agg_mode="nope"),
])
def test_bad_inputs_raise_the_reference_error(bad):
    inputs = _inputs(torch.float64)
    kw = {k: v for k, v in bad.items() if k not in inputs}
    call = {**inputs, **{k: v for k, v in bad.items() if k in inputs}}
    messages = []
    for fn in (reference_policy_loss, compiled_only):
        with pytest.raises(ValueError) as err:
            fn("dgpo", **call, **kw)
        messages.append(str(err.value))
    assert messages[0] == messages[1]


def test_fast_path_passes_the_generated_conformance_suite():
    """Every generated DGPO property holds through the compiled graph (`dgpo conformance` itself)."""
    from dgpo_conformance import runner

    assert runner.main(["--impl", "dgpo_ref.fast:compiled_only", "--method", "dgpo"]) == 0


@pytest.mark.filterwarnings("error::RuntimeWarning")  # a compile failure must not pass as the reference
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_method_matches_reference(name):
    """Each registry method's own terms, compiled: all regions, both signs of A, A = 0, padding with
    ±inf/NaN, large ratios (float32), compared with the eager reference."""
    inputs = _inputs(torch.float32, seed=11, spread=3.0)
    lp, mask = inputs["log_prob"].clone(), inputs["response_mask"].clone()
    mask[2, -3:] = False
    lp[2, -3:] = torch.tensor([float("nan"), float("inf"), -float("inf")])
    ref, got = _both({**inputs, "log_prob": lp, "response_mask": mask}, name=name)
    assert torch.isfinite(got[1]).all() and (got[1][2, -3:] == 0).all()
    _assert_same(ref, got, torch.float32)


def _graphs() -> int:
    from torch._dynamo.utils import counters

    return counters["stats"]["unique_graphs"]


def test_new_hyperparameter_values_and_shapes_do_not_recompile():
    first = _inputs(torch.float32, seed=1)
    compiled_only("dgpo", **first)  # may compile (once per process)
    before = _graphs()
    for seed, (batch, length), hp in [(2, (5, 17), dict(eps_low=0.1, eps_high=0.3, n=2, m=3)),
                                      (3, (1, 64), dict(eps_low=0.27, eps_high=0.05, n=4, m=1)),
                                      (4, (9, 1), {})]:
        inputs = _inputs(torch.float32, batch=batch, length=length, seed=seed)
        ref, got = _both(inputs, **hp)
        _assert_same(ref, got, torch.float32)
    assert _graphs() == before


def test_policy_loss_dispatch_follows_the_environment(monkeypatch):
    calls = []
    real = fast.compiled_policy_loss
    monkeypatch.setattr(fast, "compiled_policy_loss", lambda *a, **k: calls.append(1) or real(*a, **k))
    small = _inputs(torch.float32)
    monkeypatch.delenv(fast.MODE_ENV, raising=False)
    policy_loss("dgpo", **small)                      # auto, below the size threshold: reference
    assert calls == []
    monkeypatch.setenv(fast.MIN_TOKENS_ENV, "100")
    policy_loss("dgpo", **small)                      # auto, above it: compiled
    assert calls == [1]
    monkeypatch.setenv(fast.MODE_ENV, "never")
    policy_loss("dgpo", **small)
    assert calls == [1]
    monkeypatch.setenv(fast.MODE_ENV, "always")
    monkeypatch.setenv(fast.MIN_TOKENS_ENV, str(10**9))
    policy_loss("dgpo", **small)
    assert calls == [1, 1]


@pytest.mark.parametrize("env, value, needle", [
    ("DGPO_COMPILE", "sometimes", "DGPO_COMPILE must be one of auto, always, never"),
    ("DGPO_COMPILE_MIN_TOKENS", "-3", "DGPO_COMPILE_MIN_TOKENS must be a whole number >= 0"),
    ("DGPO_COMPILE_MIN_TOKENS", "lots", "DGPO_COMPILE_MIN_TOKENS must be a whole number >= 0"),
])
def test_bad_environment_is_one_clear_error(monkeypatch, env, value, needle):
    monkeypatch.setenv(env, value)
    with pytest.raises(ValueError, match=needle):
        policy_loss("dgpo", **_inputs(torch.float32))


@pytest.fixture
def no_compiler(monkeypatch):
    """Every compile fails as it does on a machine without a C++ compiler."""
    def broken(name):
        def fn(*args, **kwargs):
            raise RuntimeError("no C++ compiler found")
        return fn

    monkeypatch.setattr(fast, "_compiled", broken)
    monkeypatch.setattr(fast, "_BROKEN", set())


def test_compile_failure_warns_once_and_uses_the_reference(monkeypatch, no_compiler):
    monkeypatch.setenv(fast.MODE_ENV, "always")
    inputs = _inputs(torch.float32)
    want, _ = reference_policy_loss("dgpo", **inputs)
    with pytest.warns(RuntimeWarning, match="torch.compile of 'dgpo' failed on cpu .*no C\\+\\+ compiler found"):
        got, _ = policy_loss("dgpo", **inputs)
    assert got.item() == want.item()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again, _ = policy_loss("dgpo", **inputs)      # no second warning
    assert again.item() == want.item()


def test_compiled_only_raises_instead_of_falling_back(no_compiler):
    """A conformance run of the fast path must not pass on the reference: compiled_only raises."""
    inputs = _inputs(torch.float32)
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler found"), \
            pytest.raises(RuntimeError, match="could not be compiled on cpu"):
        compiled_only("dgpo", **inputs)
    empty = {**inputs, "log_prob": inputs["log_prob"][:0], "old_log_prob": inputs["old_log_prob"][:0],
             "advantages": inputs["advantages"][:0], "response_mask": inputs["response_mask"][:0]}
    loss, _ = compiled_only("dgpo", **empty)  # nothing to compute: the reference, no compiler needed
    assert loss.item() == 0.0
