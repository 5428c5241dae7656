"""Target 3: rollout tokens per second, trainer.rollout's ``hf`` and ``vllm`` backends side by side.

Both engines are built (each in a fresh child process) from the same checkpoint (default: the real
SmolLM2-135M-Instruct the trainer uses) and asked for the same prompts (the trainer's default
arithmetic task through the chat template and the default config's system prompt), ``n``
completions each, the same temperature, top-p and ``max_new_tokens``. After one warm-up call each,
one timed call; children alternate hf, vllm, hf, ... Tokens per second = generated tokens (EOS
included) / wall time; the two engines sample different tokens, so completion lengths differ and
are reported too.

:func:`settings` gives the two rows ``dgpo bench`` measures: ``trainer`` (exactly the default
config's sampling: 8 prompts × 8, temperature 0.85, 16 new tokens; this row decides the default
backend on a CPU) and ``long`` (64 new tokens at temperature 1, where per-token decode speed
dominates over per-call overhead).
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def _prompts(tok, count: int) -> list[list[int]]:
    from trainer.config import build_config
    from trainer.loop import make_encoder
    from trainer.tasks import build_task

    cfg = build_config("default")
    task = build_task(cfg)
    encode = make_encoder(tok, cfg.chat_template, cfg.system_prompt)
    return [encode(task.train_problem(i).prompt) for i in range(count)]


def build_engines(model: str, dtype: str, backends, max_len: int) -> tuple[dict, object]:
    from trainer.models import load_policy, resolve_model
    from trainer.rollout import HFRollout, VLLMRollout

    path = resolve_model(model)
    policy, tok = load_policy(path, dtype)
    builders = {
        "hf": lambda: HFRollout(policy, tok),
        "vllm": lambda: VLLMRollout(path, dtype=dtype, seed=0, max_model_len=max_len,
                                    gpu_memory_utilization=0.3, sleep=False),
    }
    return {b: builders[b]() for b in backends}, tok


def settings() -> dict[str, dict]:
    """The measured settings: ``trainer`` (the default config's own) and ``long``."""
    from trainer.config import build_config

    cfg = build_config("default")
    trainer = dict(prompts=cfg.prompts_per_step, n=cfg.group_size, max_new_tokens=cfg.max_new_tokens,
                   temperature=cfg.temperature, top_p=cfg.top_p)
    return {"trainer": trainer, "long": dict(trainer, max_new_tokens=64, temperature=1.0)}


def measure(backend: str, model: str, prompts: int, n: int, max_new_tokens: int, dtype: str, seed: int,
            temperature: float = 1.0, top_p: float = 1.0) -> dict:
    """In this (fresh) process: build one engine, warm it up, time one generate call."""
    torch.manual_seed(0)
    t0 = time.perf_counter()
    engines, tok = build_engines(model, dtype, [backend], max_len=512)
    setup_s = time.perf_counter() - t0
    engine, batch = engines[backend], _prompts(tok, prompts)
    kw = dict(temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens)
    engine.generate(batch[:2], 2, seed=123, **kw)  # warm-up
    t = time.perf_counter()
    outs = engine.generate(batch, n, seed=seed, **kw)
    return {"seconds": time.perf_counter() - t, "tokens": sum(len(o.token_ids) for o in outs),
            "finished": sum(o.finished for o in outs), "completions": len(outs), "setup_s": setup_s,
            "torch_threads": torch.get_num_threads()}


def run(model: str = "smollm2-135m-instruct", prompts: int = 8, n: int = 8, max_new_tokens: int = 64,
        rounds: int = 2, dtype: str = "float32", backends=("hf", "vllm"), progress=None,
        temperature: float = 1.0, top_p: float = 1.0, label: str = "") -> dict:
    """Each measurement in a fresh child (vLLM's CPU worker pins threads, which would slow an HF
    engine in the same process); children alternate hf, vllm, hf, vllm so load drifts hit both."""
    from bench.common import run_child

    samples = {b: [] for b in backends}
    for r in range(rounds):
        for b in backends:
            samples[b].append(run_child("bench.bench_rollout", dict(
                backend=b, model=model, prompts=prompts, n=n, max_new_tokens=max_new_tokens, dtype=dtype, seed=r,
                temperature=temperature, top_p=top_p)))
            if progress is not None:
                progress({b: samples[b][-1]})
    total = {b: {k: sum(s[k] for s in v) for k in ("seconds", "tokens", "finished", "completions")}
             for b, v in samples.items()}
    rate = {b: round(t["tokens"] / t["seconds"], 1) for b, t in total.items()}
    row = {"setting": label, "model": model, "dtype": dtype, "prompts": prompts, "n": n,
           "max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p,
           "rounds": rounds, "tokens_per_s": rate, "seconds": {b: round(t["seconds"], 2) for b, t in total.items()},
           "mean_completion_tokens": {b: round(t["tokens"] / t["completions"], 1) for b, t in total.items()},
           "finished_frac": {b: round(t["finished"] / t["completions"], 3) for b, t in total.items()},
           "setup_s": {b: round(sum(s["setup_s"] for s in v) / len(v), 1) for b, v in samples.items()},
           "torch_threads": {b: v[0]["torch_threads"] for b, v in samples.items()}}
    if "hf" in rate and "vllm" in rate:
        row["vllm_over_hf"] = round(rate["vllm"] / rate["hf"], 3)
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--model", default="smollm2-135m-instruct")
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(measure(**json.loads(args.child))), flush=True)
    else:
        for label, kw in settings().items():
            print(json.dumps(run(model=args.model, label=label, **kw)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
