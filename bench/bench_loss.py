"""Target 1: policy loss forward + backward, (64, 4096) and (8, 32768), float32 and bfloat16.

Every candidate runs interleaved in one process on the same inputs (about a fifth of the tokens in
each region, ragged response lengths). The ratio is against what a user runs today instead:
``plain-clip``, PPO/GRPO clipping written in eager torch (verl's vanilla expression, no checks, no
metrics), median over rounds of each candidate's time over plain-clip's in the same round.

- ``<method>``: ``dgpo_ref.policy_loss`` as called by default (value checks and metrics on); at these
  sizes it takes the compiled fast path (:mod:`dgpo_ref.fast`);
- ``<method>/nocheck-nometrics``: the same with ``check_inputs=False, metrics=False`` (inner micro-batches);
- ``<method>/reference``: the eager op-by-op reference (the oracle);
- ``copy (memory floor)``: copying the two log-prob tensors.

``compile_s`` is each compiled candidate's first call (the compile), timed before the rounds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from bench.common import paired_ratios, round_ratios, sample_side_by_side
from dgpo_ref import policy_loss
from dgpo_ref.fast import compiled_only
from dgpo_ref.loss import reference_policy_loss

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
METHODS = ("grpo", "dgpo", "cispo", "gppo")
SHAPES = ((64, 4096), (8, 32768))
BASE = "plain-clip"
TARGET_CANDIDATES = ("dgpo", "dgpo/nocheck-nometrics")
"""Candidates held to the target: their ratio in every round is kept (the report counts the rounds meeting it)."""


def make_inputs(batch: int, length: int, dtype: torch.dtype, device: str, seed: int = 0) -> dict:
    """Old log-probs of sampled tokens, a new policy that moved by up to ±50 % in ratio, ±A."""
    g = torch.Generator(device=device).manual_seed(seed)
    old = -torch.rand(batch, length, generator=g, device=device) * 3.0
    log_r = (torch.rand(batch, length, generator=g, device=device) - 0.5) * 2 * 0.5  # r in [0.61, 1.65]
    adv = torch.randn(batch, generator=g, device=device)
    lengths = torch.randint(length // 4, length + 1, (batch,), generator=g, device=device)
    mask = torch.arange(length, device=device)[None, :] < lengths[:, None]
    return {
        "log_prob": (old + log_r).clamp(max=0.0).to(dtype).requires_grad_(),
        "old_log_prob": old.to(dtype),
        "advantages": adv.to(dtype),
        "response_mask": mask,
    }


def plain_clip_loss(log_prob, old_log_prob, advantages, response_mask, eps=0.2) -> torch.Tensor:
    """The baseline: verl-style vanilla PPO clip in plain eager autograd, no metrics, no checks."""
    log_r = (log_prob.float() - old_log_prob.float()).clamp(-20.0, 20.0)
    ratio = torch.exp(log_r)
    adv = advantages.float()[:, None]
    per_token = torch.maximum(-adv * ratio, -adv * ratio.clamp(1 - eps, 1 + eps))
    mask = response_mask.float()
    return (per_token * mask).sum() / mask.sum().clamp(min=1)


def loss_call(inputs: dict, fn, method: str, **kw):
    """A function running ``fn(method, **inputs, **kw)`` forward + backward once."""
    def once():
        loss, _ = fn(method, **inputs, **kw)
        loss.backward()
        inputs["log_prob"].grad = None
    return once


def plain_call(inputs: dict):
    """A function running :func:`plain_clip_loss` forward + backward once."""
    def once():
        plain_clip_loss(**inputs).backward()
        inputs["log_prob"].grad = None
    return once


def candidates(inputs: dict) -> dict:
    """name -> a function running forward + backward once."""
    def fwd_bwd(method: str, fn=policy_loss, **kw):
        return loss_call(inputs, fn, method, **kw)

    plain = plain_call(inputs)

    def copy():
        inputs["log_prob"].detach().clone()
        inputs["old_log_prob"].clone()

    out = {BASE: plain, "copy (memory floor)": copy}
    out.update({m: fwd_bwd(m, fn=compiled_only) for m in METHODS})
    out.update({f"{m}/nocheck-nometrics": fwd_bwd(m, fn=compiled_only, check_inputs=False, metrics=False)
                for m in ("grpo", "dgpo")})
    out.update({f"{m}/reference": fwd_bwd(m, fn=reference_policy_loss) for m in ("grpo", "dgpo")})
    return out


def compile_seconds(fns: dict) -> dict:
    """The first call of each compiled candidate (its compile, or a cache hit), before any round."""
    out = {}
    for name, fn in fns.items():
        if name in (BASE, "copy (memory floor)") or name.endswith("/reference"):
            continue
        t0 = time.perf_counter()
        fn()
        out[name] = round(time.perf_counter() - t0, 2)
    return out


def region_fractions(inputs: dict) -> dict:
    from dgpo_ref import REGIONS, classify
    mask = inputs["response_mask"]
    log_r = (inputs["log_prob"].detach().float() - inputs["old_log_prob"].float())
    adv = inputs["advantages"].float()[:, None].expand_as(log_r)
    codes = classify(torch.exp(log_r), adv, 0.2, 0.2)[mask]
    return {name: round(float((codes == i).float().mean()), 3) for i, name in enumerate(REGIONS)}


def run(shapes=SHAPES, device: str = "cpu", dtypes=("float32", "bfloat16"),
        repeats: int = 30, progress=None) -> list[dict]:
    rows = []
    for batch, length in shapes:
        for dtype in dtypes:
            inputs = make_inputs(batch, length, DTYPES[dtype], device)
            fns = candidates(inputs)
            compiled = compile_seconds(fns)
            samples = sample_side_by_side(fns, repeats=repeats, warmup=3, device=device)
            rows.append({
                "shape": [batch, length], "dtype": dtype, "device": device, "repeats": repeats,
                "regions": region_fractions(inputs), "compile_s": compiled,
                "ms": {k: round(statistics.median(v) * 1e3, 3) for k, v in samples.items()},
                "ratio_to_plain": {k: round(v, 3) for k, v in paired_ratios(samples, BASE).items()},
                "round_ratios": {k: [round(x, 4) for x in v] for k, v in round_ratios(samples, BASE).items()
                                 if k in TARGET_CANDIDATES},
            })
            if progress is not None:
                progress(rows[-1])
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=30)
    args = p.parse_args(argv)
    for row in run(device=args.device, repeats=args.repeats):
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
