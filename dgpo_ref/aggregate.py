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

FORMS: dict[str, tuple[bool, bool, bool]] = {
    # mode: (divide by the sequence's length len_i, count sequences (not tokens), divide by L)
    "token-mean": (False, False, False),
    "seq-mean-token-sum": (False, True, False),
    "seq-mean-token-mean": (True, True, False),
    "seq-mean-token-sum-norm": (False, True, True),
}
"""Each mode of the table above as the three switches of :func:`weights` (its one formula)."""


def weights(mask: torch.Tensor, by_length, count_sequences, normalizer, scale) -> torch.Tensor:
    """w = mask / len_i / count / scale, the formula every mode shares (``mask`` a 0/1 float tensor).

    ``by_length`` and ``count_sequences`` are bools or 0-d bool tensors; ``normalizer`` is None,
    a number or a 0-d tensor (None, or a NaN tensor: this call's own count, at least 1); ``scale``
    a number or 0-d tensor. Dividing by exactly 1 where a switch is off keeps every mode's result bit for bit the
    plain ``mask / count`` it was. The compiled fast path calls this with 0-d tensors for every
    argument, so that all modes share one graph."""
    one = torch.ones((), dtype=mask.dtype, device=mask.device)
    lengths = mask.sum(-1, keepdim=True)
    tokens, sequences = mask.sum(), (lengths > 0).sum().to(mask.dtype)
    own = torch.where(torch.as_tensor(count_sequences, device=mask.device), sequences, tokens).clamp(min=1)
    if normalizer is None:
        count = own
    else:
        given = torch.as_tensor(normalizer, dtype=mask.dtype, device=mask.device)
        count = torch.where(torch.isnan(given), own, given)
    row = torch.where(torch.as_tensor(by_length, device=mask.device), lengths.clamp(min=1), one)
    return mask / row / count / torch.as_tensor(scale, dtype=mask.dtype, device=mask.device)


def form(mode: str, mask_shape, normalizer=None, loss_scale_factor=None) -> tuple:
    """The arguments of :func:`weights` after ``mask`` for ``mode``; ValueError for an unknown mode."""
    if mode not in FORMS:
        raise ValueError(f"loss_agg_mode={mode!r} is not known; choose one of {', '.join(AGG_MODES)}")
    by_length, count_sequences, by_scale = FORMS[mode]
    scale = (mask_shape[-1] if loss_scale_factor is None else loss_scale_factor) if by_scale else 1
    return by_length, count_sequences, normalizer, scale


def _mode(name: str) -> Callable[..., torch.Tensor]:
    def mode_weights(mask, normalizer, loss_scale_factor):
        return weights(mask, *form(name, mask.shape, normalizer, loss_scale_factor))

    mode_weights.__name__ = mode_weights.__qualname__ = name.replace("-", "_")
    return mode_weights


AGG_MODES: dict[str, Callable[..., torch.Tensor]] = {name: _mode(name) for name in FORMS}
"""mode name -> ``weights(mask, normalizer, loss_scale_factor)`` with ``mask`` a 0/1 float tensor."""


def token_weights(mode: str, mask: torch.Tensor, normalizer=None, loss_scale_factor=None) -> torch.Tensor:
    """Per-token aggregation weights w, shape of ``mask``; ValueError for an unknown mode."""
    return weights(mask, *form(mode, mask.shape, normalizer, loss_scale_factor))
