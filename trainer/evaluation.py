"""Held-out evaluation: Avg@k (mean accuracy over k samples) and the unbiased Pass@k.

Pass@k from n ≥ k samples with c correct is 1 − C(n−c, k)/C(n, k) (Chen et al., 2021), averaged
over problems. With k = 1 the model answers greedily (temperature 0) and Avg@1 = Pass@1 is the
greedy accuracy; with k > 1 it samples k completions per problem at ``eval_temperature``.
"""

from __future__ import annotations

import math

from .rewards import REWARDS


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased Pass@k from n samples of which c are correct (computed as a stable product)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod((n - c - i) / (n - i) for i in range(k))


def evaluate(engine, encode, problems, *, reward: str, k: int, temperature: float, max_new_tokens: int,
             decode, seed: int) -> dict[str, float]:
    """``eval/avg@k``, ``eval/pass@k`` (and ``eval/pass@1``), the mean response length and the fraction
    of completions that finished (EOS before ``max_new_tokens``) over ``problems`` with the rollout engine."""
    prompts = [encode(p.prompt) for p in problems]
    greedy = k == 1
    outs = engine.generate(prompts, k, temperature=0.0 if greedy else temperature, max_new_tokens=max_new_tokens,
                           seed=seed)
    fn = REWARDS[reward]
    correct = []
    for i, p in enumerate(problems):
        scores = [fn(decode(o.token_ids), p.answer) for o in outs[i * k : (i + 1) * k]]
        correct.append(sum(s >= 1.0 for s in scores))
    n = len(problems)
    result = {f"eval/avg@{k}": sum(correct) / (n * k), f"eval/pass@{k}": sum(pass_at_k(k, c, k) for c in correct) / n}
    result["eval/pass@1"] = sum(pass_at_k(k, c, 1) for c in correct) / n
    result["eval/response_length"] = sum(len(o.token_ids) for o in outs) / len(outs)
    result["eval/finished"] = sum(o.finished for o in outs) / len(outs)  # the rest were cut at max_new_tokens
    return result
