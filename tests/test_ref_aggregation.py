"""Aggregation modes as in verl's ``agg_loss``, and micro-batch accumulation with ``normalizer``."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import dgpo_ref

MODES = sorted(dgpo_ref.AGG_MODES)
VERL_RTOL = 2e-8  # verl divides a sequence's token sum by (len + 1e-8), we by len


def verl_agg_loss(loss_mat, loss_mask, mode, batch_num_tokens=None, global_batch_size=None, loss_scale_factor=None):
    """verl's agg_loss (dp_size = 1), written from verl/trainer/ppo/core_algos.py."""
    mask = loss_mask.to(loss_mat.dtype)
    if mode == "token-mean":
        n = mask.sum() if batch_num_tokens is None else batch_num_tokens
        return (loss_mat * mask).sum() / n
    seq_mask = (mask.sum(-1) > 0).to(loss_mat.dtype)
    s = seq_mask.sum() if global_batch_size is None else global_batch_size
    if mode == "seq-mean-token-mean":
        seq = (loss_mat * mask).sum(-1) / (mask.sum(-1) + 1e-8)
        return (seq * seq_mask).sum() / s
    loss = ((loss_mat * mask).sum(-1) * seq_mask).sum() / s
    if mode == "seq-mean-token-sum-norm":
        loss = loss / (mask.shape[-1] if loss_scale_factor is None else loss_scale_factor)
    return loss


#: the paper's recommended setting, passed explicitly (the test does not depend on dgpo_ref's defaults)
PUBLISHED = dict(eps_low=0.2, eps_high=0.2, n=1, m=2)


def published_surrogate(method, lp, olp, eps_low, eps_high, n, m):
    """Per-token J with autograd, written with stop-gradients as in DESIGN.md / the DGPO code."""
    r = torch.exp(lp - olp)
    if method == "pg":
        return r
    sg = lp.detach()
    ln = torch.exp(lp + n * sg - (n + 1) * olp) / (1 - eps_low) ** n
    hp = torch.exp(lp + math.log(1 + eps_high) / m - olp * (m - 1) / m - sg / m)
    return r, ln, hp


def _batch(seed=0, b=5, t=6, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    lp = -torch.rand(b, t, generator=g, dtype=dtype) * 2
    olp = -torch.rand(b, t, generator=g, dtype=dtype) * 2
    adv = torch.randn(b, generator=g, dtype=dtype)
    lengths = torch.tensor([6, 3, 0, 1, 5])[:b]
    mask = torch.arange(t)[None, :] < lengths[:, None]
    return lp, olp, adv, mask


def _grad(method, lp, olp, adv, mask, **kw):
    lp = lp.detach().clone().requires_grad_(True)
    loss, _ = dgpo_ref.policy_loss(method, log_prob=lp, old_log_prob=olp, advantages=adv, response_mask=mask, **kw)
    loss.backward()
    return loss, lp.grad


@pytest.mark.parametrize("mode", MODES)
def test_pg_matches_verl_agg_loss_value_and_autograd(mode):
    lp, olp, adv, mask = _batch()
    loss, grad = _grad("pg", lp, olp, adv, mask, loss_agg_mode=mode)
    lp_ref = lp.clone().requires_grad_(True)
    ref = verl_agg_loss(-adv[:, None] * torch.exp(lp_ref - olp), mask, mode)
    ref.backward()
    assert loss.item() == pytest.approx(ref.item(), rel=VERL_RTOL)
    torch.testing.assert_close(grad, lp_ref.grad, rtol=VERL_RTOL, atol=1e-15)


@pytest.mark.parametrize("mode", MODES)
def test_dgpo_matches_the_published_stop_gradient_surrogate(mode):
    """The DGPO code's surrogate (exp with sg, token regions picked by r and A), aggregated by verl."""
    lp, olp, adv, mask = _batch(seed=4)
    lp = lp * 1.5  # spread the ratios over all regions
    loss, grad = _grad("dgpo", lp, olp, adv, mask, loss_agg_mode=mode, **PUBLISHED)
    lp_ref = lp.clone().requires_grad_(True)
    r, ln, hp = published_surrogate("dgpo", lp_ref, olp, **PUBLISHED)
    a = adv[:, None].expand_as(r)
    rd = r.detach()
    j = torch.where((rd < 0.8) & (a < 0), ln, torch.where((rd > 1.2) & (a > 0), hp, r))
    ref = verl_agg_loss(-a * j, mask, mode)
    ref.backward()
    assert loss.item() == pytest.approx(ref.item(), rel=VERL_RTOL)
    torch.testing.assert_close(grad, lp_ref.grad, rtol=VERL_RTOL, atol=1e-15)


def test_seq_mean_token_sum_norm_uses_loss_scale_factor():
    lp, olp, adv, mask = _batch()
    a, ga = _grad("pg", lp, olp, adv, mask, loss_agg_mode="seq-mean-token-sum-norm")
    b, gb = _grad("pg", lp, olp, adv, mask, loss_agg_mode="seq-mean-token-sum-norm", loss_scale_factor=12)
    assert b.item() == pytest.approx(a.item() * 6 / 12, rel=1e-12)
    torch.testing.assert_close(gb, ga / 2)


def _splits(b, k, seed):
    """k contiguous, uneven, non-empty chunks of range(b)."""
    g = torch.Generator().manual_seed(seed)
    cuts = sorted(torch.randperm(b - 1, generator=g)[: k - 1].add(1).tolist())
    edges = [0, *cuts, b]
    return [slice(edges[i], edges[i + 1]) for i in range(k)]


def _global_count(mode, mask):
    return int(mask.sum()) if mode == "token-mean" else int((mask.sum(-1) > 0).sum())


@pytest.mark.parametrize("method", ["dgpo", "grpo", "cispo"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("k", [1, 2, 3])
def test_micro_batches_accumulate_to_the_full_batch(method, mode, k):
    lp, olp, adv, mask = _batch(seed=k, b=5)
    full_loss, full_grad = _grad(method, lp, olp, adv, mask, loss_agg_mode=mode)
    norm = _global_count(mode, mask)
    total, grad = 0.0, torch.zeros_like(lp)
    for part in _splits(5, k, seed=k):
        loss, g = _grad(method, lp[part], olp[part], adv[part], mask[part], loss_agg_mode=mode, normalizer=norm)
        total += loss.item()
        grad[part] += g
    assert total == pytest.approx(full_loss.item(), rel=1e-12, abs=1e-15)
    torch.testing.assert_close(grad, full_grad, rtol=1e-12, atol=1e-15)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 4), mode=st.sampled_from(MODES))
def test_micro_batch_accumulation_property(seed, k, mode):
    g = torch.Generator().manual_seed(seed)
    b, t = 6, 7
    lp = -torch.rand(b, t, generator=g, dtype=torch.float64) * 3
    olp = -torch.rand(b, t, generator=g, dtype=torch.float64) * 3
    adv = torch.randn(b, t, generator=g, dtype=torch.float64)
    mask = torch.rand(b, t, generator=g) > 0.4
    full_loss, full_grad = _grad("dgpo", lp, olp, adv, mask, loss_agg_mode=mode)
    norm = torch.tensor(float(max(_global_count(mode, mask), 1)))  # a tensor normalizer (e.g. all-reduced)
    grad, total = torch.zeros_like(lp), 0.0
    for part in _splits(b, min(k, b), seed):
        loss, gpart = _grad("dgpo", lp[part], olp[part], adv[part], mask[part], loss_agg_mode=mode, normalizer=norm)
        grad[part] += gpart
        total += loss.item()
    torch.testing.assert_close(grad, full_grad, rtol=1e-12, atol=1e-15)
    assert total == pytest.approx(full_loss.item(), rel=1e-10, abs=1e-14)


def test_token_weights_table():
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    w = {mode: dgpo_ref.token_weights(mode, mask) for mode in MODES}
    torch.testing.assert_close(w["token-mean"], mask / 3)
    torch.testing.assert_close(w["seq-mean-token-sum"], mask / 2)
    torch.testing.assert_close(w["seq-mean-token-mean"], torch.tensor([[0.25, 0.25, 0], [0.5, 0, 0], [0, 0, 0]]))
    torch.testing.assert_close(w["seq-mean-token-sum-norm"], mask / 6)
    torch.testing.assert_close(dgpo_ref.token_weights("token-mean", mask, normalizer=10), mask / 10)
