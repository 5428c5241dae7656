"""Each registered verl loss against dgpo_ref and against verl's own aggregation code.

- Anywhere in the ratio range, the verl function equals ``dgpo_ref.policy_loss`` called with the
  hyper-parameters the actor config carries (loss value and gradient).
- With every ratio inside [1−eps_low, 1+eps_high] every method's per-token loss is −A·r, so verl's
  own ``agg_loss`` on −A·r·w is an independent reference for the normalization
  (``global_batch_info``, dp_size, all five loss_agg_modes) and for ``rollout_is_weights``.
- Micro-batches on data-parallel ranks, normalized as verl does, add up to the full-batch gradient.
"""

import math

import pytest
import torch
from omegaconf import OmegaConf
from verl.trainer.ppo.core_algos import agg_loss, get_policy_loss_fn

from dgpo_ref import LOSSES, REGIONS, policy_loss
from dgpo_ref.integrations.verl import METHODS
from dgpo_ref.integrations.verl_plugin import DGPOPolicyLossConfig

MODES = ("token-mean", "token-sum", "seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm")
# hyper-parameters other than eps: under policy_loss (n, m, beta1, beta2) or the actor's clip_ratio_c
EXTRA = {"dgpo": {"n": 3, "m": 4}, "gppo": {}, "ce_gppo": {"beta1": 0.7, "beta2": 1.3}, "aspo": {}}
CLIP_C = {"gppo": 2.5, "aspo": 2.0}


def _batch(seed, shape=(6, 9), spread=1.0):
    g = torch.Generator().manual_seed(seed)
    old = -torch.rand(shape, generator=g, dtype=torch.float64) * 4 - 0.05
    new = (old + torch.randn(shape, generator=g, dtype=torch.float64) * spread).clamp(max=0.0)
    adv = torch.randn(shape[0], generator=g, dtype=torch.float64)[:, None].expand(shape).clone()
    lengths = torch.randint(1, shape[1] + 1, (shape[0],), generator=g)
    mask = (torch.arange(shape[1])[None, :] < lengths[:, None]).to(torch.float64)
    weights = torch.rand(shape, generator=g, dtype=torch.float64) * 2
    return old, new, adv, mask, weights


def _config(name, eps_low=0.15, eps_high=0.3, info=None, extra=None, clip_c=None):
    dual = {} if clip_c is None else {"clip_ratio_c": clip_c}
    return OmegaConf.create({
        "clip_ratio": 0.2, "clip_ratio_low": eps_low, "clip_ratio_high": eps_high, **dual,
        "policy_loss": {"loss_mode": name, **(extra or {})},
        "global_batch_info": info or {},
    })


def _loss_and_grad(fn, old, new, adv, mask, **kwargs):
    lp = new.clone().requires_grad_()
    loss, metrics = fn(old_log_prob=old, log_prob=lp, advantages=adv, response_mask=mask, **kwargs)
    (grad,) = torch.autograd.grad(loss, lp)
    return loss.detach(), grad, metrics


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_dgpo_ref_with_the_configs_hyper_parameters(name, seed):
    old, new, adv, mask, _ = _batch(seed, spread=2.5)
    adv[::2] = -adv[::2].abs()  # both signs, so every region is populated
    config = _config(name, extra=EXTRA[name], clip_c=CLIP_C.get(name))
    got, got_grad, _ = _loss_and_grad(get_policy_loss_fn(name), old, new, adv, mask, config=config)
    dual = {"dual_clip": CLIP_C[name]} if name in CLIP_C else {}

    def ref(**kw):
        return policy_loss(name, log_prob=kw.pop("log_prob"), old_log_prob=old, advantages=adv,
                           response_mask=mask, eps_low=0.15, eps_high=0.3, **EXTRA[name], **dual)

    want, want_grad, _ = _loss_and_grad(lambda **kw: ref(**kw), old, new, adv, mask)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got_grad, want_grad, rtol=1e-12, atol=1e-12)
    # the hyper-parameters matter on these tensors, so a plumbing bug could not pass unseen
    _, default_grad, _ = _loss_and_grad(get_policy_loss_fn(name), old, new, adv, mask, config=_config(name))
    assert not torch.allclose(default_grad, got_grad)


def _inside(seed, eps_low=0.15, eps_high=0.3):
    old, new, adv, mask, weights = _batch(seed)
    log_r = torch.empty_like(old).uniform_(math.log1p(-eps_low) * 0.99, math.log1p(eps_high) * 0.99)
    return old, (old + log_r).clamp(max=0.0), adv, mask, weights


def _surrogate_inside(name, ratio, adv):
    """J inside the trust region (docs/methods.md): r, except ASPO's r/sg(r)² for A > 0."""
    if name == "aspo":
        return torch.where(adv > 0, ratio / ratio.detach() ** 2, ratio)
    return ratio


def _verl_reference(name, old, new, adv, mask, mode, info, weights):
    lp = new.clone().requires_grad_()
    mat = -adv * _surrogate_inside(name, torch.exp(lp - old), adv)
    if weights is not None:
        mat = mat * weights
    loss = agg_loss(loss_mat=mat, loss_mask=mask, loss_agg_mode=mode, **info)
    (grad,) = torch.autograd.grad(loss, lp)
    return loss.detach(), grad


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dp_size", [1, 4])
@pytest.mark.parametrize("use_weights", [False, True])
def test_matches_verls_agg_loss_inside_the_trust_region(name, mode, dp_size, use_weights):
    old, new, adv, mask, weights = _inside(seed=7)
    info = {"dp_size": dp_size, "batch_num_tokens": int(mask.sum()) * dp_size + 5,
            "global_batch_size": mask.shape[0] * dp_size + 1, "loss_scale_factor": 13}
    weights = weights if use_weights else None
    got, got_grad, _ = _loss_and_grad(get_policy_loss_fn(name), old, new, adv, mask, loss_agg_mode=mode,
                                      config=_config(name, info=info), rollout_is_weights=weights)
    want, want_grad = _verl_reference(name, old, new, adv, mask, mode, info, weights)
    # verl's seq-mean-token-mean divides by (length + 1e-8), dgpo_ref by the length itself
    rtol = 1e-8 if mode == "seq-mean-token-mean" else 1e-12
    torch.testing.assert_close(got, want, rtol=rtol, atol=1e-14)
    torch.testing.assert_close(got_grad, want_grad, rtol=rtol, atol=1e-14)


@pytest.mark.parametrize("mode", ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum"])
def test_micro_batches_on_ranks_add_up_to_the_full_batch(mode):
    # 2 data-parallel ranks x 2 micro-batches, global counts as verl's ppo_loss sets them; FSDP
    # averages the ranks' gradients. The sum must equal dgpo_ref's gradient on the whole batch.
    old, new, adv, mask, _ = _batch(seed=3, shape=(8, 7), spread=1.5)
    info = {"dp_size": 2, "batch_num_tokens": int(mask.sum()), "global_batch_size": 8, "loss_scale_factor": None}
    fn = get_policy_loss_fn("dgpo")
    total = torch.zeros_like(new)
    for rank in range(2):
        for micro in range(2):
            rows = slice(4 * rank + 2 * micro, 4 * rank + 2 * micro + 2)
            _, grad, _ = _loss_and_grad(fn, old[rows], new[rows], adv[rows], mask[rows], loss_agg_mode=mode,
                                        config=_config("dgpo", info=info))
            total[rows] += grad / 2  # the all-reduce mean over ranks
    want = _loss_and_grad(lambda **kw: policy_loss("dgpo", loss_agg_mode=mode, eps_low=0.15, eps_high=0.3, **kw),
                          old, new, adv, mask)[1]
    torch.testing.assert_close(total, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", METHODS)
def test_rollout_is_weights_scale_each_tokens_gradient(name):
    old, new, adv, mask, weights = _batch(seed=5, spread=1.5)
    weights[0, :3] = 0.0  # a rejected token carries no gradient at all
    fn, config = get_policy_loss_fn(name), _config(name)
    _, plain, _ = _loss_and_grad(fn, old, new, adv, mask, config=config)
    _, weighted, _ = _loss_and_grad(fn, old, new, adv, mask, config=config, rollout_is_weights=weights)
    torch.testing.assert_close(weighted, plain * weights, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", METHODS)
def test_metrics_use_verls_keys_and_count_regions(name):
    old, new, adv, mask, _ = _batch(seed=11, spread=1.5)
    _, _, metrics = _loss_and_grad(get_policy_loss_fn(name), old, new, adv, mask, config=_config(name))
    assert {"actor/pg_clipfrac", "actor/ppo_kl", "actor/pg_clipfrac_lower"} <= set(metrics)
    assert all(isinstance(v, float) for v in metrics.values())
    live = mask.bool()
    r = torch.exp(new - old)
    ln = ((r < 0.85) & (adv < 0) & live).sum() / live.sum()
    hp = ((r > 1.3) & (adv > 0) & live).sum() / live.sum()
    assert metrics["actor/pg_clipfrac"] == pytest.approx(float(ln + hp))
    assert 0 < metrics["actor/pg_clipfrac"] < 1
    assert sum(metrics[f"actor/region/{k}"] for k in REGIONS) == pytest.approx(1.0)
    assert metrics["actor/ppo_kl"] == pytest.approx(float(((old - new) * mask).sum() / mask.sum()))
    dual = LOSSES[name].defaults.get("dual_clip")
    lower = ((r > dual) & (adv < 0) & live).sum() / live.sum() if dual else torch.tensor(0.0)
    assert metrics["actor/pg_clipfrac_lower"] == pytest.approx(float(lower))


@pytest.mark.parametrize(
    "kwargs, config, message",
    [
        ({"rollout_is_weights": -torch.ones(6, 9, dtype=torch.float64)}, _config("dgpo"), "rollout_is_weights"),
        ({"rollout_is_weights": torch.ones(6, 8, dtype=torch.float64)}, _config("dgpo"), "rollout_is_weights"),
        ({}, _config("dgpo", info={"dp_size": 2}), "batch_num_tokens"),
        ({"loss_agg_mode": "seq-mean-token-mean"}, _config("dgpo", info={"dp_size": 2}), "global_batch_size"),
        ({"loss_agg_mode": "mean"}, _config("dgpo"), "loss_agg_mode"),
        ({}, None, "config"),
        ({}, _config("dgpo", extra={"n": 0}), "n=0"),
        ({}, _config("dgpo", eps_low=1.5), "eps_low"),
        ({}, _config("gppo", extra={"m": 2}), "'m'"),
        ({}, _config("aspo", clip_c=0.5), "dual_clip"),
    ],
)
def test_bad_settings_raise_a_clear_error(kwargs, config, message):
    old, new, adv, mask, _ = _batch(seed=0)
    name = config.policy_loss.loss_mode if config is not None else "dgpo"
    with pytest.raises(ValueError, match=message):
        get_policy_loss_fn(name)(old_log_prob=old, log_prob=new, advantages=adv, response_mask=mask,
                                 config=config, **kwargs)


@pytest.mark.parametrize("name", ["gppo", "aspo"])
def test_clip_ratio_c_inf_turns_the_dual_clip_off(name):
    old, new, adv, mask, _ = _batch(seed=2, spread=2.5)
    adv[::2] = -adv[::2].abs()
    fn = get_policy_loss_fn(name)
    got = _loss_and_grad(fn, old, new, adv, mask, config=_config(name, clip_c=float("inf")))[1]
    capped = _loss_and_grad(fn, old, new, adv, mask, config=_config(name, clip_c=1.5))[1]
    want = _loss_and_grad(lambda **kw: policy_loss(name, eps_low=0.15, eps_high=0.3, dual_clip=None, **kw),
                          old, new, adv, mask)[1]
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-15)
    assert not torch.allclose(capped, want)


def test_config_class_checks_its_values_when_built():
    assert DGPOPolicyLossConfig(loss_mode="dgpo", n=2, m=2).n == 2
    with pytest.raises(ValueError, match="m=0"):
        DGPOPolicyLossConfig(loss_mode="dgpo", m=0)
    with pytest.raises(ValueError, match="'n'.*'gppo'"):
        DGPOPolicyLossConfig(loss_mode="gppo", n=2)


def test_config_class_has_a_field_for_every_spec_hyper_parameter():
    """EXTRA_HPARAMS comes from the spec records; a new method's hyper-parameter needs a field here."""
    from dataclasses import fields

    from dgpo_ref.integrations.verl import EXTRA_HPARAMS

    assert set(EXTRA) == set(METHODS)
    assert {k for m in METHODS for k in LOSSES[m].defaults} - {"eps_low", "eps_high", "dual_clip"} == set(EXTRA_HPARAMS)
    missing = set(EXTRA_HPARAMS) - {f.name for f in fields(DGPOPolicyLossConfig)}
    assert not missing, f"DGPOPolicyLossConfig lacks fields {sorted(missing)}"
