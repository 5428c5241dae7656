"""``dgpo bench``: run the benchmarks and write docs/performance.json and docs/performance.md.

    dgpo bench                      # everything, full sizes (tens of minutes on 2 cores)
    dgpo bench --quick              # small sizes, for a smoke check of the benchmark code
    dgpo bench --only loss --only logprobs    # refreshes those sections of the saved JSON

Sections: ``loss`` (policy loss forward + backward, ratios to plain eager clipping), ``verl`` (the
verl plugin's dgpo against verl's own vanilla loss, run in .venv-verl),
``logprobs`` (chunked vs naive log-probs: memory, time, agreement), ``rollout`` (hf vs vllm
tokens/s), ``trainer`` (one iteration broken down, smoke and default presets), ``commands`` (wall
time of prove, gen-tests, the conformance suite). Every ratio compares candidates measured side by
side in the same run. A section that fails is recorded with its error and the others still run.
The GPU numbers (bench/gpu_check.py, run on the GPU machine) are read from
bench/results/gpu_h200.json when present and shown in their own part of the report.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from clikit import ArgumentParser, CliError

ROOT = Path(__file__).resolve().parent.parent
GPU_RESULTS = ROOT / "bench" / "results" / "gpu_h200.json"


def _loss(quick: bool, progress):
    from bench import bench_loss
    if quick:
        return bench_loss.run(((8, 512),), repeats=5, progress=progress)
    return bench_loss.run(progress=progress)


def _logprobs(quick: bool, progress):
    from bench import bench_logprobs
    return bench_logprobs.run("quick" if quick else "full", progress=progress)


def _rollout(quick: bool, progress):
    from bench import bench_rollout
    if quick:
        return [bench_rollout.run(model="tiny-llama", prompts=2, n=2, max_new_tokens=8, rounds=1, progress=progress,
                                  label="quick")]
    return [bench_rollout.run(progress=progress, label=label, **kw) for label, kw in bench_rollout.settings().items()]


def _trainer(quick: bool, progress):
    from bench import bench_trainer
    if quick:
        return bench_trainer.run(("smoke",), steps=2, progress=progress)
    from trainer.rollout import vllm_available

    if not vllm_available():
        return bench_trainer.run(("smoke", "default"), steps=bench_trainer.STEPS, progress=progress)
    # both backends, side by side: alternating children, ROUNDS of each, so that a change of the machine's
    # speed during the section hits both (the report pairs them round by round)
    variants = [("default", [f"backend={b}"]) for _ in range(bench_trainer.ROUNDS) for b in ("hf", "vllm")]
    return bench_trainer.run(("smoke",), steps=bench_trainer.STEPS, progress=progress, variants=variants)


VERL_PYTHON = ROOT / ".venv-verl" / "bin" / "python"


def _verl(quick: bool, progress):
    """bench/bench_verl.py in the verl environment (a child process): the plugin against verl's vanilla."""
    import subprocess

    if not VERL_PYTHON.is_file():
        raise RuntimeError(f"{VERL_PYTHON} not found: build the verl environment with `bash scripts/setup_verl.sh`")
    cmd = [str(VERL_PYTHON), "-m", "bench.bench_verl"] + (["--quick"] if quick else [])
    rows = []
    with subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True) as proc:
        for line in proc.stdout:
            if line.startswith("{"):
                rows.append(json.loads(line))
                progress(rows[-1])
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode} (its error output is above)")
    return rows


def _commands(quick: bool, progress):
    from bench import bench_commands
    return bench_commands.run(progress=progress)


SECTIONS: dict[str, Callable] = {"loss": _loss, "verl": _verl, "logprobs": _logprobs, "rollout": _rollout,
                                 "trainer": _trainer, "commands": _commands}


def run_sections(names: list[str], quick: bool) -> dict:
    from bench.common import machine

    result = {"machine": machine(), "quick": quick, "sections": {}, "errors": {}, "seconds": {}}
    for name in tqdm(names, desc="dgpo bench", unit="section"):
        t0 = time.perf_counter()
        try:
            result["sections"][name] = SECTIONS[name](quick, lambda row: tqdm.write(json.dumps(row)))
        except Exception as exc:  # recorded in the report; the other sections still run
            result["errors"][name] = f"{type(exc).__name__}: {exc}"[:2000]
            tqdm.write(traceback.format_exc())
        result["seconds"][name] = round(time.perf_counter() - t0, 1)
    result["machine"]["load_average_1m_end"] = machine()["load_average_1m"]
    return result


def _merge(saved: dict, new: dict) -> dict:
    """The saved report with ``new``'s sections, errors and timings replacing theirs."""
    merged = {**saved, "machine": new["machine"]}
    for key in ("sections", "errors", "seconds"):
        merged[key] = {k: v for k, v in saved.get(key, {}).items() if k not in new["sections"] and
                       k not in new["errors"]}
        merged[key].update(new[key])
    merged["refreshed"] = sorted(set(saved.get("refreshed", [])) | set(new["sections"]) | set(new["errors"]))
    return merged


def main(argv: list[str]) -> int:
    parser = ArgumentParser(prog="dgpo bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=list(SECTIONS), default=[],
                        help="run only this section (repeatable; default: all)")
    parser.add_argument("--quick", action="store_true", help="small sizes (checks the benchmark code)")
    parser.add_argument("--json", type=Path, default=ROOT / "docs" / "performance.json", help="JSON output")
    parser.add_argument("--markdown", type=Path, default=ROOT / "docs" / "performance.md", help="Markdown output")
    args = parser.parse_args(argv)
    for path in (args.json, args.markdown):
        if not path.parent.is_dir():
            raise CliError(f"output folder {path.parent} does not exist")
    names = args.only or list(SECTIONS)
    result = run_sections(names, args.quick)
    if args.only and args.json.is_file():  # --only refreshes those sections of the saved report
        saved = json.loads(args.json.read_text())
        if saved.get("quick") == args.quick:
            result = _merge(saved, result)
    if GPU_RESULTS.is_file():
        result["gpu"] = json.loads(GPU_RESULTS.read_text())
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    from bench.report import markdown
    args.markdown.write_text(markdown(result))
    print(f"wrote {args.json} and {args.markdown}")
    return 1 if result["errors"] else 0
