"""Per-token log-probs (and entropy) from hidden states without the (tokens x vocab) logits wall.

A policy-gradient step needs ``log pi(target_t)`` for every response token, and often the entropy of
``pi(. | t)``. The plain way multiplies all ``T`` hidden states by the LM head at once and takes a
log-softmax: that holds several ``T x V`` float32 tensors (logits, log-softmax, their gradients),
gigabytes at ``V = 151 936``. :func:`chunked_logprobs_and_entropy` does the same arithmetic ``chunk_size``
rows at a time inside one :class:`torch.autograd.Function`: the forward keeps only the (T,)
entropy, and the backward recomputes each chunk's log-softmax and writes the closed-form gradient
into it, so about two ``chunk_size x V`` float32 buffers live at once.

Closed form, per row with logits ``z``, ``log p = log_softmax(z)``, ``H = -sum p log p``, and
upstream gradients ``g_lp`` (on log p[y]) and ``g_H`` (on H)::

    d log p[y] / dz = onehot(y) - p
    d H / dz        = -p * (log p + H)
    dz              = g_lp * onehot(y) - p * (g_lp + g_H * (log p + H))

Logits are taken in float32 (float64 for float64 inputs) whatever the input dtype: the matrix
product runs in the input dtype (bf16 on a GPU accumulates in float32) and the log-softmax casts
its input, exactly as :func:`naive_logprobs_and_entropy` does, so the two agree to float32 rounding
(the sums over the vocabulary and over tokens are only grouped differently).

:func:`checkpointed_logprobs_and_entropy` is the other way to get there (``torch.utils.checkpoint``
around each chunk); ``bench/bench_logprobs.py`` measures both against the naive path.
"""

from __future__ import annotations

import torch
from torch.utils.checkpoint import checkpoint

__all__ = [
    "chunked_logprobs_and_entropy",
    "checkpointed_logprobs_and_entropy",
    "naive_logprobs_and_entropy",
]


def _check(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, chunk_size: int,
           bias: torch.Tensor | None) -> None:
    """Raise ValueError/TypeError naming the parameter and the constraint it breaks."""
    if not isinstance(hidden, torch.Tensor) or hidden.dim() != 2:
        raise ValueError(f"hidden must be a 2-D tensor (tokens, hidden_size); got shape "
                         f"{tuple(getattr(hidden, 'shape', ()))}")
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
        raise ValueError(f"weight must be a 2-D tensor (vocab, hidden_size); got shape "
                         f"{tuple(getattr(weight, 'shape', ()))}")
    if not hidden.is_floating_point() or hidden.dtype != weight.dtype:
        raise TypeError(f"hidden and weight must share one floating dtype; got {hidden.dtype} "
                        f"and {weight.dtype}")
    if weight.shape[1] != hidden.shape[1]:
        raise ValueError(f"weight must have hidden_size={hidden.shape[1]} columns (as hidden); "
                         f"got weight shape {tuple(weight.shape)}")
    if not isinstance(targets, torch.Tensor) or targets.shape != (hidden.shape[0],):
        raise ValueError(f"targets must be a 1-D tensor of length tokens={hidden.shape[0]}; got "
                         f"shape {tuple(getattr(targets, 'shape', ()))}")
    if targets.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"targets must be an integer (int64/int32) tensor; got {targets.dtype}")
    if targets.numel():
        lo, hi = torch.aminmax(targets)
        lo, hi = torch.stack([lo, hi]).tolist()  # one device synchronization
        if lo < 0 or hi >= weight.shape[0]:
            raise ValueError(f"targets must lie in [0, vocab={weight.shape[0]}); got values in [{lo}, {hi}]")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int; got {chunk_size!r}")
    if bias is not None and (not isinstance(bias, torch.Tensor) or bias.shape != (weight.shape[0],)
                             or bias.dtype != weight.dtype):
        raise ValueError(f"bias must be None or a ({weight.shape[0]},) tensor of dtype {weight.dtype}")


def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 or better: float64 inputs stay float64, everything narrower is computed in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _product(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """hidden @ weight.T (+ bias) in the input dtype (bf16 matrix products accumulate in float32)."""
    return hidden @ weight.T if bias is None else torch.addmm(bias, hidden, weight.T)


def _log_softmax(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """log-softmax of the logits cast to float32 (float64), the cast fused into the kernel."""
    return torch.log_softmax(_product(hidden, weight, bias), dim=-1, dtype=_acc_dtype(hidden.dtype))


def naive_logprobs_and_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                               compute_entropy: bool = True, bias: torch.Tensor | None = None
                               ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The reference: full (T, V) float32 logits, log-softmax, gather; plain autograd."""
    _check(hidden, weight, targets, 1, bias)
    logits = _product(hidden, weight, bias).to(_acc_dtype(hidden.dtype))
    logp_all = torch.log_softmax(logits, dim=-1)
    logprobs = logp_all.gather(-1, targets.long().unsqueeze(-1)).squeeze(-1)
    entropy = -(logp_all.exp() * logp_all).sum(-1) if compute_entropy else None
    return logprobs, entropy


def _chunk_forward(logp: torch.Tensor, y: torch.Tensor, want_entropy: bool
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log p[y] and the entropy -sum p log p of one chunk's log-softmax (``logp`` is not changed)."""
    logp_y = logp.gather(-1, y.unsqueeze(-1)).squeeze(-1)
    entropy = -(logp.exp().mul_(logp)).sum(-1) if want_entropy else None
    return logp_y, entropy


def _chunk_grad_logits(logp: torch.Tensor, y: torch.Tensor, entropy: torch.Tensor | None,
                       g_lp: torch.Tensor, g_h: torch.Tensor | None) -> torch.Tensor:
    """dL/dz = g_lp*onehot(y) - p*(g_lp + g_H*(log p + H)) in p's buffer (``logp`` is overwritten)."""
    p = logp.exp()
    if g_h is None:
        dz = p.mul_(-g_lp.unsqueeze(-1))
    else:  # t = -(g_lp + g_H*H) - g_H*log p, then dz = p*t
        c = -(g_lp + g_h * entropy)
        t = torch.addcmul(c.unsqueeze(-1), logp, -g_h.unsqueeze(-1), out=logp)
        dz = p.mul_(t)
    return dz.scatter_add_(-1, y.unsqueeze(-1), g_lp.unsqueeze(-1))


class _ChunkedLogProbs(torch.autograd.Function):
    """Forward and backward chunk by chunk; saves only hidden, weight, bias, targets and the entropy."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, chunk_size, want_entropy):
        n, acc = hidden.shape[0], _acc_dtype(hidden.dtype)
        logprobs = hidden.new_empty(n, dtype=acc)
        entropy = hidden.new_empty(n if want_entropy else 0, dtype=acc)
        for s in range(0, n, chunk_size):
            e = min(s + chunk_size, n)
            lp, h = _chunk_forward(_log_softmax(hidden[s:e], weight, bias), targets[s:e], want_entropy)
            logprobs[s:e] = lp
            if want_entropy:
                entropy[s:e] = h
        ctx.save_for_backward(hidden, weight, bias, targets, entropy)
        ctx.chunk_size, ctx.want_entropy = chunk_size, want_entropy
        if not want_entropy:
            ctx.mark_non_differentiable(entropy)  # an empty placeholder for the absent entropy
        return logprobs, entropy

    @staticmethod
    def backward(ctx, g_lp, g_h):
        hidden, weight, bias, targets, entropy = ctx.saved_tensors
        n, step, acc = hidden.shape[0], ctx.chunk_size, entropy.dtype
        g_lp = torch.zeros(n, dtype=acc, device=hidden.device) if g_lp is None else g_lp.to(acc)
        g_h = g_h.to(acc) if (ctx.want_entropy and g_h is not None) else None
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        grad_h = torch.empty_like(hidden) if need_h else None
        grad_w = torch.zeros(weight.shape, dtype=acc, device=weight.device) if need_w else None
        grad_b = torch.zeros(weight.shape[0], dtype=acc, device=weight.device) if need_b else None
        for s in range(0, n, step):
            e = min(s + step, n)
            h = hidden[s:e]
            dz = _chunk_grad_logits(_log_softmax(h, weight, bias), targets[s:e],
                                    entropy[s:e] if g_h is not None else None, g_lp[s:e],
                                    None if g_h is None else g_h[s:e])
            if need_b:
                grad_b += dz.sum(0)
            dz = dz.to(hidden.dtype)
            if need_h:
                torch.mm(dz, weight, out=grad_h[s:e])
            if need_w and hidden.dtype == acc:
                grad_w.addmm_(dz.T, h)
            elif need_w:
                grad_w.add_((dz.T @ h).to(acc))
            del dz
        grad_w = None if grad_w is None else grad_w.to(weight.dtype)
        grad_b = None if grad_b is None else grad_b.to(weight.dtype)
        return grad_h, grad_w, grad_b, None, None, None


def chunked_logprobs_and_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                                 chunk_size: int = 1024, compute_entropy: bool = True,
                                 bias: torch.Tensor | None = None
                                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log pi(targets) and the entropy of pi, (T,) float32 (float64 for float64 inputs), never
    holding the (T, V) logits.

    hidden: (T, H) final hidden states; weight: (V, H) LM head (same floating dtype); targets: (T,)
    token ids in [0, V); bias: optional (V,). Gradients flow to hidden, weight and bias.
    """
    _check(hidden, weight, targets, chunk_size, bias)
    logprobs, entropy = _ChunkedLogProbs.apply(hidden, weight, bias, targets.long(), chunk_size,
                                               compute_entropy)
    return logprobs, (entropy if compute_entropy else None)


def _checkpoint_chunk(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, y: torch.Tensor,
                      want_entropy: bool) -> tuple[torch.Tensor, torch.Tensor]:
    logp_all = _log_softmax(h, weight, bias)
    lp = logp_all.gather(-1, y.unsqueeze(-1)).squeeze(-1)
    ent = -(logp_all.exp() * logp_all).sum(-1) if want_entropy else torch.zeros_like(lp)
    return lp, ent


def checkpointed_logprobs_and_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                                      chunk_size: int = 1024, compute_entropy: bool = True,
                                      bias: torch.Tensor | None = None
                                      ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Same result as :func:`chunked_logprobs_and_entropy` via ``torch.utils.checkpoint`` per chunk.

    Kept for the benchmark's comparison: its backward holds one chunk's plain-autograd graph at a
    time, several ``chunk_size x V`` tensors, where the custom Function holds two.
    """
    _check(hidden, weight, targets, chunk_size, bias)
    y = targets.long()
    parts = [checkpoint(_checkpoint_chunk, hidden[s:s + chunk_size], weight, bias, y[s:s + chunk_size],
                        compute_entropy, use_reentrant=False)
             for s in range(0, hidden.shape[0], chunk_size)]
    logprobs = torch.cat([p[0] for p in parts])
    return logprobs, (torch.cat([p[1] for p in parts]) if compute_entropy else None)
