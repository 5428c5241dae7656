"""Input validation for ``policy_loss``: every message names the argument and the constraint.

Shape, dtype and hyper-parameter checks always run (they are free). Value checks (mask entries in
{0, 1}; log-probs finite and ≤ 1e-6 at masked-in positions; advantages finite there) read the data
and synchronize with the device; ``check_inputs=False`` skips them.
"""

from __future__ import annotations

import math
import numbers

import torch

LOG_PROB_SLACK = 1e-6
"""Largest positive log-prob accepted at a masked-in position (rounding noise of log_softmax)."""


def compute_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """float64 if any input is float64, otherwise float32 (also for bfloat16 and float16)."""
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def _tensor(name: str, x, floating: bool = True) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if floating and not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    return x


def check_shapes(log_prob, old_log_prob, advantages, response_mask) -> torch.Tensor:
    """Validate types and shapes; return advantages broadcast to (batch, response_len)."""
    _tensor("log_prob", log_prob)
    if log_prob.dim() != 2:
        raise ValueError(f"log_prob must have shape (batch, response_len), got {tuple(log_prob.shape)}")
    shape = tuple(log_prob.shape)
    for name, x in (("old_log_prob", old_log_prob), ("response_mask", response_mask)):
        _tensor(name, x, floating=name != "response_mask")
        if tuple(x.shape) != shape:
            raise ValueError(f"{name} must have the shape of log_prob {shape}, got {tuple(x.shape)}")
    _tensor("advantages", advantages, floating=False)
    if advantages.dtype == torch.bool or advantages.is_complex():
        raise ValueError(f"advantages must be a real-valued tensor, got dtype {advantages.dtype}")
    if tuple(advantages.shape) == shape[:1]:
        advantages = advantages[:, None]
    elif tuple(advantages.shape) not in (shape, (shape[0], 1)):
        raise ValueError(
            f"advantages must have shape {shape}, ({shape[0]},) or ({shape[0]}, 1), got {tuple(advantages.shape)}"
        )
    return advantages.expand(shape)


def check_mask_dtype(response_mask: torch.Tensor) -> None:
    if response_mask.is_complex():
        raise ValueError(f"response_mask must be boolean or 0/1, got dtype {response_mask.dtype}")


def _first_bad(name: str, x: torch.Tensor, bad: torch.Tensor, constraint: str) -> ValueError:
    where = tuple(bad.nonzero()[0].tolist())
    return ValueError(f"{name} must be {constraint} at masked-in positions; got {x[where].item()!r} at {where}")


def check_values(log_prob, old_log_prob, advantages, mask: torch.Tensor, response_mask) -> None:
    """The value checks; ``mask`` is the boolean mask. One device synchronization when all pass."""
    bad_mask = (response_mask != 0) & (response_mask != 1)
    lp, olp = log_prob.detach(), old_log_prob.detach()
    bad_lp = mask & ~(torch.isfinite(lp) & (lp <= LOG_PROB_SLACK))
    bad_olp = mask & ~(torch.isfinite(olp) & (olp <= LOG_PROB_SLACK))
    bad_adv = mask & ~torch.isfinite(advantages)
    flags = torch.stack([bad_mask.any(), bad_lp.any(), bad_olp.any(), bad_adv.any()]).tolist()
    if flags[0]:
        raise ValueError("response_mask must be boolean or contain only 0 and 1")
    log_prob_rule = f"finite and <= {LOG_PROB_SLACK:g}"
    if flags[1]:
        raise _first_bad("log_prob", lp, bad_lp, log_prob_rule)
    if flags[2]:
        raise _first_bad("old_log_prob", olp, bad_olp, log_prob_rule)
    if flags[3]:
        raise _first_bad("advantages", advantages, bad_adv, "finite")


MIN_SCALE = 1e-6
"""Smallest ``normalizer`` and ``loss_scale_factor`` accepted: the token weights 1/normalizer (and
1/(normalizer·loss_scale_factor)) then stay <= 1e12, finite in float32, so no weight is inf and the
loss's log-space fallback never meets inf − inf. A count divided by a data-parallel size up to 1e6
still passes; 1e-39 (float32's subnormals, 1/x = inf) does not."""


def check_positive(name: str, value, read_tensors: bool = True) -> None:
    """``normalizer`` / ``loss_scale_factor``: None or a finite number (or one-element tensor) >= ``MIN_SCALE``.

    A tensor's value is only read (a device synchronization) when ``read_tensors`` is true.
    """
    if value is None:
        return
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name} must be a number or a one-element tensor, got shape {tuple(value.shape)}")
        if not read_tensors:
            return
        value = value.item()
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value) or value < MIN_SCALE:
        raise ValueError(f"{name} must be None or a finite number >= {MIN_SCALE:g}, got {value!r}")
