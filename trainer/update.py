"""One rollout batch -> old log-probs -> mini-batch optimizer steps with a registry loss.

Rollout tensors (``Batch``) stay on the CPU; each micro-batch goes to the model's device. Sequences are packed right-padded (prompt, completion, pad); the training model's log-prob of each
completion token comes from the final hidden state and the LM head through
``dgpo_ref.logprobs.chunked_logprobs_and_entropy`` (never the full float32 logits), at the
sampling temperature. Micro-batches accumulate: every micro-batch's loss uses the mini-batch's
global normalizer, so the summed gradient equals the full mini-batch gradient.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

import dgpo_ref
from dgpo_ref.logprobs import chunked_logprobs_and_entropy
from dgpo_ref.method import REGIONS, classify


@dataclass
class Batch:
    """A rollout batch of B sequences; completion tensors are (B, R), right-padded."""

    prompts: list[list[int]]
    completions: list[list[int]]
    sampler_logprobs: torch.Tensor
    response_mask: torch.Tensor
    advantages: torch.Tensor
    old_logprobs: torch.Tensor | None = None

    @classmethod
    def build(cls, prompts, completions, sampler_logprobs, advantages) -> Batch:
        width = max(1, max(len(c) for c in completions))
        mask = torch.zeros(len(completions), width)
        lp = torch.zeros(len(completions), width)
        for i, (c, s) in enumerate(zip(completions, sampler_logprobs)):
            mask[i, : len(c)] = 1.0
            lp[i, : len(c)] = torch.tensor(s, dtype=torch.float32)
        return cls(prompts, completions, lp, mask, advantages.float())

    def __len__(self) -> int:
        return len(self.completions)


def _forward_hidden(model, prompts, completions, pad_id: int):
    """Hidden states that predict each completion token, (B, R, H), and the (B, R) completion mask.

    Each distinct prompt runs through the model once (left-padded, batched); its KV cache, still on
    the autograd graph, is indexed out to every completion of that prompt, which then runs on top
    of it. Exact: the same attention and positions as one forward of prompt + completion, with the
    G-fold shared prompt work done once (the gradient through the prompt's keys and values is kept).
    """
    dev = model.device
    index: dict[tuple, int] = {}
    which = torch.tensor([index.setdefault(tuple(p), len(index)) for p in prompts], device=dev)
    uniq = list(index)
    width = max(len(p) for p in uniq)
    p_ids = torch.tensor([[pad_id] * (width - len(p)) + list(p) for p in uniq], device=dev)
    p_mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in uniq], device=dev)
    p_out = model.base_model(input_ids=p_ids, attention_mask=p_mask, position_ids=(p_mask.cumsum(1) - 1).clamp(min=0),
                             use_cache=True)
    cache = p_out.past_key_values
    cache.batch_select_indices(which)
    r = max(1, max(len(c) for c in completions))
    c_ids = torch.tensor([c + [pad_id] * (r - len(c)) for c in completions], device=dev)
    c_mask = torch.tensor([[1] * len(c) + [0] * (r - len(c)) for c in completions], device=dev)
    c_pos = torch.tensor([len(p) for p in prompts], device=dev)[:, None] + torch.arange(r, device=dev)
    c_out = model.base_model(input_ids=c_ids, attention_mask=torch.cat([p_mask[which], c_mask], 1), position_ids=c_pos,
                             past_key_values=cache, use_cache=True)
    first = p_out.last_hidden_state[which, -1:]  # the prompt's last token predicts completion token 0
    return torch.cat([first, c_out.last_hidden_state[:, :-1]], 1), c_ids, c_mask


EAGER_MAX_LEN = 384
"""``attention=auto``: the longest prompt + completion (tokens) trained with eager attention on a CPU:
between the 256- and 512-token completions of docs/results/update_step.json, where eager stops
being the faster one."""
EAGER_MAX_BYTES = 2 << 30
"""``attention=auto``: the most memory eager attention may keep for the backward of one micro-batch
(sdpa keeps none of it)."""
SAVED_BYTES_PER_SCORE = 6
"""What eager attention keeps per attention score and layer for the backward: transformers'
softmax output in float32 (4 bytes) and its bfloat16 copy that multiplies the values (2)."""


def choose_attention(model, cfg, batch: Batch) -> str:
    """The attention kernel (``eager`` or ``sdpa``) of this batch's training forwards (``cfg.attention``)."""
    if cfg.attention != "auto":
        return cfg.attention
    if model.device.type != "cpu":
        return "sdpa"
    c = getattr(model.config, "get_text_config", lambda: model.config)()
    p, r = max(len(x) for x in batch.prompts), batch.response_mask.shape[1]
    scores = min(cfg.micro_batch_size, len(batch)) * c.num_attention_heads * r * (p + r) * c.num_hidden_layers
    return "eager" if p + r <= EAGER_MAX_LEN and SAVED_BYTES_PER_SCORE * scores <= EAGER_MAX_BYTES else "sdpa"


@contextlib.contextmanager
def attention(model, impl: str):
    """Run the model with attention ``impl`` inside the block, as loaded after it."""
    before = model.config._attn_implementation
    if impl != before:
        model.set_attn_implementation(impl)
    try:
        yield
    finally:
        if impl != before:
            model.set_attn_implementation(before)


def precision(model, cfg):
    """The forward passes' context: bfloat16 autocast over float32 weights when ``cfg.autocast``."""
    return torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=cfg.autocast)


def sequence_logprobs(model, prompts, completions, temperature: float, chunk: int, pad_id: int,
                      entropy: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(B, R) log-probs of each completion token under ``model`` at ``temperature`` (and entropies),
    0 on padding; the LM head runs chunk by chunk on completion positions only."""
    hidden, c_ids, c_mask = _forward_hidden(model, prompts, completions, pad_id)
    live = c_mask.bool()
    head = model.get_output_embeddings()
    h = hidden[live] / temperature  # logits / T == (hidden / T) @ Wᵀ
    bias = None if head.bias is None else head.bias / temperature
    lp, ent = chunked_logprobs_and_entropy(h, head.weight, c_ids[live], chunk_size=chunk,
                                           compute_entropy=entropy, bias=bias)
    out_lp = torch.zeros(c_ids.shape, dtype=lp.dtype, device=lp.device).masked_scatter(live, lp)
    out_ent = None if ent is None else torch.zeros(c_ids.shape, device=lp.device).masked_scatter(live, ent.detach().float())
    return out_lp, out_ent


def plan_minibatches(n: int, cfg, seed: int) -> list[list[list[int]]]:
    """Per epoch, the ``mini_batches`` index lists of one rollout batch of ``n`` sequences.

    A random mini-batch, its sequences in prompt order: a micro-batch then holds few distinct prompts,
    and each one's prefix runs once (16 x 8 default: 4.4 s instead of 5.4 s per 32 sequences)."""
    gen = torch.Generator().manual_seed(seed)
    per_mb = n // cfg.mini_batches
    plan = []
    for _ in range(cfg.epochs):
        order = torch.randperm(n, generator=gen).tolist()
        plan.append([sorted(order[mb * per_mb : (mb + 1) * per_mb]) for mb in range(cfg.mini_batches)])
    return plan


def micro_batches(idx: list[int], size: int) -> list[list[int]]:
    """The micro-batches of a mini-batch: the update and ``old_logprobs`` share them exactly."""
    return [idx[s : s + size] for s in range(0, len(idx), size)]


@torch.no_grad()
def old_logprobs(model, batch: Batch, cfg, pad_id: int, minibatches: list[list[int]]) -> None:
    """π_old from the training model before any update of this batch, into ``batch.old_logprobs``.

    Only for ``minibatches`` (the first epoch's mini-batches after the first): the first one takes its
    π_old from its own update forward (:func:`optimizer_step` with ``on_policy``), so its ratio is
    exactly 1 in every precision. The others are computed on exactly the micro-batches the update
    will use, so padding width and batch shape (on which bfloat16 results depend) match too."""
    if batch.old_logprobs is None:
        batch.old_logprobs = torch.zeros_like(batch.sampler_logprobs)
    for idx in minibatches:
        for mi in micro_batches(idx, cfg.micro_batch_size):
            with precision(model, cfg):
                lp, _ = sequence_logprobs(model, [batch.prompts[i] for i in mi], [batch.completions[i] for i in mi],
                                          cfg.temperature, cfg.logprob_chunk, pad_id, entropy=False)
            batch.old_logprobs[mi, : lp.shape[1]] = lp.float().cpu()


def _token_advantages(batch: Batch, idx: list[int], cfg) -> torch.Tensor:
    """Per-token advantages; with ``tis_cap``, scaled by min(π_old/π_sampler, cap) (truncated IS)."""
    adv = batch.advantages[idx, None] * batch.response_mask[idx]
    if cfg.tis_cap:
        w = torch.exp(batch.old_logprobs[idx] - batch.sampler_logprobs[idx]).clamp(max=cfg.tis_cap)
        adv = adv * torch.where(batch.response_mask[idx] > 0, w, torch.zeros_like(w))
    return adv


def _normalizer(mask: torch.Tensor, mode: str) -> float:
    return float(mask.sum()) if mode == "token-mean" else float(mask.shape[0])


class MetricSum:
    """Combines micro-batch loss metrics into mini-batch values (sums, token-weighted means, max/min)."""

    def __init__(self):
        self.acc: dict[str, float] = {}
        self.tokens = 0.0

    def add(self, m: dict[str, float]) -> None:
        n = m["tokens"]
        self.tokens += n
        for k, v in m.items():
            if k in ("loss", "tokens", "nonfinite_tokens"):
                self.acc[k] = self.acc.get(k, 0.0) + v
            elif k.endswith("max") or k.startswith("v_max"):
                self.acc[k] = max(self.acc.get(k, -float("inf")), v)
            elif k.endswith("min"):
                self.acc[k] = min(self.acc.get(k, float("inf")), v)
            elif k.startswith("v_mean/"):
                w = n * m[f"region/{k.split('/')[1]}"]
                self.acc[k] = self.acc.get(k, 0.0) + v * w
                self.acc[f"_w/{k}"] = self.acc.get(f"_w/{k}", 0.0) + w
            else:
                self.acc[k] = self.acc.get(k, 0.0) + v * n

    def result(self) -> dict[str, float]:
        out = {}
        for k, v in self.acc.items():
            if k.startswith("_w/"):
                continue
            if k.startswith("v_mean/"):
                out[k] = v / max(self.acc[f"_w/{k}"], 1e-30)
            elif k in ("loss", "tokens", "nonfinite_tokens") or k.endswith(("max", "min")) or k.startswith("v_max"):
                out[k] = v
            else:
                out[k] = v / max(self.tokens, 1.0)
        return out


COMPARED = ("dgpo", "grpo")
"""The pair of losses whose gradients every optimizer step compares (``grad_cos/dgpo_grpo``)."""


class GradStats:
    """Gradient diagnostics in log-prob space, summed over a mini-batch's micro-batches.

    g = ∂loss/∂log π per token, the last node the losses share: its squared norm per region gives the
    share of the gradient that LN and HP tokens carry (``grad_share/<R>``, summing to 1 over the
    regions), and the cosine between the two losses of ``COMPARED`` on the same log-probs
    (``grad_cos/dgpo_grpo``) says how differently they would move the same batch. Both are cheap:
    a second loss on already computed log-probs, no second backward through the model."""

    def __init__(self):
        self.sq = torch.zeros(len(REGIONS), dtype=torch.float64)
        self.dot = self.n0 = self.n1 = 0.0

    def add(self, g: torch.Tensor, region: torch.Tensor, g_pair: tuple[torch.Tensor, torch.Tensor]) -> None:
        g2 = g.double().square()
        for code in range(len(REGIONS)):
            self.sq[code] += float((g2 * (region == code)).sum())
        a, b = (x.double() for x in g_pair)
        self.dot += float((a * b).sum())
        self.n0 += float(a.square().sum())
        self.n1 += float(b.square().sum())

    def result(self) -> dict[str, float]:
        total = float(self.sq.sum())
        out = {f"grad_share/{r}": float(self.sq[c]) / total if total > 0 else 0.0 for c, r in enumerate(REGIONS)}
        norms = (self.n0 * self.n1) ** 0.5
        out[f"grad_cos/{COMPARED[0]}_{COMPARED[1]}"] = self.dot / norms if norms > 0 else 1.0
        return out


def _logprob_grad(name: str, lp: torch.Tensor, hparams: dict, **inputs) -> tuple[torch.Tensor, dict]:
    """∂loss/∂log π of loss ``name`` at the detached log-probs ``lp``, and the loss's metrics."""
    leaf = lp.detach().requires_grad_()
    loss, metrics = dgpo_ref.policy_loss(name, log_prob=leaf, **inputs, **hparams)
    (g,) = torch.autograd.grad(loss, leaf)
    return g, metrics


def optimizer_step(model, optimizer, scheduler, batch: Batch, idx: list[int], cfg, pad_id: int,
                   on_policy: bool = False) -> dict[str, float]:
    """One optimizer step on the mini-batch ``idx``: accumulate micro-batches, clip, step.

    ``on_policy``: this is the first update of the batch, so π_old is the model as it is now: taken
    from this very forward (detached, stored in ``batch.old_logprobs``), the ratio is exactly 1."""
    mask = batch.response_mask[idx]
    norm = _normalizer(mask, cfg.loss_agg_mode)
    sums, grads, ent_sum = MetricSum(), GradStats(), 0.0
    hp = dgpo_ref.get_spec(cfg.loss).resolve(dict(cfg.loss_hparams))
    model.train()
    for mi in micro_batches(idx, cfg.micro_batch_size):
        with precision(model, cfg):
            lp, ent = sequence_logprobs(model, [batch.prompts[i] for i in mi], [batch.completions[i] for i in mi],
                                        cfg.temperature, cfg.logprob_chunk, pad_id)
        w, dev = lp.shape[1], lp.device
        if on_policy:
            batch.old_logprobs[mi, :w] = lp.detach().float().cpu()
        m_mask = batch.response_mask[mi, :w].to(dev)
        inputs = dict(old_log_prob=batch.old_logprobs[mi, :w].to(dev),
                      advantages=_token_advantages(batch, mi, cfg)[:, :w].to(dev), response_mask=m_mask,
                      loss_agg_mode=cfg.loss_agg_mode, normalizer=norm)
        g, metrics = _logprob_grad(cfg.loss, lp, cfg.loss_hparams, **inputs)
        lp.backward(g)  # the same gradient as loss.backward(), with g kept for the diagnostics
        pair = tuple(g if name == cfg.loss else _logprob_grad(name, lp, {}, **inputs)[0] for name in COMPARED)
        region = classify(torch.exp(lp.detach().float() - inputs["old_log_prob"]), inputs["advantages"],
                          hp["eps_low"], hp["eps_high"])
        grads.add(g * m_mask, torch.where(m_mask > 0, region, -1), pair)
        sums.add(metrics)
        ent_sum += float((ent * m_mask).sum())
    params = [p for p in model.parameters() if p.requires_grad]
    grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm if cfg.max_grad_norm > 0 else float("inf"))
    finite = bool(torch.isfinite(grad_norm))
    lr = optimizer.param_groups[0]["lr"]  # the rate this step applies (the scheduler then moves on)
    if finite:  # a non-finite gradient is reported (skipped_step) and never applied
        optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    out = sums.result()
    out.update(grad_norm=float(grad_norm), skipped_step=float(not finite), entropy=ent_sum / max(float(mask.sum()), 1.0),
               lr=lr, **grads.result())
    return out
