"""Every listed bad input raises a ValueError that names the argument, before any heavy work."""

from __future__ import annotations

import math

import pytest
import torch

import dgpo_ref


def _good(**over):
    kw = dict(log_prob=-torch.rand(2, 3), old_log_prob=-torch.rand(2, 3), advantages=torch.tensor([1.0, -1.0]),
              response_mask=torch.ones(2, 3, dtype=torch.bool))
    kw.update(over)
    return kw


def _raises(match, name="dgpo", **over):
    with pytest.raises(ValueError, match=match):
        dgpo_ref.policy_loss(name, **_good(**over))


@pytest.mark.parametrize("arg,bad", [
    ("old_log_prob", -torch.rand(2, 4)),
    ("response_mask", torch.ones(3, 3, dtype=torch.bool)),
    ("advantages", torch.ones(3)),
    ("advantages", torch.ones(2, 4)),
    ("log_prob", -torch.rand(6)),
])
def test_shape_mismatch_names_the_argument(arg, bad):
    _raises(arg, **{arg: bad})


@pytest.mark.parametrize("arg,bad", [
    ("log_prob", [[-1.0, -1.0, -1.0]] * 2),
    ("log_prob", torch.zeros(2, 3, dtype=torch.long)),
    ("old_log_prob", torch.zeros(2, 3, dtype=torch.long)),
    ("advantages", torch.tensor([True, False])),
])
def test_wrong_types_name_the_argument(arg, bad):
    _raises(arg, **{arg: bad})


@pytest.mark.parametrize("mask", [torch.full((2, 3), 2.0), torch.tensor([[1, 0, 1], [1, 1, -1]]),
                                  torch.full((2, 3), 0.5)])
def test_mask_not_boolean_or_0_1(mask):
    _raises("response_mask", response_mask=mask)


@pytest.mark.parametrize("hp,match", [
    ({"eps_low": 0.0}, "eps_low"), ({"eps_low": 1.0}, "eps_low"), ({"eps_low": -0.1}, "eps_low"),
    ({"eps_low": math.nan}, "eps_low"), ({"eps_low": "0.2"}, "eps_low"),
    ({"eps_high": 0.0}, "eps_high"), ({"eps_high": -1.0}, "eps_high"), ({"eps_high": math.inf}, "eps_high"),
    ({"n": 0}, "n="), ({"n": -1}, "n="), ({"n": 1.5}, "n="), ({"n": True}, "n="), ({"n": 2.0}, "n="),
    ({"m": 0}, "m="), ({"m": 0.5}, "m="),
    ({"dual_clip": 1.0}, "dual_clip"),
    ({"foo": 1}, "foo"),
])
def test_hyper_parameter_domains(hp, match):
    _raises(match, **hp)


@pytest.mark.parametrize("name,hp", [
    ("grpo", {"dual_clip": 1.0}), ("grpo", {"dual_clip": 0.5}), ("aspo", {"dual_clip": -3.0}),
    ("ce_gppo", {"beta1": 0.0}), ("ce_gppo", {"beta2": -1.0}), ("grpo", {"n": 2}), ("pg", {"dual_clip": 3.0}),
])
def test_method_specific_hyper_parameters(name, hp):
    _raises(next(iter(hp)), name=name, **hp)


def test_unknown_method_and_mode():
    _raises("name='nope'", name="nope")
    _raises("loss_agg_mode", loss_agg_mode="seq-mean")
    with pytest.raises(ValueError, match="name="):
        dgpo_ref.token_weight("nope", 0.5, 0.5, 1.0)


@pytest.mark.parametrize("arg", ["log_prob", "old_log_prob"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 1e-3])
def test_bad_log_prob_at_a_masked_in_position(arg, value):
    x = -torch.rand(2, 3)
    x[1, 2] = value
    _raises(arg, **{arg: x})
    # the same value at a masked-out position is padding, and fine
    mask = torch.ones(2, 3, dtype=torch.bool)
    mask[1, 2] = False
    dgpo_ref.policy_loss("dgpo", **_good(**{arg: x, "response_mask": mask}))


def test_tiny_positive_log_prob_is_rounding_noise_and_accepted():
    x = -torch.rand(2, 3, dtype=torch.float64)
    x[0, 0] = 1e-7
    loss, _ = dgpo_ref.policy_loss("cispo", **_good(log_prob=x, old_log_prob=x.clone()))
    assert math.isfinite(loss.item())


def test_non_finite_advantage_at_a_masked_in_position():
    _raises("advantages", advantages=torch.tensor([math.nan, 1.0]))


def test_value_checks_can_be_switched_off():
    x = -torch.rand(2, 3)
    x[0, 0] = 0.5  # positive log-prob: rejected when checked
    _raises("log_prob", log_prob=x)
    loss, _ = dgpo_ref.policy_loss("dgpo", check_inputs=False, **_good(log_prob=x))
    assert math.isfinite(loss.item())
    # shape and hyper-parameter checks stay on
    with pytest.raises(ValueError, match="eps_low"):
        dgpo_ref.policy_loss("dgpo", check_inputs=False, eps_low=2.0, **_good())
    with pytest.raises(ValueError, match="old_log_prob"):
        dgpo_ref.policy_loss("dgpo", check_inputs=False, **_good(old_log_prob=torch.zeros(1, 3)))


@pytest.mark.parametrize("arg,bad", [("normalizer", 0), ("normalizer", -3.0), ("normalizer", math.nan),
                                     ("normalizer", torch.tensor([1.0, 2.0])), ("normalizer", torch.tensor(0.0)),
                                     ("normalizer", 1e-39), ("normalizer", torch.tensor(1e-39)),
                                     ("normalizer", math.inf), ("loss_scale_factor", 1e-7),
                                     ("loss_scale_factor", 0.0), ("loss_scale_factor", True)])
def test_bad_normalizer(arg, bad):
    _raises(arg, **{arg: bad})
