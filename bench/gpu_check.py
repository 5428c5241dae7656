"""The one prepared GPU run (issue 7): targets 1 and 2 on the GPU, then a few RLVR iterations.

    bash bench/gpu_check.sh                       # on the GPU machine: writes $OUT/gpu.json
    python -m bench.gpu_check --small --out x.json  # the same code path at toy sizes on a CPU

Sections run in order and the JSON is rewritten after each, so a timeout keeps what finished:
1. loss forward + backward (64, 4096) and (8, 32768), float32 and bfloat16 (``bench_loss``);
2. log-probs, bfloat16, vocab 151 936, 16 384 tokens, hidden 1536 and 896, chunk 1024 and 4096,
   peak memory from ``torch.cuda.max_memory_allocated``; float32 agreement at 4096 tokens;
3. a few iterations of a random-init Qwen2-0.5B-shaped model, HF backend (``bench_iteration``).
"""

from __future__ import annotations

import argparse
import json
import time
import traceback

import torch

from bench import bench_iteration, bench_logprobs, bench_loss
from bench.common import machine

SIZES = {
    "gpu": dict(loss=((64, 4096), (8, 32768)), loss_repeats=50,
                logprob_shapes=[(16384, 1536, 151936), (16384, 896, 151936)], chunks=(1024, 2048, 4096),
                agree=(4096, 1536, 151936), lp_repeats=5,
                iteration=dict(shape="qwen2-0.5b", prompts=8, group=8, prompt_len=128, new_tokens=256,
                               minibatches=4, iterations=3, dtype="bfloat16", device="cuda")),
    "small": dict(loss=((8, 256),), loss_repeats=3,
                  logprob_shapes=[(512, 32, 4096)], chunks=(128, 256), agree=(256, 32, 4096), lp_repeats=2,
                  iteration=dict(shape="toy", prompts=2, group=2, prompt_len=8, new_tokens=8,
                                 minibatches=2, iterations=1, dtype="float32", device="cpu")),
}


def loss_section(size: dict, device: str) -> list:
    return bench_loss.run(size["loss"], device=device, repeats=size["loss_repeats"])


def logprob_section(size: dict, device: str) -> dict:
    rows = []
    for tokens, hidden, vocab in size["logprob_shapes"]:
        for chunk in size["chunks"]:
            rows.append(bench_logprobs.run_shape(tokens, hidden, vocab, "bfloat16", device, chunk,
                                                 size["lp_repeats"], impls=("naive", "chunked")))
            print(json.dumps(rows[-1]), flush=True)
    tokens, hidden, vocab = size["agree"]
    agree = bench_logprobs.agreement(tokens, hidden, vocab, device, size["chunks"][0])
    return {"rows": rows, "float32_agreement": dict(tokens=tokens, hidden=hidden, vocab=vocab,
                                                    max_abs_diff=agree)}


def iteration_section(size: dict, device: str) -> dict:
    return bench_iteration.run(bench_iteration.IterConfig(**size["iteration"]))


SECTIONS = {"loss": loss_section, "logprobs": logprob_section, "iteration": iteration_section}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--small", action="store_true", help="toy sizes on the CPU (to test this script)")
    p.add_argument("--out", required=True)
    p.add_argument("--only", choices=sorted(SECTIONS), action="append")
    args = p.parse_args(argv)
    device = "cpu" if args.small else "cuda"
    size = SIZES["small" if args.small else "gpu"]
    result = {"machine": machine(), "sections": {}, "errors": {}}
    if device == "cuda":
        result["machine"]["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    for name, section in SECTIONS.items():
        if args.only and name not in args.only:
            continue
        t0 = time.perf_counter()
        try:
            result["sections"][name] = section(size, device)
        except Exception:  # keep the other sections' numbers; report the failure
            result["errors"][name] = traceback.format_exc()[-3000:]
            print(result["errors"][name], flush=True)
        result.setdefault("section_seconds", {})[name] = round(time.perf_counter() - t0, 1)
        print(f"[gpu_check] {name} done in {result['section_seconds'][name]} s", flush=True)
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
