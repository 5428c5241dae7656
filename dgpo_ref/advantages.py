"""Group advantages for rewards of shape (prompts, G): GRPO (mean/std) and Dr. GRPO (mean only).

A group whose rewards are all equal (zero variance, including G = 1) gets advantage exactly 0,
never NaN. Flatten the result (``adv.reshape(-1)``) to get the (batch,) advantages that
``policy_loss`` broadcasts over tokens.
"""

from __future__ import annotations

import math
import numbers

import torch


def _rewards(rewards) -> torch.Tensor:
    r = torch.as_tensor(rewards)
    if r.dim() != 2 or r.shape[1] < 1:
        raise ValueError(f"rewards must have shape (prompts, G) with G >= 1, got {tuple(r.shape)}")
    if r.dtype == torch.bool or r.is_complex():
        raise ValueError(f"rewards must be real numbers, got dtype {r.dtype}")
    r = r.to(torch.float64 if r.dtype == torch.float64 else torch.float32)
    if not bool(torch.isfinite(r).all()):
        raise ValueError("rewards must be finite")
    return r


def _centered(r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(rewards - group mean, True where the group has zero variance)."""
    flat = (r.amax(1, keepdim=True) == r.amin(1, keepdim=True)).expand_as(r)
    return torch.where(flat, torch.zeros_like(r), r - r.mean(1, keepdim=True)), flat


def grpo_advantages(rewards, eps: float = 1e-6, unbiased: bool = True) -> torch.Tensor:
    """(r − mean) / (std + eps) per group; ``unbiased`` std as ``torch.std`` (verl's default)."""
    if not isinstance(eps, numbers.Real) or isinstance(eps, bool) or not math.isfinite(eps) or eps < 0:
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
    r = _rewards(rewards)
    centered, flat = _centered(r)
    if r.shape[1] == 1:
        return centered
    std = r.std(1, keepdim=True, unbiased=unbiased)
    return torch.where(flat, torch.zeros_like(r), centered / (std + eps))


def drgrpo_advantages(rewards) -> torch.Tensor:
    """r − group mean (Dr. GRPO: no division by the std)."""
    return _centered(_rewards(rewards))[0]
