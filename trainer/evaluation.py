"""Held-out evaluation: Avg@k (mean accuracy over k samples) and the unbiased Pass@k.

Pass@k from n ≥ k samples with c correct is 1 − C(n−c, k)/C(n, k) (Chen et al., 2021), averaged
over problems. With k = 1 the model answers greedily (temperature 0) and Avg@1 = Pass@1 is the
greedy accuracy; with k > 1 it samples k completions per problem at ``eval_temperature``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from pathlib import Path

from .rewards import REWARDS

EVAL_FIELDS = ("model", "dtype", "mixed_precision", "max_new_tokens", "chat_template", "system_prompt", "task",
               "eval_task", "prompt_field", "answer_field", "prompt_suffix", "reward", "eval_size", "test_size",
               "eval_k", "eval_temperature")
"""The settings an evaluation of the *initial* model depends on (with ``seed`` when it samples, k > 1)."""

_EVAL_CODE = ("evaluation.py", "rollout.py", "models.py", "rewards.py")
"""Trainer modules whose code shapes an evaluation: a change to any of them invalidates the cache."""


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased Pass@k from n samples of which c are correct (computed as a stable product)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod((n - c - i) / (n - i) for i in range(k))


def evaluate(engine, encode, problems, *, reward: str, k: int, temperature: float, max_new_tokens: int,
             decode, seed: int, prefix: str = "eval") -> tuple[dict[str, float], list[dict]]:
    """``<prefix>/avg@k``, ``/pass@k``, ``/pass@1``, ``/finished`` (fraction of samples that ended by
    themselves, not cut at ``max_new_tokens``) and ``/response_length`` over ``problems``, and one
    record per problem (id = its index in ``problems``; completions, rewards, finished flags) so
    that runs can be compared problem by problem."""
    prompts = [encode(p.prompt) for p in problems]
    greedy = k == 1
    outs = engine.generate(prompts, k, temperature=0.0 if greedy else temperature, max_new_tokens=max_new_tokens,
                           seed=seed)
    fn = REWARDS[reward]
    correct, records = [], []
    for i, p in enumerate(problems):
        samples = outs[i * k : (i + 1) * k]
        texts = [decode(o.token_ids) for o in samples]
        scores = [fn(t, p.answer) for t in texts]
        correct.append(sum(s >= 1.0 for s in scores))
        records.append({"id": i, "answer": p.answer, "completions": texts, "rewards": scores,
                        "finished": [o.finished for o in samples]})
    n = len(problems)
    result = {f"{prefix}/avg@{k}": sum(correct) / (n * k),
              f"{prefix}/pass@{k}": sum(pass_at_k(k, c, k) for c in correct) / n}
    result[f"{prefix}/pass@1"] = sum(pass_at_k(k, c, 1) for c in correct) / n
    result[f"{prefix}/finished"] = sum(o.finished for o in outs) / len(outs)
    result[f"{prefix}/response_length"] = sum(len(o.token_ids) for o in outs) / len(outs)
    return result, records


def initial_eval_key(cfg, splits: dict, *, backend: str, device: str, model_path: Path) -> str:
    """A digest of everything the evaluation of the untrained model depends on: the settings in
    ``EVAL_FIELDS`` (and ``seed`` when k > 1), the resolved backend and device, the model's files
    (name, size, modification time), the problems of every split, torch's version and the code of
    the trainer modules in ``_EVAL_CODE``. Runs of a comparison that differ only in loss, learning
    rate or training seed share the key: before the first update their greedy answers are the same."""
    import torch

    here = Path(__file__).parent
    files = sorted(model_path.rglob("*")) if model_path.is_dir() else [model_path]
    parts = {
        "settings": {f: getattr(cfg, f) for f in EVAL_FIELDS} | ({"seed": cfg.seed} if cfg.eval_k > 1 else {}),
        "backend": backend, "device": device, "torch": torch.__version__,
        "model_files": [[str(f.relative_to(model_path)) if model_path.is_dir() else f.name, f.stat().st_size,
                         f.stat().st_mtime_ns] for f in files if f.is_file()],
        "splits": {n: [[p.prompt, p.answer] for p in ps] for n, ps in splits.items()},
        "code": {m: hashlib.sha256((here / m).read_bytes()).hexdigest() for m in _EVAL_CODE},
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def evaluate_splits(engine, encode, splits: dict, cfg, *, decode, out_dir: Path | None = None,
                    step: int = 0, cache: Path | None = None) -> dict[str, float]:
    """:func:`evaluate` on every held-out split (keys ``val/...``, ``test/...``); with ``out_dir``, the
    per-problem records go to ``out_dir/<split>_step<step>.jsonl``. With ``cache`` (a file named by
    :func:`initial_eval_key`), the metrics and records are read from it when it holds a whole
    evaluation of these splits (the result then carries ``eval_cached: True``), and written to it
    otherwise (atomically, so parallel runs may race; a torn file is recomputed with a warning)."""
    hit = None
    if cache is not None and cache.is_file():
        try:
            hit = json.loads(cache.read_text())
            if set(hit["records"]) != set(splits) or any(len(hit["records"][n]) != len(ps) for n, ps in splits.items()):
                raise ValueError("splits differ")
        except (ValueError, KeyError, TypeError) as exc:
            print(f"warning: eval_cache: {cache} is unreadable ({exc}); evaluating and rewriting it", file=sys.stderr)
            hit = None
    result, all_records = {}, {}
    splits = {name: problems for name, problems in splits.items() if len(problems)}  # a split of none: no metrics
    for name, problems in splits.items():
        if hit is not None:
            records = hit["records"][name]
        else:
            metrics, records = evaluate(engine, encode, problems, reward=cfg.reward, k=cfg.eval_k,
                                        temperature=cfg.eval_temperature, max_new_tokens=cfg.max_new_tokens,
                                        decode=decode, seed=cfg.seed, prefix=name)
            result.update(metrics)
        all_records[name] = records
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            path = out_dir / f"{name}_step{step:06d}.jsonl"
            path.write_text("".join(json.dumps(r) + "\n" for r in records))
    if hit is not None:
        return {**hit["metrics"], "eval_cached": True}
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")  # one per process: parallel runs may race
        try:
            tmp.write_text(json.dumps({"metrics": result, "records": all_records}))
            os.replace(tmp, cache)
        finally:
            tmp.unlink(missing_ok=True)
    return result
