"""The chunked log-prob path equals the naive one (values and gradients) and never saves (T, V) tensors."""

from __future__ import annotations

import pytest
import torch

from dgpo_ref.logprobs import (
    checkpointed_logprobs_and_entropy,
    chunked_logprobs_and_entropy,
    naive_logprobs_and_entropy,
)

T, H, V = 97, 24, 211  # T prime, so most chunk sizes leave a ragged last chunk


def _inputs(dtype=torch.float32, bias=False, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(T, H, generator=g, dtype=torch.float64)
    weight = torch.randn(V, H, generator=g, dtype=torch.float64) * scale / H ** 0.5
    b = torch.randn(V, generator=g, dtype=torch.float64) if bias else None
    targets = torch.randint(0, V, (T,), generator=g)
    leaves = [t.to(dtype).requires_grad_() if t is not None else None for t in (hidden, weight, b)]
    upstream = (torch.randn(T, generator=g), torch.randn(T, generator=g))
    return leaves, targets, upstream


def _run(fn, leaves, targets, upstream, compute_entropy=True, **kw):
    """Values and gradients w.r.t. every leaf of sum(g_lp*logp + g_H*H)."""
    hidden, weight, bias = leaves
    lp, ent = fn(hidden, weight, targets, compute_entropy=compute_entropy, bias=bias, **kw)
    loss = (lp * upstream[0].to(lp.dtype)).sum()
    if compute_entropy:
        loss = loss + (ent * upstream[1].to(ent.dtype)).sum()
    live = [t for t in leaves if t is not None]
    grads = torch.autograd.grad(loss, live)
    return (lp.detach(), None if ent is None else ent.detach(), *grads)


CHUNKED = {"function": chunked_logprobs_and_entropy, "checkpoint": checkpointed_logprobs_and_entropy}


@pytest.mark.parametrize("impl", sorted(CHUNKED))
@pytest.mark.parametrize("chunk_size", [3, 16, T, 1000])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("compute_entropy", [True, False])
def test_equals_naive_float32(impl, chunk_size, bias, compute_entropy):
    leaves, targets, up = _inputs(torch.float32, bias=bias, scale=3.0)
    want = _run(naive_logprobs_and_entropy, leaves, targets, up, compute_entropy)
    got = _run(CHUNKED[impl], leaves, targets, up, compute_entropy, chunk_size=chunk_size)
    assert got[0].dtype == torch.float32
    assert (got[1] is None) == (not compute_entropy)
    for name, a, b in zip(["logprobs", "entropy", "d_hidden", "d_weight", "d_bias"], got, want):
        if a is not None:
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0, msg=lambda m, n=name: f"{n}: {m}")


def test_float64_matches_naive_to_float64_rounding():
    leaves, targets, up = _inputs(torch.float64, bias=True, scale=3.0)
    want = _run(naive_logprobs_and_entropy, leaves, targets, up)
    got = _run(chunked_logprobs_and_entropy, leaves, targets, up, chunk_size=10)
    assert got[0].dtype == torch.float64
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def test_gradcheck_float64():
    g = torch.Generator().manual_seed(1)
    hidden = torch.randn(9, 5, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(13, 5, generator=g, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(13, generator=g, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(0, 13, (9,), generator=g)

    def f(h, w, b):
        lp, ent = chunked_logprobs_and_entropy(h, w, targets, chunk_size=4, bias=b)
        return lp, ent

    assert torch.autograd.gradcheck(f, (hidden, weight, bias))


def test_values_are_log_probabilities():
    (hidden, weight, _), targets, _ = _inputs(torch.float64)
    lp, ent = chunked_logprobs_and_entropy(hidden, weight, targets, chunk_size=8)
    probs = torch.softmax(hidden @ weight.T, dim=-1)
    torch.testing.assert_close(lp, probs[torch.arange(T), targets].log())
    torch.testing.assert_close(ent, torch.distributions.Categorical(probs=probs).entropy())


def test_bfloat16_error_no_worse_than_naive():
    """bf16 inputs: both paths round the product to bf16; compare each with the float64 truth."""
    leaves, targets, up = _inputs(torch.bfloat16, bias=True, scale=3.0)
    exact = _run(naive_logprobs_and_entropy, [t.detach().double().requires_grad_() for t in leaves],
                 targets, up)
    naive = _run(naive_logprobs_and_entropy, leaves, targets, up)
    chunked = _run(chunked_logprobs_and_entropy, leaves, targets, up, chunk_size=16)
    assert chunked[0].dtype == torch.float32 and chunked[1].dtype == torch.float32
    assert chunked[2].dtype == torch.bfloat16 and chunked[3].dtype == torch.bfloat16
    for name, c, n, x in zip(["logprobs", "entropy", "d_hidden", "d_weight", "d_bias"], chunked, naive, exact):
        err_c = (c.double() - x).abs().max().item()
        err_n = (n.double() - x).abs().max().item()
        assert err_c <= 2 * err_n + 1e-2 * x.abs().max().item(), (name, err_c, err_n)


def test_unused_entropy_and_logprob_only_gradients():
    leaves, targets, up = _inputs(torch.float64)
    hidden, weight, _ = leaves
    lp, _ent = chunked_logprobs_and_entropy(hidden, weight, targets, chunk_size=10)
    got = torch.autograd.grad(lp.sum(), [hidden, weight])
    lp_n, _ = naive_logprobs_and_entropy(hidden, weight, targets)
    want = torch.autograd.grad(lp_n.sum(), [hidden, weight])
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)


def test_frozen_weight_gets_no_gradient():
    leaves, targets, _ = _inputs(torch.float32)
    hidden, weight = leaves[0], leaves[1].detach()
    lp, ent = chunked_logprobs_and_entropy(hidden, weight, targets, chunk_size=32)
    (lp.sum() + ent.sum()).backward()
    assert hidden.grad is not None and hidden.grad.abs().sum() > 0 and weight.grad is None


def _largest_saved(fn, **kw):
    """The largest number of elements in any tensor autograd saves for backward."""
    leaves, targets, _ = _inputs(torch.float32)
    sizes = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: sizes.append(t.numel()) or t, lambda t: t):
        fn(leaves[0], leaves[1], targets, **kw)
    return max(sizes)


def test_chunked_never_saves_a_tokens_by_vocab_tensor():
    assert _largest_saved(naive_logprobs_and_entropy) >= T * V  # the check can see the wall
    assert _largest_saved(chunked_logprobs_and_entropy, chunk_size=16) == V * H


BAD = {
    "hidden must be a 2-D": lambda h, w, y: dict(hidden=h[0]),
    "weight must be a 2-D": lambda h, w, y: dict(weight=w[0]),
    "weight must have hidden_size": lambda h, w, y: dict(weight=w[:, :-1]),
    "share one floating dtype": lambda h, w, y: dict(hidden=h.double()),
    "targets must be a 1-D tensor of length": lambda h, w, y: dict(targets=y[:-1]),
    "targets must be an integer": lambda h, w, y: dict(targets=y.float()),
    "targets must lie in [0, vocab": lambda h, w, y: dict(targets=y.clone().fill_(V)),
    "targets must lie in [0, vocab=": lambda h, w, y: dict(targets=y.clone().fill_(-1)),
    "chunk_size must be a positive int": lambda h, w, y: dict(chunk_size=0),
    "chunk_size must be a positive int;": lambda h, w, y: dict(chunk_size=2.5),
    "bias must be None or a": lambda h, w, y: dict(bias=torch.zeros(V - 1)),
}


@pytest.mark.parametrize("message", sorted(BAD))
def test_bad_input_names_the_parameter(message):
    (hidden, weight, _), targets, _ = _inputs(torch.float32)
    kw = dict(hidden=hidden, weight=weight, targets=targets, chunk_size=8)
    kw.update(BAD[message](hidden.detach(), weight.detach(), targets))
    with pytest.raises((ValueError, TypeError), match=message.replace("[", r"\[")):
        chunked_logprobs_and_entropy(**kw)
