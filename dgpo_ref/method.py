"""The pieces a method is made of: token regions, the per-token terms (V, J) and the registry row.

A method is a function ``terms(tokens, **hparams) -> Terms`` that returns, per token and in log
space, the weight ``V`` on ∇log π and the surrogate value ``J`` of docs/methods.md, plus a
``LossSpec`` row that names it and gives its hyper-parameter defaults. Everything here is
detached (no autograd): ``dgpo_ref.loss`` turns V into the gradient and J into the loss value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import torch

from .hparams import DEFAULTS, DOMAINS, Domain

NEG_INF = -math.inf


def log(x):
    """``math.log`` of a hyper-parameter: a Python number, or a 0-d tensor on the compiled path
    (:mod:`dgpo_ref.fast` passes hyper-parameters as tensors so one compiled graph serves all values)."""
    return torch.log(x) if isinstance(x, torch.Tensor) else math.log(x)


def log1p(x):
    """``math.log1p`` of a hyper-parameter (a Python number or a 0-d tensor, as :func:`log`)."""
    return torch.log1p(x) if isinstance(x, torch.Tensor) else math.log1p(x)

IN, LN, HP, LP, HN = range(5)
REGIONS = ("IN", "LN", "HP", "LP", "HN")
"""Region names, indexed by the integer codes stored in ``Tokens.region``."""


def classify(ratio: torch.Tensor, adv: torch.Tensor, eps_low: float, eps_high: float) -> torch.Tensor:
    """Region code per token (docs/methods.md): breakpoints belong to IN; A = 0 goes to LP/HN.

    The comparison is made on the ratio r = exp(log r) in the compute dtype against the bounds
    1 - eps_low and 1 + eps_high rounded to that dtype (as PPO implementations clip r).
    Codes are int32, not int8: the compiled fast path's CPU kernels (inductor) handle int8 vectors
    and their masks through slow conversions, which made the region codes the costliest part of
    its loss (docs/performance.md).
    """
    low = ratio < 1.0 - eps_low
    high = ratio > 1.0 + eps_high
    region = torch.full(ratio.shape, IN, dtype=torch.int32, device=ratio.device)
    region = region.masked_fill(low & (adv < 0), LN).masked_fill(low & (adv >= 0), LP)
    return region.masked_fill(high & (adv > 0), HP).masked_fill(high & (adv <= 0), HN)


@dataclass(frozen=True)
class Tokens:
    """Detached, sanitized per-token inputs in the compute dtype, shape (batch, response_len)."""

    log_r: torch.Tensor
    log_p: torch.Tensor
    adv: torch.Tensor
    region: torch.Tensor
    ratio: torch.Tensor
    """r = exp(log r), the tensor the regions were classified on."""

    @property
    def log_p_old(self) -> torch.Tensor:
        """log π_old = log p − log r (for a method whose weight depends on p_old, e.g. DPPO's masks)."""
        return self.log_p - self.log_r

    @classmethod
    def build(cls, log_p, old_log_p, adv, eps_low: float, eps_high: float, ratio=None) -> Tokens:
        """``ratio``: exp(log_p − old_log_p) when already computed (the compiled path computes it
        eagerly, so that a token on a breakpoint lands in the same region wherever it sits in the
        batch: a compiled kernel's vectorized and scalar tail loops may round exp differently)."""
        log_r = log_p - old_log_p
        ratio = torch.exp(log_r) if ratio is None else ratio
        return cls(log_r, log_p, adv, classify(ratio, adv, eps_low, eps_high), ratio)

    def pick(self, cond: torch.Tensor, a, b) -> torch.Tensor:
        """Per token, hyper-parameter ``a`` where ``cond`` holds and ``b`` elsewhere, in the compute dtype."""
        as_t = lambda x: torch.as_tensor(x, dtype=self.log_r.dtype, device=self.log_r.device)  # noqa: E731
        return torch.where(cond, as_t(a), as_t(b))

    def by_region(self, *, IN, LN, HP, LP, HN) -> torch.Tensor:  # noqa: N803 (region names)
        """Pick, per token, the value given for its region (tensors or Python floats)."""
        values = (IN, LN, HP, LP, HN)  # indexed by region code
        out = torch.as_tensor(values[0], dtype=self.log_r.dtype, device=self.log_r.device)
        out = out.expand_as(self.log_r)
        for code in range(1, len(values)):
            out = torch.where(self.region == code, values[code], out)
        return out


@dataclass(frozen=True)
class Terms:
    """Per-token log V (−inf where V = 0), log |J|, and the sign of J (+1 unless noted)."""

    log_v: torch.Tensor
    log_j: torch.Tensor
    sign_j: torch.Tensor | float = 1.0


@dataclass(frozen=True)
class LossSpec:
    """One registry row: a method's name, its terms function and a one-line summary.

    Its hyper-parameter defaults and domains come from the method's spec record (through the
    generated :mod:`dgpo_ref._generated_hparams`), never from the row. ``defaults`` and ``domains``
    may be passed only for a method the spec does not have (an experiment, a test).
    """

    name: str
    terms: Callable[..., Terms]
    summary: str
    defaults: Mapping[str, object] | None = None
    domains: Mapping[str, Domain] | None = None

    def __post_init__(self):
        if self.name in DEFAULTS:
            if self.defaults is not None or self.domains is not None:
                raise ValueError(f"method {self.name!r}: its defaults and domains come from "
                                 f"spec/methods/{self.name}.py (regenerate with `dgpo gen-tests`)")
            defaults, domains = DEFAULTS[self.name], DOMAINS[self.name]
        elif self.defaults is None or self.domains is None or set(self.defaults) != set(self.domains):
            raise ValueError(f"method {self.name!r} is not in dgpo_ref/_generated_hparams.py: run `dgpo gen-tests` "
                             f"after adding spec/methods/{self.name}.py, or pass defaults= and domains= for a "
                             f"method the spec does not have")
        else:
            defaults, domains = self.defaults, self.domains
        object.__setattr__(self, "defaults", MappingProxyType(dict(defaults)))
        object.__setattr__(self, "domains", MappingProxyType(dict(domains)))

    def resolve(self, hparams: Mapping[str, object]) -> dict[str, object]:
        """Defaults overridden by ``hparams``; ValueError naming any unknown or out-of-domain value."""
        unknown = sorted(set(hparams) - set(self.defaults))
        if unknown:
            raise ValueError(
                f"unknown hyper-parameter {unknown[0]!r} for method {self.name!r} "
                f"(accepted: {', '.join(self.defaults)})"
            )
        resolved = {**self.defaults, **hparams}
        for key, value in resolved.items():
            self.domains[key].check(key, value, self.name)
        return resolved
