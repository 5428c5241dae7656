"""A fused DGPO loss: the same value and gradient as ``policy_loss("dgpo", ...)`` in a few passes.

The reference (:mod:`dgpo_ref.loss`) is generic: every method goes through region codes, a
per-region ``torch.where`` ladder, a log-space fallback sum and float64 metrics. For DGPO the
surrogate's value equals its weight (J = V in every region, docs/methods.md), so one tensor gives
both the loss and the gradient coefficient on ``log_prob``::

    log V = (n+1)·log r − n·log(1−eps_low)          on LN  (r < 1−eps_low, A < 0)
          = log(1+eps_high)/m + (m−1)/m·log r       on HP  (r > 1+eps_high, A > 0)
          = log r                                    elsewhere
    coef  = −A·V·w     (w the aggregation weight; 0 where masked out or A = 0)
    loss  = Σ coef,    d loss / d log_prob = coef

:func:`fused_policy_loss` has ``policy_loss``'s signature and checks (it calls the same validation
functions). ``metrics=False`` skips the float64 statistics (and their device synchronization) for
inner micro-batch loops; with ``metrics=True`` it returns exactly the reference's metric keys.
Where the direct sum overflows (|A|·V beyond float range) it defers to the reference, which sums
in log space. Methods other than ``dgpo`` are passed to the reference unchanged.

``tests/test_fused.py`` checks value, gradient and metrics against the reference on mixed,
boundary and extreme inputs; ``bench/bench_loss.py`` measures the speed-up.
"""

from __future__ import annotations

import math

import torch

from .loss import _Surrogate, policy_loss, prepare
from .method import Terms, Tokens, classify
from .metrics import loss_metrics
from .registry import get_spec

__all__ = ["fused_policy_loss", "FUSED"]


def dgpo_log_v(log_r: torch.Tensor, adv: torch.Tensor, *, eps_low: float, eps_high: float, n: int, m: int
               ) -> torch.Tensor:
    """log V per token for DGPO (regions compared on r in the compute dtype, as ``classify`` does)."""
    ratio = torch.exp(log_r)
    ln = (ratio < 1.0 - eps_low) & (adv < 0)
    hp = (ratio > 1.0 + eps_high) & (adv > 0)
    left = (n + 1) * log_r - n * math.log1p(-eps_low)
    right = math.log1p(eps_high) / m + (m - 1) / m * log_r
    return torch.where(ln, left, torch.where(hp, right, log_r))


FUSED = {"dgpo": dgpo_log_v}
"""Methods with a fused path: name -> log V function (J = V for each of them)."""


def fused_policy_loss(name: str, *, log_prob: torch.Tensor, old_log_prob: torch.Tensor,
                      advantages: torch.Tensor, response_mask: torch.Tensor,
                      loss_agg_mode: str = "token-mean", normalizer=None, loss_scale_factor=None,
                      check_inputs: bool = True, metrics: bool = True, **hparams
                      ) -> tuple[torch.Tensor, dict[str, float]]:
    """``policy_loss`` for the methods in ``FUSED`` (else the reference); ``metrics=False`` returns {}."""
    common = dict(log_prob=log_prob, old_log_prob=old_log_prob, advantages=advantages,
                  response_mask=response_mask, loss_agg_mode=loss_agg_mode, normalizer=normalizer,
                  loss_scale_factor=loss_scale_factor, check_inputs=check_inputs, **hparams)
    if name not in FUSED:
        return policy_loss(name, **common)
    hp = get_spec(name).resolve(hparams)
    adv_in, mask, dtype, w = prepare(log_prob, old_log_prob, advantages, response_mask, loss_agg_mode,
                                     normalizer, loss_scale_factor, check_inputs)
    with torch.no_grad():
        zero = torch.zeros((), dtype=dtype, device=log_prob.device)
        log_p = torch.where(mask, log_prob.detach().to(dtype), zero)
        log_r = log_p - torch.where(mask, old_log_prob.detach().to(dtype), zero)
        adv = torch.where(mask, adv_in.detach().to(dtype), zero)
        log_v = FUSED[name](log_r, adv, **hp)
        coef = torch.where(mask & (adv != 0), -adv * (torch.exp(log_v) * w), zero)
        value = coef.sum()
    if not bool(torch.isfinite(value)):  # overflow: the reference sums in log space
        return policy_loss(name, **common)
    loss = _Surrogate.apply(log_prob.to(dtype), value, coef).to(log_prob.dtype)
    if not metrics:
        return loss, {}
    tokens = Tokens(log_r, log_p, adv, classify(torch.exp(log_r), adv, hp["eps_low"], hp["eps_high"]))
    return loss, loss_metrics(tokens, Terms(log_v=log_v, log_j=log_v), coef, mask, value)
