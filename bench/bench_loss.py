"""Target 1: policy loss forward + backward, (64, 4096), float32 and bfloat16, mixed regions.

Every candidate runs interleaved in one process on the same inputs (about a fifth of the tokens in
each region, ragged response lengths); the report gives each median time and, per candidate, the
median over rounds of its time divided by ``grpo``'s in the same round
(hard clip) with the input value checks on. ``<method>/nocheck`` is the same call with
``check_inputs=False``: the difference is the cost of reading the values (one device sync).
``dgpo/fused`` is :mod:`dgpo_ref.fused` where it exists.
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch

from bench.common import paired_ratios, sample_side_by_side
from dgpo_ref import policy_loss

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
METHODS = ("grpo", "dgpo", "cispo", "gppo")


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
    """Context only, not a target: verl-style vanilla PPO clip in plain autograd, no metrics, no checks."""
    log_r = (log_prob.float() - old_log_prob.float()).clamp(-20.0, 20.0)
    ratio = torch.exp(log_r)
    adv = advantages.float()[:, None]
    per_token = torch.maximum(-adv * ratio, -adv * ratio.clamp(1 - eps, 1 + eps))
    mask = response_mask.float()
    return (per_token * mask).sum() / mask.sum().clamp(min=1)


def candidates(inputs: dict) -> dict:
    """name -> a function running forward + backward once."""
    def fwd_bwd(method: str, check: bool = True, fn=None):
        def run():
            loss, _ = (fn or policy_loss)(method, **inputs, check_inputs=check)
            loss.backward()
            inputs["log_prob"].grad = None
        return run

    out = {m: fwd_bwd(m) for m in METHODS}
    out.update({f"{m}/nocheck": fwd_bwd(m, check=False) for m in ("grpo", "dgpo")})
    def plain():
        plain_clip_loss(**inputs).backward()
        inputs["log_prob"].grad = None

    out["plain-clip (context)"] = plain
    fused = _fused()
    if fused is not None:
        out["dgpo/fused"] = fwd_bwd("dgpo", fn=fused)
        out["dgpo/fused-nometrics"] = fwd_bwd("dgpo", fn=lambda *a, **k: fused(*a, metrics=False, **k))
    return out


def _fused():
    try:
        from dgpo_ref.fused import fused_policy_loss
    except ImportError:
        return None
    return fused_policy_loss


def region_fractions(inputs: dict) -> dict:
    from dgpo_ref import REGIONS, classify
    mask = inputs["response_mask"]
    log_r = (inputs["log_prob"].detach().float() - inputs["old_log_prob"].float())
    adv = inputs["advantages"].float()[:, None].expand_as(log_r)
    codes = classify(torch.exp(log_r), adv, 0.2, 0.2)[mask]
    return {name: round(float((codes == i).float().mean()), 3) for i, name in enumerate(REGIONS)}


def run(batch: int = 64, length: int = 4096, device: str = "cpu", dtypes=("float32", "bfloat16"),
        repeats: int = 30, progress=None) -> list[dict]:
    rows = []
    for dtype in dtypes:
        inputs = make_inputs(batch, length, DTYPES[dtype], device)
        samples = sample_side_by_side(candidates(inputs), repeats=repeats, warmup=3, device=device)
        rows.append({
            "shape": [batch, length], "dtype": dtype, "device": device, "repeats": repeats,
            "regions": region_fractions(inputs),
            "ms": {k: round(statistics.median(v) * 1e3, 3) for k, v in samples.items()},
            "ratio_to_grpo": {k: round(v, 3) for k, v in paired_ratios(samples, "grpo").items()},
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
