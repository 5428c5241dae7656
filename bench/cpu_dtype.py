"""bfloat16 against float32 on this CPU: what ``dtype=auto`` decides (``trainer.config.resolve_dtype``).

Side by side in one process, alternating, on the same inputs:

* a matmul of SmolLM2-135M's MLP shape (1024 x 576 @ 576 x 1536), float32 against bfloat16;
* one forward + backward of SmolLM2-135M-Instruct on 2 sequences of 32 tokens, float32 weights, without
  and under ``torch.autocast("cpu", torch.bfloat16)`` (the trainer's mixed precision).

Ratio: the median over rounds of the bfloat16 time over the float32 time in the same round. Also
records what ``auto`` resolves to here and the CPU's instruction sets as torch sees them.

    python -m bench.cpu_dtype [--rounds 3] [--out docs/results/cpu_dtype_<cpu>.json]   # quiet machine

Seconds on a CPU with native bfloat16 (AVX512-BF16/AMX); a few minutes on an AVX2-only one, where the
bfloat16 forward + backward is the slow part.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from pathlib import Path

from bench.common import machine
from bench.learning_common import RESULTS


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def measure(rounds: int, progress=print) -> dict:
    import torch

    from trainer.config import cpu_has_bf16, resolve_dtype
    from trainer.models import load_policy, resolve_model

    torch.manual_seed(0)
    a32, b32 = torch.randn(1024, 576), torch.randn(576, 1536)
    a16, b16 = a32.bfloat16(), b32.bfloat16()
    flops = 2 * 1024 * 576 * 1536
    model, _ = load_policy(resolve_model("smollm2-135m-instruct"), "float32", "cpu")
    ids = torch.randint(0, model.config.vocab_size, (2, 32))

    def step(autocast: bool):
        with torch.autocast("cpu", torch.bfloat16, enabled=autocast):
            loss = model(input_ids=ids).logits.float().logsumexp(-1).mean()
        loss.backward()
        model.zero_grad(set_to_none=True)

    for fn in (lambda: a32 @ b32, lambda: a16 @ b16, lambda: step(False)):  # warm-up (bf16 step: in round 1)
        fn()
    rows = []
    for r in range(rounds):
        row = {"matmul_f32_s": statistics.median(_time(lambda: a32 @ b32) for _ in range(5)),
               "matmul_bf16_s": statistics.median(_time(lambda: a16 @ b16) for _ in range(5)),
               "fwd_bwd_f32_s": _time(lambda: step(False)), "fwd_bwd_bf16_autocast_s": _time(lambda: step(True))}
        rows.append({k: round(v, 5) for k, v in row.items()})
        progress(f"[cpu_dtype] round {r + 1}/{rounds}: {rows[-1]}")
    med = lambda num, den: round(statistics.median(x[num] / x[den] for x in rows), 3)  # noqa: E731
    return {
        "machine": machine(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_has_bf16": cpu_has_bf16(),
        "auto_resolves_to": resolve_dtype("auto", "cpu"),
        "rounds": rows,
        "matmul_gflops": {"float32": round(flops / statistics.median(x["matmul_f32_s"] for x in rows) / 1e9, 1),
                          "bfloat16": round(flops / statistics.median(x["matmul_bf16_s"] for x in rows) / 1e9, 1)},
        "bf16_over_f32": {"matmul": med("matmul_bf16_s", "matmul_f32_s"),
                          "fwd_bwd": med("fwd_bwd_bf16_autocast_s", "fwd_bwd_f32_s")},
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=None, help="default: docs/results/cpu_dtype_<cpu capability>.json")
    args = ap.parse_args(argv)
    if args.rounds < 1:
        raise SystemExit("--rounds must be a positive integer")
    result = measure(args.rounds)
    name = re.sub(r"[^a-z0-9]+", "_", result["cpu_capability"].lower())
    out = Path(args.out) if args.out else RESULTS / f"cpu_dtype_{name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("cpu_capability", "auto_resolves_to", "matmul_gflops", "bf16_over_f32")}))
    print(f"[cpu_dtype] wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
