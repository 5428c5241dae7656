"""Loss aggregation modes, named and defined as in verl's ``agg_loss``.

Each mode gives every token a weight ``w`` (zero off the mask); the loss is Σ w·(−A·J) and the
gradient on ``log_prob`` is −A·V·w. ``normalizer`` replaces the micro-batch's own count so that
micro-batches (and data-parallel ranks) can be summed into the full batch's loss and gradient:

| mode | w per masked-in token | ``normalizer`` (default: this call's count) |
|---|---|---|
| ``token-mean`` | 1/N | N: masked-in tokens of the whole batch |
| ``seq-mean-token-sum`` | 1/S | S: sequences with ≥ 1 masked-in token, whole batch |
| ``seq-mean-token-mean`` | 1/(S·len_i) | S as above; len_i = masked-in tokens of sequence i |
| ``seq-mean-token-sum-norm`` | 1/(S·L) | S as above; L = ``loss_scale_factor`` (default: response_len) |

Differences from verl: no ``dp_size`` factor (verl multiplies by it to cancel FSDP's gradient
averaging; pass ``normalizer = global count / dp_size`` to get the same number), and
``seq-mean-token-mean`` divides by ``max(len_i, 1)`` where verl adds 1e-8.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def _count(default: torch.Tensor, normalizer) -> torch.Tensor:
    """The given normalizer, or this micro-batch's own count (at least 1, so an empty batch gives 0)."""
    if normalizer is None:
        return default.clamp(min=1)
    return torch.as_tensor(normalizer, dtype=default.dtype, device=default.device)


def _sequences(mask: torch.Tensor) -> torch.Tensor:
    return (mask.sum(-1) > 0).sum().to(mask.dtype)


def token_mean(mask, normalizer, loss_scale_factor):
    return mask / _count(mask.sum(), normalizer)


def seq_mean_token_sum(mask, normalizer, loss_scale_factor):
    return mask / _count(_sequences(mask), normalizer)


def seq_mean_token_mean(mask, normalizer, loss_scale_factor):
    lengths = mask.sum(-1, keepdim=True).clamp(min=1)
    return mask / lengths / _count(_sequences(mask), normalizer)


def seq_mean_token_sum_norm(mask, normalizer, loss_scale_factor):
    scale = mask.shape[-1] if loss_scale_factor is None else loss_scale_factor
    return mask / _count(_sequences(mask), normalizer) / scale


AGG_MODES: dict[str, Callable[..., torch.Tensor]] = {
    "token-mean": token_mean,
    "seq-mean-token-sum": seq_mean_token_sum,
    "seq-mean-token-mean": seq_mean_token_mean,
    "seq-mean-token-sum-norm": seq_mean_token_sum_norm,
}
"""mode name -> ``weights(mask, normalizer, loss_scale_factor)`` with ``mask`` a 0/1 float tensor."""


def token_weights(mode: str, mask: torch.Tensor, normalizer=None, loss_scale_factor=None) -> torch.Tensor:
    """Per-token aggregation weights w, shape of ``mask``; ValueError for an unknown mode."""
    if mode not in AGG_MODES:
        raise ValueError(f"loss_agg_mode={mode!r} is not known; choose one of {', '.join(AGG_MODES)}")
    return AGG_MODES[mode](mask, normalizer, loss_scale_factor)
