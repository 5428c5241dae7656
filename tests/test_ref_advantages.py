"""GRPO and Dr. GRPO group advantages: formulas, zero-variance groups, bad input."""

from __future__ import annotations

import math
import statistics

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import dgpo_ref


def test_grpo_formula_matches_statistics_module():
    rewards = [[1.0, 0.0, 0.0, 1.0, 1.0], [0.2, 0.9, 0.4, 0.4, 0.1]]
    adv = dgpo_ref.grpo_advantages(torch.tensor(rewards, dtype=torch.float64), eps=1e-6)
    for row, got in zip(rewards, adv.tolist()):
        mean, std = statistics.fmean(row), statistics.stdev(row)
        assert got == pytest.approx([(x - mean) / (std + 1e-6) for x in row], rel=1e-12)
    biased = dgpo_ref.grpo_advantages(torch.tensor(rewards, dtype=torch.float64), eps=0.0, unbiased=False)
    assert biased[0].tolist() == pytest.approx([(x - 0.6) / statistics.pstdev(rewards[0]) for x in rewards[0]])


def test_drgrpo_is_mean_centred_only():
    adv = dgpo_ref.drgrpo_advantages([[1.0, 0.0, 0.0, 1.0]])
    assert adv.tolist() == [[0.5, -0.5, -0.5, 0.5]]


@pytest.mark.parametrize("fn", [dgpo_ref.grpo_advantages, dgpo_ref.drgrpo_advantages])
def test_zero_variance_groups_give_exactly_zero(fn):
    rewards = torch.tensor([[0.1, 0.1, 0.1], [1.0, 1.0, 1.0], [0.0, 1.0, 1.0]])
    adv = fn(rewards)
    assert torch.equal(adv[:2], torch.zeros(2, 3)) and adv[2].abs().sum() > 0
    single = fn(torch.tensor([[3.0], [5.0]]))  # G = 1: no baseline to compare with
    assert torch.equal(single, torch.zeros(2, 1))


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(st.lists(st.sampled_from([0.0, 0.5, 1.0, 1e-9, 1e6]), min_size=4, max_size=4),
                     min_size=1, max_size=5))
def test_never_nan_and_groups_are_centred(rows):
    rewards = torch.tensor(rows, dtype=torch.float64)
    for fn in (dgpo_ref.grpo_advantages, dgpo_ref.drgrpo_advantages):
        adv = fn(rewards)
        assert adv.shape == rewards.shape and torch.isfinite(adv).all()
        assert adv.sum(1).abs().max() <= 1e-9 * (1 + adv.abs().max())


def test_dtype_and_broadcast_into_policy_loss():
    adv = dgpo_ref.grpo_advantages(torch.tensor([[1, 0], [0, 1]]))
    assert adv.dtype == torch.float32
    assert dgpo_ref.grpo_advantages(torch.tensor([[1.0, 0.0]], dtype=torch.float64)).dtype == torch.float64
    loss, _ = dgpo_ref.policy_loss("grpo", log_prob=-torch.ones(4, 3), old_log_prob=-torch.ones(4, 3),
                                   advantages=adv.reshape(-1), response_mask=torch.ones(4, 3))
    assert math.isfinite(loss.item())


@pytest.mark.parametrize("bad,match", [
    (torch.ones(4), "rewards"), (torch.ones(2, 0), "rewards"), (torch.tensor([[1.0, math.nan]]), "rewards"),
    (torch.tensor([[True, False]]), "rewards"),
])
def test_bad_rewards(bad, match):
    for fn in (dgpo_ref.grpo_advantages, dgpo_ref.drgrpo_advantages):
        with pytest.raises(ValueError, match=match):
            fn(bad)
    with pytest.raises(ValueError, match="eps"):
        dgpo_ref.grpo_advantages(torch.ones(1, 2), eps=-1.0)
