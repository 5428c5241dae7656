"""One RLVR iteration broken down by phase, built from dgpo_ref's pieces and a random-init model.

Phases, as shared/DESIGN.md's loop: rollout (HF ``generate``, G completions per prompt), old
log-probs (one no-grad pass through the chunked log-prob path), updates (mini-batches: forward,
chunked log-probs, DGPO loss, backward, AdamW step). There is no weight push: the HF backend
generates with the training model itself. Rewards are random signs (the model is random too);
the point is where the time goes, not learning.

Used by the GPU check (a Qwen2-0.5B-shaped model) and, at toy size, by the CPU benchmark when the
trainer's own loop is not available.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from dgpo_ref import policy_loss
from dgpo_ref.logprobs import chunked_logprobs_and_entropy

SHAPES = {  # transformers Qwen2Config keyword arguments
    "qwen2-0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                       num_attention_heads=14, num_key_value_heads=2, vocab_size=151936,
                       tie_word_embeddings=True, max_position_embeddings=4096),
    "toy": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, vocab_size=1024, tie_word_embeddings=True,
                max_position_embeddings=512),
}


@dataclass
class IterConfig:
    shape: str = "toy"
    prompts: int = 4
    group: int = 4
    prompt_len: int = 32
    new_tokens: int = 32
    minibatches: int = 2
    iterations: int = 2
    dtype: str = "float32"
    device: str = "cpu"


def build_model(cfg: IterConfig):
    from transformers import Qwen2Config, Qwen2ForCausalLM
    torch.manual_seed(0)
    config = Qwen2Config(**SHAPES[cfg.shape])
    with torch.device(cfg.device):
        model = Qwen2ForCausalLM(config).to(getattr(torch, cfg.dtype))
    return model


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _logprobs(model, seqs: torch.Tensor, prompt_len: int):
    """Per-token log-probs (and entropy) of the completion tokens, (B, new_tokens) float32."""
    hidden = model.model(input_ids=seqs).last_hidden_state[:, prompt_len - 1:-1]
    b, t, h = hidden.shape
    lp, ent = chunked_logprobs_and_entropy(hidden.reshape(b * t, h), model.lm_head.weight,
                                           seqs[:, prompt_len:].reshape(-1))
    return lp.view(b, t), ent.view(b, t)


def iteration(model, opt, cfg: IterConfig, gen: torch.Generator) -> dict:
    dev, n = cfg.device, cfg.prompts * cfg.group
    times = {}
    prompts = torch.randint(0, model.config.vocab_size, (cfg.prompts, cfg.prompt_len), generator=gen,
                            device="cpu").to(dev).repeat_interleave(cfg.group, 0)
    _sync(dev)
    t0 = time.perf_counter()
    with torch.no_grad():
        seqs = model.generate(prompts, attention_mask=torch.ones_like(prompts), do_sample=True,
                              max_new_tokens=cfg.new_tokens, min_new_tokens=cfg.new_tokens,
                              temperature=1.0, top_k=0, top_p=1.0, pad_token_id=0)
    _sync(dev)
    times["rollout"] = time.perf_counter() - t0
    rewards = torch.randint(0, 2, (cfg.prompts, cfg.group), generator=gen).float()
    adv = ((rewards - rewards.mean(1, keepdim=True)) / (rewards.std(1, keepdim=True) + 1e-6)).view(-1).to(dev)
    mask = torch.ones(n, cfg.new_tokens, dtype=torch.bool, device=dev)
    t0 = time.perf_counter()
    with torch.no_grad():
        old_lp, _ = _logprobs(model, seqs, cfg.prompt_len)
    _sync(dev)
    times["old_logprobs"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for idx in torch.arange(n).chunk(cfg.minibatches):
        new_lp, _ = _logprobs(model, seqs[idx], cfg.prompt_len)
        loss, _ = policy_loss("dgpo", log_prob=new_lp, old_log_prob=old_lp[idx], advantages=adv[idx],
                              response_mask=mask[idx], check_inputs=False, metrics=False)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    _sync(dev)
    times["updates"] = time.perf_counter() - t0
    times["weight_push"] = 0.0
    total = sum(times.values())
    return {"seconds": {k: round(v, 3) for k, v in times.items()}, "total_s": round(total, 3),
            "generated_tokens": n * cfg.new_tokens,
            "rollout_tokens_per_s": round(n * cfg.new_tokens / times["rollout"], 1),
            "tokens_per_s_overall": round(n * cfg.new_tokens / total, 1)}


def run(cfg: IterConfig) -> dict:
    model = build_model(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
    gen = torch.Generator().manual_seed(0)
    iterations = [iteration(model, opt, cfg, gen) for _ in range(cfg.iterations)]
    params = sum(p.numel() for p in model.parameters())
    return {"config": vars(cfg), "parameters": params, "iterations": iterations,
            "note": "bench's own loop from dgpo_ref pieces; first iteration includes warm-up"}
