"""Numerics of dgpo_ref.policy_loss: dtypes, the exact regime, extreme ratios, padding, empty masks."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_ref_reference import load

import dgpo_ref

REF = load()
METHODS = sorted(dgpo_ref.LOSSES)
#: the methods the independent float64 reference writes out (tests/test_ref_reference.py)
WRITTEN = sorted(REF.WRITTEN)
MODES = sorted(dgpo_ref.AGG_MODES)


def _loss(method, lp, olp, adv, mask, **kw):
    lp = lp.detach().clone().requires_grad_(True)
    loss, metrics = dgpo_ref.policy_loss(method, log_prob=lp, old_log_prob=olp, advantages=adv,
                                         response_mask=mask, **kw)
    loss.backward()
    return loss, lp.grad, metrics


def _log_expected_grad(method, lp, olp, adv, mask, hp=None):
    """log |A·V/N| per token (token-mean) in float64 from the log-space reference; −inf off the mask."""
    n_tok = max(int(mask.sum()), 1)
    out = torch.full(lp.shape, -math.inf, dtype=torch.float64)
    for b in range(lp.shape[0]):
        for t in range(lp.shape[1]):
            a = float(adv[b, t])
            if mask[b, t] and a != 0:
                lr = float(lp[b, t].double()) - float(olp[b, t].double())
                out[b, t] = math.log(abs(a)) + REF.log_weight_v(method, lr, a, **(hp or {})) - math.log(n_tok)
    return out


# --- dtypes -------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16, torch.float16])
def test_loss_and_gradient_come_back_in_the_input_dtype(dtype):
    torch.manual_seed(0)
    lp, olp = (-torch.rand(4, 6) * 3).to(dtype), (-torch.rand(4, 6) * 3).to(dtype)
    loss, grad, _ = _loss("dgpo", lp, olp, torch.randn(4).to(dtype), torch.ones(4, 6, dtype=torch.bool))
    assert loss.dtype == dtype and grad.dtype == dtype and loss.dim() == 0


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype,rtol", [(torch.bfloat16, 2**-7), (torch.float16, 2**-10)])
def test_half_precision_agrees_with_float64(method, dtype, rtol):
    """Documented tolerance (docs/api.md): on the same (rounded) inputs, bf16 results agree with a
    float64 evaluation within one bf16 rounding of the output (2^-8 relative; fp16 2^-11)."""
    torch.manual_seed(1)
    lp, olp = (-torch.rand(8, 16) * 4).to(dtype), (-torch.rand(8, 16) * 4).to(dtype)
    adv, mask = torch.randn(8, 16).to(dtype), torch.rand(8, 16) > 0.2
    loss, grad, _ = _loss(method, lp, olp, adv, mask)
    loss64, grad64, _ = _loss(method, lp.double(), olp.double(), adv.double(), mask)
    torch.testing.assert_close(grad.double(), grad64, rtol=rtol, atol=1e-6 * grad64.abs().max().item())
    assert loss.double().item() == pytest.approx(loss64.item(), rel=rtol, abs=1e-6)


def test_float64_inputs_are_computed_in_float64():
    """r = 1 + 1e-12 is invisible in float32; a float64 loss must still see it."""
    lp = torch.tensor([[-1.0 + 1e-12]], dtype=torch.float64)
    olp = torch.tensor([[-1.0]], dtype=torch.float64)
    _, grad, _ = _loss("pg", lp, olp, torch.tensor([1.0], dtype=torch.float64), torch.ones(1, 1))
    assert grad.item() == pytest.approx(-(1 + 1e-12), rel=1e-15, abs=0) and grad.item() != -1.0


# --- the exact regime: |log r| <= 20, log-probs >= -50 ---------------------------------------------

@st.composite
def exact_regime(draw):
    b, t = draw(st.integers(1, 3)), draw(st.integers(1, 5))
    olp = draw(st.lists(st.floats(-30.0, 0.0), min_size=b * t, max_size=b * t))
    lr = draw(st.lists(st.floats(-20.0, 20.0), min_size=b * t, max_size=b * t))
    lp = [min(max(o + x, -50.0), 0.0) for o, x in zip(olp, lr)]
    adv = draw(st.lists(st.sampled_from([-3.0, -1.0, 0.0, 0.25, 2.0]), min_size=b * t, max_size=b * t))
    method = draw(st.sampled_from(WRITTEN))
    n = draw(st.integers(1, 3))
    hp = {"n": n, "m": draw(st.integers(1, 3))} if method == "dgpo" else {}
    shape = (b, t)
    return method, hp, *(torch.tensor(x, dtype=torch.float64).reshape(shape) for x in (lp, olp, adv))


@pytest.mark.parametrize("dtype,rtol", [(torch.float64, 1e-11), (torch.float32, 3e-5)])
@settings(max_examples=60, deadline=None)
@given(case=exact_regime())
def test_exact_regime_gradient_is_minus_a_v_over_n(dtype, rtol, case):
    method, hp, lp, olp, adv = case
    lp, olp = lp.to(dtype), olp.to(dtype)
    mask = torch.ones(lp.shape, dtype=torch.bool)
    ratios = torch.exp(lp.double() - olp.double())
    bounds = torch.tensor([0.8, 1.2, 3.0], dtype=torch.float64)
    if ((ratios.flatten()[:, None] / bounds - 1).abs() < 1e-4).any():
        return  # a kink: tested separately at exact breakpoints
    _, grad, metrics = _loss(method, lp, olp, adv.to(dtype), mask, **hp)
    log_expected = _log_expected_grad(method, lp, olp, adv, mask, hp)
    expected = -torch.sign(adv) * torch.exp(log_expected)
    torch.testing.assert_close(grad.double(), expected, rtol=rtol, atol=0)
    assert metrics["nonfinite_tokens"] == 0


def test_no_clamp_on_extreme_lp_and_hn_tokens():
    """The published code clamps log r to ±20, dropping these gradients; they must survive."""
    olp = torch.tensor([[-5.0, -40.0]])
    lp = torch.tensor([[-35.0, -10.0]])  # log r = -30 (LP), +30 (HN)
    adv = torch.tensor([[1.0, -1.0]])
    for method in ("pg", "grpo", "dgpo"):
        _, grad, _ = _loss(method, lp, olp, adv, torch.ones(1, 2))
        torch.testing.assert_close(grad, torch.tensor([[-math.exp(-30) / 2, math.exp(30) / 2]]), rtol=1e-5, atol=0)


# --- extreme inputs: |log r| up to 1e4, log-probs down to -1e4 --------------------------------------

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("method", WRITTEN)
def test_extreme_ratios_never_nan_and_inf_only_where_v_overflows(method, dtype):
    values = [0.0, -1e-3, -1.0, -20.0, -88.0, -100.0, -709.0, -800.0, -1e4]
    pairs = torch.tensor([(a, b) for a in values for b in values], dtype=torch.float64)
    lp, olp = pairs[:, :1].repeat(1, 3), pairs[:, 1:].repeat(1, 3)
    adv = torch.tensor([-1.5, 0.0, 2.0], dtype=torch.float64).expand_as(lp).contiguous()
    mask = torch.ones(lp.shape, dtype=torch.bool)
    loss, grad, metrics = _loss(method, lp.to(dtype), olp.to(dtype), adv.to(dtype), mask)
    assert not torch.isnan(loss) and not torch.isnan(grad).any()
    assert all(not math.isnan(v) for v in metrics.values())
    log_expected = _log_expected_grad(method, lp, olp, adv, mask)
    log_max = math.log(torch.finfo(dtype).max)
    overflow = log_expected > log_max
    assert torch.equal(torch.isinf(grad), overflow), "infinite exactly where |A|·V/N overflows"
    assert metrics["nonfinite_tokens"] == int(overflow.sum())
    finite = ~overflow & (log_expected > math.log(torch.finfo(dtype).tiny))
    got = torch.log(grad.double().abs())[finite]
    # relative accuracy ~ |log r|·eps of the compute dtype (log r itself is rounded)
    tol = 8 * torch.finfo(dtype).eps * (1 + (lp - olp).abs()[finite] * 3)
    assert ((got - log_expected[finite]).abs() <= tol).all()
    assert torch.equal(torch.sign(grad.double())[finite], -torch.sign(adv)[finite])


def test_mixed_infinite_token_losses_do_not_make_nan():
    """HN (+inf per-token loss) next to HP (−inf): the value is the sign of the larger magnitude."""
    olp = torch.tensor([[-1e4, -1e4]])
    lp = torch.tensor([[0.0, 0.0]])  # log r = 1e4 on both
    adv = torch.tensor([[-1.0, 1.0]])
    loss, grad, metrics = _loss("dgpo", lp, olp, adv, torch.ones(1, 2))
    # HN: −A·r·w = +exp(1e4)/2; HP: −(1.2)^(1/2)·exp(1e4/2)/2: the HN term dominates.
    assert loss.item() == math.inf
    assert grad[0, 0].item() == math.inf and grad[0, 1].item() == -math.inf
    assert metrics["nonfinite_tokens"] == 2
    # equal and opposite overflowing terms cancel to exactly 0
    loss, _, _ = _loss("pg", lp, olp, torch.tensor([[-1.0, 1.0]]), torch.ones(1, 2))
    assert loss.item() == 0.0
    # overflow of only one sign: that infinity
    loss, _, _ = _loss("pg", lp, olp, torch.tensor([[1.0, 1.0]]), torch.ones(1, 2))
    assert loss.item() == -math.inf


def test_v_finite_but_term_sum_finite_keeps_exact_value():
    """Large but finite terms of both signs are summed directly (no log-space detour)."""
    lp = torch.tensor([[0.0, 0.0, -1.0]], dtype=torch.float64)
    olp = torch.tensor([[-50.0, -50.0, -1.0]], dtype=torch.float64)
    loss, _, _ = _loss("pg", lp, olp, torch.tensor([[1.0, -1.0, 1.0]], dtype=torch.float64), torch.ones(1, 3))
    assert loss.item() == pytest.approx(-1 / 3, rel=1e-6)


# --- padding and masks ----------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("method", METHODS)
def test_padding_with_inf_and_nan_gets_exactly_zero_gradient(method, mode):
    torch.manual_seed(2)
    lp, olp = -torch.rand(3, 5) * 2, -torch.rand(3, 5) * 2
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    adv = torch.tensor([1.0, -1.0, 0.5])[:, None].repeat(1, 5)
    clean_loss, clean_grad, _ = _loss(method, lp, olp, adv, mask, loss_agg_mode=mode)
    pad = torch.tensor([math.inf, -math.inf, math.nan, math.nan, math.inf, -math.inf])
    lp_pad, olp_pad, adv_pad = lp.clone(), olp.clone(), adv.clone()
    lp_pad[~mask], olp_pad[~mask], adv_pad[~mask] = pad, pad.flip(0), pad
    loss, grad, metrics = _loss(method, lp_pad, olp_pad, adv_pad, mask, loss_agg_mode=mode)
    assert torch.isfinite(loss) and torch.isfinite(grad).all()
    assert torch.equal(grad[~mask], torch.zeros(int((~mask).sum())))
    assert torch.equal(grad, clean_grad) and loss.item() == clean_loss.item()
    assert all(math.isfinite(v) for v in metrics.values())


def test_padding_inside_a_larger_graph_gives_finite_upstream_gradients():
    """The torch.where trap: log_prob = x·y with y = inf at padding. A loss that computed exp(log r)
    on padding and masked afterwards would send 0·inf = NaN back into x."""
    x = torch.full((2, 3), -0.5, requires_grad=True)
    y = torch.tensor([[1.0, 1.0, math.inf], [1.0, math.inf, math.inf]])
    mask = torch.isfinite(y)
    lp = x * torch.where(mask, y, torch.full_like(y, 1.0)) + torch.where(mask, 0.0, y)  # ±inf at padding
    loss, _ = dgpo_ref.policy_loss("dgpo", log_prob=lp, old_log_prob=torch.full((2, 3), -0.4),
                                   advantages=torch.tensor([1.0, -1.0]), response_mask=mask)
    loss.backward()
    assert torch.isfinite(x.grad).all() and torch.equal(x.grad[~mask], torch.zeros(3))


@pytest.mark.parametrize("mode", MODES)
def test_all_false_mask_gives_zero_loss_and_zero_gradient(mode):
    lp = torch.full((2, 3), math.nan)
    loss, grad, metrics = _loss("dgpo", lp, lp.clone(), torch.tensor([1.0, -1.0]), torch.zeros(2, 3),
                                loss_agg_mode=mode)
    assert loss.item() == 0.0 and torch.equal(grad, torch.zeros(2, 3))
    assert metrics["tokens"] == 0 and all(v == 0.0 for v in metrics.values())


def test_float_mask_of_zeros_and_ones_equals_bool_mask():
    torch.manual_seed(3)
    lp, olp, adv = -torch.rand(2, 4), -torch.rand(2, 4), torch.randn(2)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 0]])
    a, ga, _ = _loss("grpo", lp, olp, adv, mask.bool())
    b, gb, _ = _loss("grpo", lp, olp, adv, mask.float())
    assert a.item() == b.item() and torch.equal(ga, gb)


def test_gradient_reaches_log_prob_only():
    lp = (-torch.rand(2, 3)).requires_grad_()
    olp = (-torch.rand(2, 3)).requires_grad_()
    adv = torch.randn(2, requires_grad=True)
    loss, _ = dgpo_ref.policy_loss("pg", log_prob=lp, old_log_prob=olp, advantages=adv,
                                   response_mask=torch.ones(2, 3))
    loss.backward()
    assert lp.grad is not None and olp.grad is None and adv.grad is None


def test_float16_gradient_overflow_is_counted_in_the_input_dtype():
    """V = e^12 ≈ 1.6e5 fits float32 but not float16 (max 65504): the fp16 gradient is inf, and counted."""
    lp = torch.tensor([[-1.0, -1.0]], dtype=torch.float16)
    olp = torch.tensor([[-13.0, -1.0]], dtype=torch.float16)
    loss, grad, metrics = _loss("pg", lp, olp, torch.tensor([-1.0], dtype=torch.float16), torch.ones(1, 2))
    assert torch.isinf(grad[0, 0]) and torch.isfinite(grad[0, 1]) and metrics["nonfinite_tokens"] == 1
    _, grad32, metrics32 = _loss("pg", lp.float(), olp.float(), torch.tensor([-1.0]), torch.ones(1, 2))
    assert torch.isfinite(grad32).all() and metrics32["nonfinite_tokens"] == 0


def test_advantages_per_sequence_as_column():
    lp, olp, adv = -torch.rand(3, 4), -torch.rand(3, 4), torch.randn(3)
    mask = torch.ones(3, 4)
    a, ga, _ = _loss("dgpo", lp, olp, adv, mask)
    b, gb, _ = _loss("dgpo", lp, olp, adv[:, None], mask)
    c, gc, _ = _loss("dgpo", lp, olp, adv[:, None].expand(3, 4), mask)
    assert a.item() == b.item() == c.item() and torch.equal(ga, gb) and torch.equal(ga, gc)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dgpo_with_tiny_p_old_never_forms_p_old_powers(dtype):
    """p_old = e^-1e4: p_old^(−(n+1)) and p^(n+1) alone over/underflow; V = r^(n+1)/(1−eps)^n does not."""
    olp = torch.tensor([[-1e4, -1e4]], dtype=dtype)
    lp = olp + torch.tensor([[-0.5, 0.5]], dtype=dtype)  # LN (A < 0) and HP (A > 0)
    _, grad, metrics = _loss("dgpo", lp, olp, torch.tensor([[-1.0, 1.0]], dtype=dtype), torch.ones(1, 2), n=3, m=4)
    lr = (lp - olp).double()
    expected = torch.tensor([[math.exp(4 * lr[0, 0].item() - 3 * math.log(0.8)) / 2,
                              -math.exp(math.log(1.2) / 4 + 0.75 * lr[0, 1].item()) / 2]], dtype=torch.float64)
    torch.testing.assert_close(grad.double(), expected, rtol=1e-5 if dtype == torch.float32 else 1e-12, atol=0)
    assert metrics["region/LN"] == 0.5 and metrics["region/HP"] == 0.5


EMPTY_SHAPES = [(3, 0), (0, 4), (0, 0)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("method", sorted(dgpo_ref.LOSSES))
def test_empty_batch_gives_zero_loss_zero_gradient_and_zero_metrics(method, mode, dtype):
    from dgpo_ref.fast import compiled_only

    for shape in EMPTY_SHAPES:
        for fn in (dgpo_ref.policy_loss, compiled_only):
            lp = torch.zeros(shape, dtype=dtype, requires_grad=True)
            loss, metrics = fn(method, log_prob=lp, old_log_prob=torch.zeros(shape, dtype=dtype),
                               advantages=torch.ones(shape[0]), response_mask=torch.ones(shape, dtype=torch.bool),
                               loss_agg_mode=mode)
            loss.backward()
            assert loss.dtype == dtype and loss.item() == 0.0, (shape, fn.__name__)
            assert lp.grad is not None and lp.grad.shape == shape and not lp.grad.any()
            assert metrics["tokens"] == 0 and all(v == 0.0 for v in metrics.values()), metrics


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("method", sorted(dgpo_ref.LOSSES))
def test_smallest_normalizer_keeps_the_loss_free_of_nan(method, mode, dtype):
    from dgpo_ref.checks import MIN_SCALE

    torch.manual_seed(0)
    lp = (-20 * torch.rand(4, 5)).to(dtype).requires_grad_()
    olp = (-20 * torch.rand(4, 5)).to(dtype)
    adv = torch.tensor([3e4, -3e4, 1.0, -1.0])
    loss, metrics = dgpo_ref.policy_loss(method, log_prob=lp, old_log_prob=olp, advantages=adv,
                                         response_mask=torch.ones(4, 5, dtype=torch.bool), loss_agg_mode=mode,
                                         normalizer=MIN_SCALE, loss_scale_factor=MIN_SCALE)
    loss.backward()
    assert not torch.isnan(loss) and not torch.isnan(lp.grad).any()
    assert not any(math.isnan(v) for v in metrics.values())
