"""The trainer's optimizer step against what transformers and torch do by default, side by side.

Two choices the trainer makes on its own (``trainer.update.choose_attention``, ``trainer.loop.make_optimizer``):

* attention: one default optimizer step (``trainer.update.optimizer_step``: forward with the shared
  prompt prefix, chunked log-probs, the loss, backward, clipping, AdamW) with transformers' default
  ``sdpa`` attention and with ``eager``, alternating in one process on the same batch, at four
  completion lengths: add2's default 16 tokens (16 prompts x 8, micro-batch 32, the default
  trainer) and 128, 256, 512 tokens on ``mathematics:arithmetic`` prompts (random completion
  tokens; fewer prompts per step as they grow, so that a step stays near 20 s);
* AdamW: ``optimizer.step()`` over SmolLM2-135M's parameters, torch's default (``foreach``) against
  ``fused=True``, alternating.

Ratio: the median over rounds of the candidate's time over the default's in the same round.

    python -m bench.update_step [--rounds 3] [--out docs/results/update_step.json]   # quiet machine

About 10 minutes on the 2-core CPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from pathlib import Path

# (name, task, completion tokens, prompts per step, micro-batch size)
SHAPES = (
    ("add2 default", "add2", 16, 16, 32),
    ("128 tokens", "mathematics:arithmetic", 128, 8, 16),
    ("256 tokens", "mathematics:arithmetic", 256, 4, 8),
    ("512 tokens", "mathematics:arithmetic", 512, 2, 8),
)


def _setup(task_name: str, clen: int, prompts: int, micro: int):
    import torch

    from trainer import update as U
    from trainer.config import build_config
    from trainer.loop import make_encoder, make_optimizer
    from trainer.models import load_policy, resolve_model
    from trainer.tasks import build_task

    cfg = build_config(sets=[f"task={task_name}", f"prompts_per_step={prompts}", f"micro_batch_size={micro}",
                             "attention=sdpa"])
    model, tok = load_policy(resolve_model(cfg.model), "float32", "cpu")
    encode = make_encoder(tok, cfg.chat_template, cfg.system_prompt)
    task = build_task(cfg)
    gen = torch.Generator().manual_seed(0)
    ps = [encode(task.train_problem(i).prompt) for i in range(cfg.prompts_per_step)]
    prompts_all = [p for p in ps for _ in range(cfg.group_size)]
    n = len(prompts_all)
    comps = [torch.randint(100, 20000, (clen,), generator=gen).tolist() for _ in range(n)]
    batch = U.Batch.build(prompts_all, comps, [[-1.0] * clen for _ in range(n)], torch.randn(n, generator=gen))
    batch.old_logprobs = batch.sampler_logprobs.clone()
    opt, sched = make_optimizer(model, cfg)
    idx = U.plan_minibatches(n, cfg, 0)[0][0]
    return cfg, model, tok, batch, opt, sched, idx, max(len(p) for p in ps)


def attention_rows(rounds: int) -> list[dict]:
    from trainer import update as U

    rows = []
    for name, task_name, clen, prompts, micro in SHAPES:
        cfg, model, tok, batch, opt, sched, idx, plen = _setup(task_name, clen, prompts, micro)
        pad = tok.pad_token_id or 0
        times = {"sdpa": [], "eager": []}
        for r in range(rounds + 1):  # round 0 warms up, not counted
            for impl in ("sdpa", "eager") if r % 2 == 0 else ("eager", "sdpa"):
                with U.attention(model, impl):
                    t = time.perf_counter()
                    U.optimizer_step(model, opt, sched, batch, idx, cfg, pad)
                    if r:
                        times[impl].append(time.perf_counter() - t)
        row = {"shape": name, "task": task_name, "prompt_tokens_max": plen, "completion_tokens": clen,
               "sequences_per_step": len(idx), "micro_batch_size": micro,
               "auto_picks": U.choose_attention(model, dataclasses.replace(cfg, attention="auto"), batch),
               "sdpa_s": [round(x, 3) for x in times["sdpa"]], "eager_s": [round(x, 3) for x in times["eager"]],
               "ratio_eager_to_sdpa": round(statistics.median(e / s for e, s in zip(times["eager"], times["sdpa"])), 3)}
        print(json.dumps(row), flush=True)
        rows.append(row)
        del model, opt
    return rows


def adamw_row(rounds: int) -> dict:
    import torch

    from trainer.config import build_config
    from trainer.models import load_policy, resolve_model

    cfg = build_config()
    model, _ = load_policy(resolve_model(cfg.model), "float32", "cpu")
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 1e-3
    opts = {"foreach (default)": torch.optim.AdamW(model.parameters(), lr=cfg.lr),
            "fused": torch.optim.AdamW(model.parameters(), lr=cfg.lr, fused=True)}
    times = {k: [] for k in opts}
    for r in range(2 * rounds + 1):
        for k in opts if r % 2 == 0 else reversed(list(opts)):
            t = time.perf_counter()
            opts[k].step()
            if r:
                times[k].append(time.perf_counter() - t)
    return {"parameters": sum(p.numel() for p in model.parameters()),
            **{f"{k}_s": [round(x, 4) for x in v] for k, v in times.items()},
            "ratio_fused_to_foreach": round(statistics.median(f / d for f, d in zip(times["fused"],
                                                                                     times["foreach (default)"])), 3)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.update_step", description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default="docs/results/update_step.json")
    args = ap.parse_args(argv)
    import os

    import torch

    t0 = time.time()
    out = {"started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t0)), "torch": torch.__version__,
           "threads": torch.get_num_threads(), "load_average_1m_start": os.getloadavg()[0],
           "attention": attention_rows(args.rounds), "adamw": adamw_row(args.rounds)}
    out["load_average_1m_end"] = os.getloadavg()[0]
    out["minutes"] = round((time.time() - t0) / 60, 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out["adamw"]))
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
