"""A/B of the policy loss against an earlier commit, side by side in one process.

    python -m bench.ab_loss --base 27411b3 [--method dgpo] [--shape 64x4096] [--dtype float32] [--rounds 15]

``dgpo_ref`` as it was at ``--base`` is extracted (``git archive``) into a temporary folder as the
package ``dgpo_ref_base`` (its core modules import one another relatively) and both are called as
``bench.bench_loss`` calls the fast path (``compiled_only``, checks and metrics on, and with both
off), interleaved with plain clipping on the same inputs. Prints one JSON line: per candidate the
median time, the median paired ratio to plain clipping and every round's ratio. Times include
nothing of the compile: each candidate is called once before the rounds.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.bench_loss import BASE, DTYPES, loss_call, make_inputs, plain_call
from bench.common import machine, paired_ratios, round_ratios, sample_side_by_side

ROOT = Path(__file__).resolve().parents[1]


def base_package(rev: str, into: Path):
    """``dgpo_ref`` at ``rev`` imported as ``dgpo_ref_base``; ValueError naming ``--base`` if git cannot give it."""
    out = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "dgpo_ref"], capture_output=True)
    if out.returncode != 0:
        raise ValueError(f"--base {rev!r}: git archive failed: {out.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(into)], input=out.stdout, check=True)
    shutil.move(into / "dgpo_ref", into / "dgpo_ref_base")
    sys.path.insert(0, str(into))
    return importlib.import_module("dgpo_ref_base.fast")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", required=True, help="the commit to compare with (any git revision)")
    p.add_argument("--method", default="dgpo")
    p.add_argument("--shape", default="64x4096", help="BATCHxLENGTH")
    p.add_argument("--dtype", default="float32", choices=list(DTYPES))
    p.add_argument("--rounds", type=int, default=15)
    args = p.parse_args(argv)
    try:
        batch, length = (int(x) for x in args.shape.lower().split("x"))
        if batch < 1 or length < 1 or args.rounds < 1:
            raise ValueError
    except ValueError:
        p.error(f"--shape must be BATCHxLENGTH with both >= 1 and --rounds >= 1, got {args.shape!r}, {args.rounds}")
    from dgpo_ref import fast

    with tempfile.TemporaryDirectory() as tmp:
        try:
            base = base_package(args.base, Path(tmp))
        except ValueError as exc:
            p.error(str(exc))
        inputs = make_inputs(batch, length, DTYPES[args.dtype], "cpu")

        def call(mod, **kw):
            return loss_call(inputs, mod.compiled_only, args.method, **kw)

        bare = dict(check_inputs=False, metrics=False)
        fns = {BASE: plain_call(inputs), "base": call(base), "current": call(fast),
               "base/nocheck-nometrics": call(base, **bare), "current/nocheck-nometrics": call(fast, **bare)}
        for fn in fns.values():  # compile (or load) every graph before the rounds
            fn()
        samples = sample_side_by_side(fns, repeats=args.rounds, warmup=3)
    print(json.dumps({
        "base": args.base, "method": args.method, "shape": [batch, length], "dtype": args.dtype,
        "rounds": args.rounds, "load_average_1m": machine()["load_average_1m"], "cpu": machine()["cpu"],
        "ms": {k: round(statistics.median(v) * 1e3, 3) for k, v in samples.items()},
        "ratio_to_plain": {k: round(v, 3) for k, v in paired_ratios(samples, BASE).items()},
        "round_ratios": {k: [round(x, 4) for x in v] for k, v in round_ratios(samples, BASE).items() if k != BASE},
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
