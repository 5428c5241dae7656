"""Target 2: per-token log-probs (+ entropy) from hidden states, chunked vs naive.

For each (hidden, vocab) shape: forward + backward of ``sum(logp) + sum(entropy)`` w.r.t. the hidden
states and the LM head, measured for the naive path (full float32 logits), the custom autograd
Function (``chunked``) and ``torch.utils.checkpoint`` per chunk (``checkpoint``).

* memory: peak bytes above what the inputs already hold, each path in a fresh child process (CPU:
  peak RSS; GPU: ``torch.cuda.max_memory_allocated``). It includes the parameter gradients
  (``weight.grad`` is V x H, needed by every path), reported separately as ``grad_bytes``.
* time: median of interleaved runs in one process; the ratio is the median over rounds of
  chunked / naive within the same round.
* agreement: max |chunked - naive| over log-probs, entropy and both gradients (float32 inputs).
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch

from bench.common import (
    mib,
    paired_ratios,
    peak_rss_bytes,
    reset_peak_rss,
    run_child,
    sample_side_by_side,
    sync,
)
from dgpo_ref.logprobs import (
    checkpointed_logprobs_and_entropy,
    chunked_logprobs_and_entropy,
    naive_logprobs_and_entropy,
)

IMPLS = {
    "naive": lambda h, w, y, cs: naive_logprobs_and_entropy(h, w, y),
    "chunked": lambda h, w, y, cs: chunked_logprobs_and_entropy(h, w, y, chunk_size=cs),
    "checkpoint": lambda h, w, y, cs: checkpointed_logprobs_and_entropy(h, w, y, chunk_size=cs),
}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def make_inputs(tokens: int, hidden: int, vocab: int, dtype: torch.dtype, device: str, seed: int = 0):
    g = torch.Generator(device=device).manual_seed(seed)
    h = torch.randn(tokens, hidden, generator=g, device=device, dtype=dtype).requires_grad_()
    w = (torch.randn(vocab, hidden, generator=g, device=device, dtype=dtype) * hidden ** -0.5).requires_grad_()
    y = torch.randint(0, vocab, (tokens,), generator=g, device=device)
    return h, w, y


def step(impl: str, h, w, y, chunk_size: int):
    """One forward + backward; returns (logprobs, entropy, d_hidden, d_weight), gradients cleared."""
    lp, ent = IMPLS[impl](h, w, y, chunk_size)
    (lp.sum() + ent.sum()).backward()
    out = (lp.detach(), ent.detach(), h.grad, w.grad)
    h.grad = w.grad = None
    return out


def measure_peak(args: dict) -> dict:
    """In this (fresh) process: peak extra bytes of one forward + backward of ``args['impl']``."""
    torch.manual_seed(0)
    dev, dtype = args["device"], DTYPES[args["dtype"]]
    h, w, y = make_inputs(args["tokens"], args["hidden"], args["vocab"], dtype, dev)
    small = make_inputs(8, args["hidden"], 16, dtype, dev)
    step(args["impl"], *small, 4)  # load kernels / thread pools outside the measurement
    sync(dev)
    if dev.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = reset_peak_rss()
    lp, ent = IMPLS[args["impl"]](h, w, y, args["chunk_size"])
    (lp.sum() + ent.sum()).backward()
    sync(dev)
    peak = torch.cuda.max_memory_allocated() if dev.startswith("cuda") else peak_rss_bytes()
    grad_bytes = h.grad.numel() * h.grad.element_size() + w.grad.numel() * w.grad.element_size()
    return {"peak_extra_bytes": peak - base, "grad_bytes": grad_bytes}


def agreement(tokens: int, hidden: int, vocab: int, device: str, chunk_size: int) -> dict:
    """Max abs difference chunked vs naive (and relative to the largest entry), float32 inputs."""
    h, w, y = make_inputs(tokens, hidden, vocab, torch.float32, device)
    return _diffs(step("chunked", h, w, y, chunk_size), step("naive", h, w, y, chunk_size))


def peak_of(impl: str, shape: dict, device: str) -> dict:
    args = dict(shape, impl=impl, device=device)
    if device.startswith("cuda"):  # allocator stats are per process and resettable: no child needed
        torch.cuda.empty_cache()
        return measure_peak(args)
    return run_child("bench.bench_logprobs", args)


def _times(impls, inputs, chunk_size: int, repeats: int, device: str, warmup: int) -> tuple[dict, dict]:
    """Seconds of every interleaved call per implementation, and the last outputs of each."""
    h, w, y = inputs
    last: dict = {}

    def timed(impl):
        def fn():
            last[impl] = step(impl, h, w, y, chunk_size)
        return fn

    samples = sample_side_by_side({impl: timed(impl) for impl in impls}, repeats=repeats, warmup=warmup,
                                  device=device)
    return samples, last


def _diffs(got, ref) -> dict:
    names = ["logprobs", "entropy", "d_hidden", "d_weight"]
    out = {n: float((a - b).abs().max()) for n, a, b in zip(names, got, ref)}
    out.update({f"{n}_rel": float((a - b).abs().max() / b.abs().max()) for n, a, b in zip(names, got, ref)})
    return out


def run_shape(tokens: int, hidden: int, vocab: int, dtype: str, device: str, chunk_size: int,
              repeats: int, impls=("naive", "chunked", "checkpoint"), warmup: int = 1) -> dict:
    """Memory (fresh child each), time (interleaved) and, for float32, agreement with naive."""
    shape = dict(tokens=tokens, hidden=hidden, vocab=vocab, dtype=dtype, chunk_size=chunk_size)
    mem = {impl: peak_of(impl, shape, device) for impl in impls}
    samples, last = _times(impls, make_inputs(tokens, hidden, vocab, DTYPES[dtype], device), chunk_size,
                           repeats, device, warmup)
    times = {k: statistics.median(v) for k, v in samples.items()}
    ratios = paired_ratios(samples, "naive")
    row = dict(shape, device=device, seconds={k: round(v, 4) for k, v in times.items()},
               peak_extra_mib={k: mib(v["peak_extra_bytes"]) for k, v in mem.items()},
               grad_mib=mib(mem["naive"]["grad_bytes"]))
    for impl in impls:
        if impl != "naive":
            row[f"{impl}_time_ratio"] = round(ratios[impl], 3)
            row[f"{impl}_mem_ratio"] = round(mem[impl]["peak_extra_bytes"]
                                             / max(mem["naive"]["peak_extra_bytes"], 1), 3)
    if dtype == "float32":
        row["max_abs_diff"] = _diffs(last["chunked"], last["naive"])
    return row


SHAPES = {  # (tokens, hidden, vocab, implementations, timed rounds): SmolLM2-135M's and Qwen2.5-1.5B's heads
    "full": [(4096, 576, 49152, ("naive", "chunked", "checkpoint"), 6), (4096, 1536, 151936, ("naive", "chunked"), 2)],
    "quick": [(1024, 64, 8192, ("naive", "chunked", "checkpoint"), 3), (1024, 128, 16384, ("naive", "chunked"), 3)],
}
CHUNK = {"full": 1024, "quick": 256}


def run(mode: str = "full", device: str = "cpu", dtypes=("float32",), progress=None) -> list[dict]:
    """The CPU benchmark: float32 (the agreement target is float32); the big shape without warm-up."""
    rows = []
    for tokens, hidden, vocab, impls, repeats in SHAPES[mode]:
        for dtype in dtypes:
            rows.append(run_shape(tokens, hidden, vocab, dtype, device, CHUNK[mode], repeats, impls,
                                  warmup=0 if vocab > 100_000 else 1))
            if progress is not None:
                progress(rows[-1])
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--mode", choices=sorted(SHAPES), default="quick")
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(measure_peak(json.loads(args.child))))
        return 0
    for row in run(args.mode, args.device):
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
