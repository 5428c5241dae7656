"""Target 2: the verl plugin's dgpo against verl's own ``compute_policy_loss_vanilla``, same tensors.

Runs in the verl environment (``.venv-verl``, built by ``scripts/setup_verl.sh``); ``dgpo bench
--only verl`` starts it there as a child process and reads the JSON rows it prints.

Both candidates are called exactly as verl's actor calls a registered policy loss: verl's argument
order, per-token advantages (batch, length), ``loss_agg_mode="token-mean"`` and an actor config
(clip_ratio 0.2, verl's default dual-clip constant 3.0), then ``loss.backward()``. Both return their
metrics as Python floats, as verl logs them. Interleaved rounds in one process; the ratio is the
median over rounds of each candidate's time over vanilla's in the same round.

- ``verl vanilla``: ``verl.trainer.ppo.core_algos.compute_policy_loss_vanilla`` (PPO/GRPO clipping);
- ``dgpo (plugin)``: ``get_policy_loss_fn("dgpo")`` after ``import dgpo_ref.integrations.verl_plugin``,
  as called by default (value checks, metrics; the compiled fast path at these sizes);
- ``dgpo (plugin, eager)``: the same with ``DGPO_COMPILE=never`` (the eager reference), for orientation.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import time

import torch

SHAPES = ((64, 4096), (8, 32768))
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
BASE = "verl vanilla"


def _config():
    from omegaconf import OmegaConf
    return OmegaConf.create({
        "clip_ratio": 0.2, "clip_ratio_low": 0.2, "clip_ratio_high": 0.2, "clip_ratio_c": 3.0,
        "policy_loss": {"loss_mode": "dgpo"}, "global_batch_info": {},
    })


@contextlib.contextmanager
def _compile_mode(value: str | None):
    """DGPO_COMPILE set to ``value`` for the duration (None: left as it is)."""
    saved = os.environ.get("DGPO_COMPILE")
    if value is not None:
        os.environ["DGPO_COMPILE"] = value
    try:
        yield
    finally:
        if value is not None:
            if saved is None:
                del os.environ["DGPO_COMPILE"]
            else:
                os.environ["DGPO_COMPILE"] = saved


def candidates(inputs: dict) -> dict:
    """name -> a function running one forward + backward the way verl's actor does."""
    from verl.trainer.ppo.core_algos import compute_policy_loss_vanilla, get_policy_loss_fn

    import dgpo_ref.integrations.verl_plugin  # noqa: F401  (registers the dgpo_ref losses with verl)

    config = _config()
    dgpo = get_policy_loss_fn("dgpo")
    lp = inputs["log_prob"]

    def call(fn, compile_mode=None):
        def once():
            with _compile_mode(compile_mode):
                loss, metrics = fn(inputs["old_log_prob"], lp, inputs["advantages"], inputs["response_mask"],
                                   "token-mean", config)
            assert all(isinstance(v, float) for v in metrics.values())
            loss.backward()
            lp.grad = None
        return once

    return {BASE: call(compute_policy_loss_vanilla), "dgpo (plugin)": call(dgpo),
            "dgpo (plugin, eager)": call(dgpo, compile_mode="never")}


def make_inputs(batch: int, length: int, dtype: torch.dtype, seed: int = 0) -> dict:
    """bench_loss's inputs with the advantages per token, as verl passes them."""
    from bench.bench_loss import make_inputs as loss_inputs
    inputs = loss_inputs(batch, length, dtype, "cpu", seed)
    inputs["advantages"] = inputs["advantages"][:, None].expand(batch, length).contiguous()
    inputs["response_mask"] = inputs["response_mask"].to(dtype)  # verl's masks are float
    return inputs


def run(shapes=SHAPES, dtypes=("float32", "bfloat16"), repeats: int = 30, progress=None) -> list[dict]:
    import verl

    from bench.common import paired_ratios, round_ratios, sample_side_by_side
    rows = []
    for batch, length in shapes:
        for dtype in dtypes:
            inputs = make_inputs(batch, length, DTYPES[dtype])
            fns = candidates(inputs)
            t0 = time.perf_counter()
            fns["dgpo (plugin)"]()  # the first call compiles (or hits the cache): timed, then left out
            compile_s = round(time.perf_counter() - t0, 2)
            samples = sample_side_by_side(fns, repeats=repeats, warmup=3)
            rows.append({
                "shape": [batch, length], "dtype": dtype, "device": "cpu", "repeats": repeats,
                "verl": verl.__version__, "torch": torch.__version__, "compile_s": {"dgpo (plugin)": compile_s},
                "ms": {k: round(statistics.median(v) * 1e3, 3) for k, v in samples.items()},
                "ratio_to_vanilla": {k: round(v, 3) for k, v in paired_ratios(samples, BASE).items()},
                "round_ratios": {"dgpo (plugin)": [round(x, 4) for x in round_ratios(samples, BASE)["dgpo (plugin)"]]},
            })
            if progress is not None:
                progress(rows[-1])
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--quick", action="store_true", help="one small shape, 5 rounds (checks the code)")
    args = p.parse_args(argv)
    shapes, repeats = (((8, 512),), 5) if args.quick else (SHAPES, args.repeats)
    run(shapes, repeats=repeats, progress=lambda row: print(json.dumps(row), flush=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
