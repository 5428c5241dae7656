"""Deliberately broken DGPO losses: each must be rejected by `dgpo conformance` (tests of the tests).

All share one clean, independent DGPO (the published code's log-space surrogate, written here
without dgpo_ref) and differ from it by exactly one defect, switched on by a keyword. ``clean``
itself passes every property; ``verl_clean`` is the same loss behind verl's policy-loss signature
(it reports no region metrics, so ``regions`` is not applicable to it).

| function | defect | property that must reject it |
|---|---|---|
| ``const_off`` | C_right 3% too large | gradient |
| ``gppo_weight`` | GPPO's V (1−eps_low, 1+eps_high) on LN/HP under the DGPO name | gradient |
| ``nan_leak`` | every branch exponentiated before ``torch.where`` picks one | finiteness |
| ``per_sequence`` | per-sequence mean under ``token-mean`` | invariance |
| ``right_hard_clip`` | HP hard-clipped (V = 0) as in PPO | continuity |
| ``clamp_extreme`` | log r clamped to ±20 (the authors' code): extreme tokens lose their gradient | gradient |
| ``own_normalizer`` | ignores ``normalizer`` (averages per micro-batch) | aggregation |
| ``value_shift`` | a constant added to J on LN: right gradient, wrong loss | value |
| ``zero_adv_in_ln`` | A = 0 tokens below 1−eps_low reported as LN | regions |
| ``over_bound`` | V = 1.01·r on HP: W above 1/p_old | bounds |
| ``bf16_autocast`` | float32 log-probs rounded to bfloat16 inside (an autocast region) | dtypes |
"""

from __future__ import annotations

import math

import torch

REGIONS = ("IN", "LN", "HP", "LP", "HN")


def _dgpo(log_prob, old_log_prob, advantages, response_mask, *, eps_low=0.2, eps_high=0.2, n=1, m=2,
          normalizer=None, defect=None, **_):
    dtype = torch.float64 if torch.float64 in (log_prob.dtype, old_log_prob.dtype) else torch.float32
    mask = response_mask != 0
    zero = torch.zeros((), dtype=dtype)
    lp = torch.where(mask, log_prob.to(dtype), zero)
    old = torch.where(mask, old_log_prob.detach().to(dtype), zero)
    adv = torch.where(mask, advantages.detach().to(dtype), zero)
    if defect == "bf16_autocast" and log_prob.dtype == torch.float32:  # an autocast region: log-probs in bf16
        lp, old = lp.to(torch.bfloat16).to(dtype), old.to(torch.bfloat16).to(dtype)
    log_r = lp - old
    if defect == "clamp_extreme":
        log_r = torch.clamp(log_r, -20.0, 20.0)
    low, high = log_r < math.log1p(-eps_low), log_r > math.log1p(eps_high)
    ln, hp = low & (adv < 0), high & (adv > 0)
    c_right = math.log1p(eps_high) / m + (math.log(1.03) if defect == "const_off" else 0.0)
    log_j = {
        "LN": lp + n * lp.detach() - (n + 1) * old - n * math.log1p(-eps_low),
        "HP": lp + c_right - old * (m - 1) / m - lp.detach() / m,
        "else": log_r,
    }
    if defect == "gppo_weight":
        log_j["LN"] = log_r - log_r.detach() + math.log1p(-eps_low)
        log_j["HP"] = log_r - log_r.detach() + math.log1p(eps_high)
    if defect == "right_hard_clip":
        log_j["HP"] = torch.full_like(log_r, math.log1p(eps_high))
    if defect == "over_bound":
        log_j["HP"] = log_r + math.log(1.01)
    live = mask & (adv != 0)
    if defect == "nan_leak":  # exp of every branch, then select: inf in an unselected branch -> NaN grad
        j = torch.where(ln, torch.exp(log_j["LN"]), torch.where(hp, torch.exp(log_j["HP"]),
                                                                torch.exp(log_j["else"])))
    else:
        chosen = torch.where(ln, log_j["LN"], torch.where(hp, log_j["HP"], log_j["else"]))
        j = torch.exp(torch.where(live, chosen, zero))
    if defect == "value_shift":
        j = j + torch.where(ln, 1.0 - eps_low, 0.0)
    per_token = torch.where(live, -adv * j, zero)
    if defect == "per_sequence":
        lengths = mask.sum(-1).clamp(min=1).to(dtype)
        loss = (per_token.sum(-1) / lengths).sum() / (mask.sum(-1) > 0).sum().clamp(min=1)
    else:
        count = mask.sum().clamp(min=1).to(dtype)
        if normalizer is not None and defect != "own_normalizer":
            count = torch.as_tensor(normalizer, dtype=dtype)
        loss = per_token.sum() / count
    return loss, _metrics(log_r, adv, mask, eps_low, eps_high, defect)


def _metrics(log_r, adv, mask, eps_low, eps_high, defect):
    low, high = log_r < math.log1p(-eps_low), log_r > math.log1p(eps_high)
    zero_as_ln = defect == "zero_adv_in_ln"
    codes = {
        "LN": low & ((adv < 0) | ((adv == 0) & zero_as_ln)),
        "HP": high & (adv > 0),
        "LP": low & (adv > 0 if zero_as_ln else adv >= 0),
        "HN": high & (adv <= 0),
    }
    codes["IN"] = ~low & ~high
    count = max(int(mask.sum()), 1)
    return {f"region/{r}": float((codes[r] & mask).sum()) / count for r in REGIONS}


def _variant(defect):
    def loss(*, log_prob, old_log_prob, advantages, response_mask, loss_agg_mode="token-mean", **kw):
        assert loss_agg_mode == "token-mean", loss_agg_mode
        return _dgpo(log_prob, old_log_prob, advantages, response_mask, defect=defect, **kw)

    loss.__name__ = defect or "clean"
    return loss


clean = _variant(None)
const_off = _variant("const_off")
gppo_weight = _variant("gppo_weight")
nan_leak = _variant("nan_leak")
per_sequence = _variant("per_sequence")
right_hard_clip = _variant("right_hard_clip")
clamp_extreme = _variant("clamp_extreme")
own_normalizer = _variant("own_normalizer")
value_shift = _variant("value_shift")
zero_adv_in_ln = _variant("zero_adv_in_ln")
over_bound = _variant("over_bound")
bf16_autocast = _variant("bf16_autocast")

#: function name -> the property that must reject it
EXPECTED_REJECTION = {
    "const_off": "gradient",
    "gppo_weight": "gradient",
    "nan_leak": "finiteness",
    "per_sequence": "invariance",
    "right_hard_clip": "continuity",
    "clamp_extreme": "gradient",
    "own_normalizer": "aggregation",
    "value_shift": "value",
    "zero_adv_in_ln": "regions",
    "over_bound": "bounds",
    "bf16_autocast": "dtypes",
}


def verl_clean(old_log_prob, log_prob, advantages, response_mask, loss_agg_mode, config):
    """The clean loss behind verl's signature; verl-style metrics only (no region fractions)."""
    loss, metrics = _dgpo(log_prob, old_log_prob, advantages, response_mask, eps_low=config.clip_ratio_low,
                          eps_high=config.clip_ratio_high, n=config.policy_loss.n, m=config.policy_loss.m,
                          normalizer=config.global_batch_info.get("batch_num_tokens"))
    return loss, {"actor/pg_clipfrac": metrics["region/LN"] + metrics["region/HP"]}
