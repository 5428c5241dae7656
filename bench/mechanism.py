"""The mechanism behind DGPO in a tabular softmax policy, where 50 seeds per method take minutes.

    python -m bench.mechanism                       # all registry methods x 50 seeds, writes docs/results/
    python -m bench.mechanism --methods dgpo,cispo --seeds 10 --steps 100 --out /tmp/mech

The paper's argument (docs/mechanism.md): soft clipping (CISPO, GPPO) keeps a bounded weight V on
∇log π for a negative-advantage token whose ratio fell under 1 − eps_low (region LN), so that
token's logit keeps being pushed down however small π already is; DGPO's weight there is
V = r^(n+1)/(1−eps_low)^n, so its push vanishes as r → 0 (like π^(n+1) for a given π_old). Here
that can be watched directly (what it shows, with intervals: docs/mechanism.md):

- the policy is a table of logits ``theta[prompt, position, token]`` (float64), one softmax per
  position, an answer is ``length`` tokens sampled independently, and the verifiable reward is 1
  when every position's token lies in that prompt's correct set for the position;
- each rollout batch samples ``group`` answers per prompt from the policy as it was ``staleness``
  optimizer updates earlier (an asynchronous sampler), keeps the sampler's log-probs as π_old,
  takes GRPO group advantages (``dgpo_ref.grpo_advantages``) and is split into ``minibatches``
  optimizer updates;
- the update is the real registry loss, ``dgpo_ref.policy_loss(method, ...)`` with the method's
  defaults and token-mean aggregation, and SGD (or Adam) on the logits;
- seeds are vectorised: every tensor has a leading seed axis, each seed's loss is normalised by
  its own token count and the optimizers act per element, so a seed's run does not depend on the
  other seeds in the call. All random numbers of a seed (initial logits, correct sets, the
  uniforms that pick the samples) come from its own generator, so methods are paired by seed.

Recorded per update and seed: expected reward and entropy (exact, from the table), the fractions
of the update's tokens in LN and HP (per seed from ``dgpo_ref.classify``; the loss's own
``region/*`` metrics pooled over seeds), log π and the centred logit of the tokens in LN, the
smallest log π in the table, and the push on each LN token's own logit, −A·V·(1−π) (the
token's gradient on its logit times the token count; SGD moves the logit by lr/N times this).
"""

from __future__ import annotations

import json
import math
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

import dgpo_ref
from clikit import ArgumentParser, CliError

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"
AFTER_HORIZON = 100  # updates followed after a token's first entry into LN
AFTER_REPORTED = (5, 20, 50, 100)  # ... and those reported in the JSON
LN_CODE = dgpo_ref.REGIONS.index("LN")
HP_CODE = dgpo_ref.REGIONS.index("HP")

@dataclass(frozen=True)
class PushHistogram:
    """Mean push on LN tokens' own logits, binned by log10 of ``by`` (``p`` or ``r``); ``per_adv``
    divides each push by |A|, leaving V·(1−π), the part the method decides."""

    by: str
    per_adv: bool
    edges: np.ndarray
    label: str


HISTOGRAMS = {  # name in mechanism.json -> histogram
    "ln_push_by_p": PushHistogram("p", False, np.arange(-16.0, 0.5, 1.0), "mean |A|·V·(1−π)"),
    "ln_push_per_adv_by_r": PushHistogram("r", True, np.arange(-8.0, 0.01, 0.25), "mean V·(1−π)"),
}


def _field(default, help_text: str):
    """A Setting field; its help text is the docstring and the ``--flag``'s help."""
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class Setting:
    """One experiment. Defaults are the run of record (docs/mechanism.md)."""

    prompts: int = _field(8, "prompts; every batch holds all of them")
    vocab: int = _field(32, "tokens per position")
    length: int = _field(2, "answer length; the reward needs every position right, so a failed "
                            "answer can hold right tokens")
    correct: int = _field(8, "correct tokens per prompt and position")
    group: int = _field(8, "samples per prompt (G) for the group advantages")
    steps: int = _field(300, "optimizer updates per run (a multiple of --minibatches)")
    staleness: int = _field(16, "the sampler's policy is this many optimizer updates behind the learner; "
                                "0 = on-policy")
    minibatches: int = _field(1, "optimizer updates per rollout batch, each on an equal share of every "
                                 "prompt's samples (split by prompt, a table's ratio would not move)")
    lr: float = _field(20.0, "learning rate on the logits")
    optimizer: str = _field("sgd", "sgd (a logit moves by lr times its gradient) or adam")
    init_std: float = _field(1.0, "standard deviation of the initial logits")


MAX_RECORD_BYTES = 4 * 2**30  # what one method's recorded tables may take; more is refused up front


def record_bytes(s: Setting, seeds: int) -> int:
    """Memory of one method's recorded tables and uniforms (float32 logits and log π per update)."""
    tables = 2 * 4 * (s.steps + 1) * seeds * s.prompts * s.length * s.vocab
    return tables + 8 * s.steps * seeds * s.prompts * s.group * s.length


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_setting(s: Setting, seeds: int = 1) -> None:
    """One line naming the first bad flag, before anything runs."""
    for name in ("prompts", "vocab", "length", "correct", "group", "steps", "minibatches"):
        value = getattr(s, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise CliError(f"{_flag(name)} must be a positive integer, got {value!r}")
    if not isinstance(s.staleness, int) or s.staleness < 0:
        raise CliError(f"--staleness must be an integer >= 0, got {s.staleness!r}")
    if s.correct >= s.vocab:
        raise CliError(f"--correct must be smaller than --vocab ({s.vocab}), got {s.correct}")
    if s.group < 2:
        raise CliError(f"--group must be at least 2 for group advantages, got {s.group}")
    if s.group % s.minibatches or s.steps % s.minibatches:
        raise CliError(f"--minibatches must divide --group ({s.group}) and --steps ({s.steps}), got {s.minibatches}")
    for name in ("lr", "init_std"):
        value = getattr(s, name)
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise CliError(f"{_flag(name)} must be a finite number > 0, got {value!r}")
    if s.optimizer not in OPTIMIZERS:
        raise CliError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {s.optimizer!r}")
    if record_bytes(s, seeds) > MAX_RECORD_BYTES:
        raise CliError(f"--seeds {seeds} x --steps {s.steps} with this table would record "
                       f"{record_bytes(s, seeds) / 2**30:.1f} GiB per method (limit "
                       f"{MAX_RECORD_BYTES / 2**30:.0f} GiB); use fewer seeds or steps")


# ---------------------------------------------------------------- the tabular policy


def seed_tables(seed: int, s: Setting) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(initial logits (P, L, V), correct mask (P, L, V), uniforms (batches, P, G, L)) of one seed."""
    g = torch.Generator().manual_seed(seed)
    theta = s.init_std * torch.randn((s.prompts, s.length, s.vocab), generator=g, dtype=torch.float64)
    order = torch.rand((s.prompts, s.length, s.vocab), generator=g, dtype=torch.float64).argsort(-1)
    correct = torch.zeros_like(theta, dtype=torch.bool).scatter_(-1, order[..., : s.correct], True)
    batches = s.steps // s.minibatches
    uniforms = torch.rand((batches, s.prompts, s.group, s.length), generator=g, dtype=torch.float64)
    return theta, correct, uniforms


def sample(logp: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Token ids (S, P, G, L) by inverse CDF: the same uniforms give the same draw for the same policy."""
    cdf = logp.exp().cumsum(-1)  # (S, P, L, V)
    cdf = cdf.unsqueeze(2).expand(-1, -1, u.shape[2], -1, -1)  # (S, P, G, L, V)
    ids = torch.searchsorted(cdf.contiguous(), (u * cdf[..., -1]).unsqueeze(-1))
    return ids.squeeze(-1).clamp(max=logp.shape[-1] - 1)


def gather(table: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """table (S, P, L, V) at ids (S, P, G, L) -> (S, P, G, L)."""
    expanded = table.unsqueeze(2).expand(-1, -1, ids.shape[2], -1, -1)
    return expanded.gather(-1, ids.unsqueeze(-1)).squeeze(-1)


def expected_reward(logp: torch.Tensor, correct: torch.Tensor) -> torch.Tensor:
    """Per seed: mean over prompts of Π over positions of π(correct set), exactly."""
    p_right = torch.where(correct, logp.exp(), torch.zeros_like(logp)).sum(-1)  # (S, P, L)
    return p_right.prod(-1).mean(-1)


def entropy(logp: torch.Tensor) -> torch.Tensor:
    """Per seed: mean over prompts and positions of the softmax entropy (nats)."""
    return -(logp.exp() * logp).sum(-1).mean((-1, -2))


# ---------------------------------------------------------------- optimizers (written out: the table
# is the whole update rule, and torch.optim's first use imports torch._dynamo, seconds on 2 cores)


def sgd_step(theta: torch.Tensor, grad: torch.Tensor, state: dict, lr: float) -> None:
    theta -= lr * grad


def adam_step(theta: torch.Tensor, grad: torch.Tensor, state: dict, lr: float,
              betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
    """torch.optim.Adam's rule without weight decay: per element, so seeds stay independent."""
    t = state["t"] = state.get("t", 0) + 1
    m = state["m"] = betas[0] * state.get("m", torch.zeros_like(grad)) + (1 - betas[0]) * grad
    v = state["v"] = betas[1] * state.get("v", torch.zeros_like(grad)) + (1 - betas[1]) * grad * grad
    theta -= lr * (m / (1 - betas[0] ** t)) / ((v / (1 - betas[1] ** t)).sqrt() + eps)


OPTIMIZERS = {"sgd": sgd_step, "adam": adam_step}


# ---------------------------------------------------------------- one update


@dataclass
class Batch:
    """One rollout batch, all seeds: token ids, the sampler's log-probs, advantages (S, P, G)."""

    ids: torch.Tensor
    old_logp: torch.Tensor
    adv: torch.Tensor


def rollout(sampler_theta: torch.Tensor, correct: torch.Tensor, u: torch.Tensor) -> Batch:
    logp = torch.log_softmax(sampler_theta, -1)
    ids = sample(logp, u)
    reward = gather(correct.to(torch.float64), ids).prod(-1)  # (S, P, G): 1 iff every position right
    adv = dgpo_ref.grpo_advantages(reward.reshape(-1, reward.shape[-1])).reshape(reward.shape)
    return Batch(ids, gather(logp, ids), adv)


def loss_and_coef(method: str, theta: torch.Tensor, b: Batch) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """The registry loss summed over seeds (each seed token-mean over its own tokens), the gradient
    on each token's log π times the per-seed token count (= −A·V), and the loss's metrics."""
    s, p, g, length = b.ids.shape
    logp = gather(torch.log_softmax(theta, -1), b.ids)
    logp.retain_grad()
    loss, metrics = dgpo_ref.policy_loss(
        method, log_prob=logp.reshape(-1, length), old_log_prob=b.old_logp.reshape(-1, length),
        advantages=b.adv.reshape(-1), response_mask=torch.ones(s * p * g, length, dtype=torch.bool),
        normalizer=p * g * length)
    loss.backward()
    return logp.detach(), logp.grad * (p * g * length), metrics


def push_on_logit(method: str, p: float, p_old: float, adv: float, vocab: int = 4) -> float:
    """The push −A·V·(1−π) on a token's own logit, through the real loss and autograd on a one-row table.

    The token (id 0) has probability ``p``; its batch was sampled at ``p_old``. Positive means the
    logit goes up under gradient descent. Used by the tests to check the law on the logits.
    """
    rest = math.log((1.0 - p) / (vocab - 1))
    theta = torch.tensor([[[math.log(p)] + [rest] * (vocab - 1)]], dtype=torch.float64).unsqueeze(0)
    theta.requires_grad_(True)
    b = Batch(ids=torch.zeros((1, 1, 1, 1), dtype=torch.long),
              old_logp=torch.full((1, 1, 1, 1), math.log(p_old), dtype=torch.float64),
              adv=torch.full((1, 1, 1), float(adv), dtype=torch.float64))
    loss_and_coef(method, theta, b)
    return -float(theta.grad[0, 0, 0, 0])


# ---------------------------------------------------------------- one method, all seeds


def _nan_stat(values: torch.Tensor, ok: torch.Tensor, reduce: str) -> torch.Tensor:
    """Per seed mean or min of ``values`` (S, ...) over entries where ``ok``; NaN for a seed with none."""
    flat, mask = values.flatten(1), ok.flatten(1)
    if reduce == "mean":
        out = torch.where(mask, flat, 0.0).sum(1) / mask.sum(1).clamp(min=1)
    else:
        out = torch.where(mask, flat, torch.inf).amin(1)
    return torch.where(mask.any(1), out, torch.nan)


class Recorder:
    """Per-update arrays (updates + 1, seeds) and pooled push histograms for one method."""

    SERIES = ("reward", "entropy", "min_logp", "ln_frac", "hp_frac", "ln_logp_mean", "ln_logp_min",
              "ln_logit_mean", "ln_logit_min", "ln_push_mean")

    def __init__(self, s: Setting, seeds: int):
        self.series = {k: np.full((s.steps + 1, seeds), np.nan) for k in self.SERIES}
        self.tables = {"logit": [], "logp": []}  # per state: centred logits and log π (S, P, L, V), float32
        self.first_ln = np.full((seeds, s.prompts, s.length, s.vocab), -1)  # update a token first was in LN
        self.after: dict[str, np.ndarray] = {}  # table -> (horizon + 1, S), from after_entry at the end
        self.push_sum = {k: np.zeros(len(h.edges) - 1) for k, h in HISTOGRAMS.items()}
        self.push_count = {k: np.zeros(len(h.edges) - 1) for k, h in HISTOGRAMS.items()}
        self.pooled_regions = {r: 0.0 for r in dgpo_ref.REGIONS}

    def state(self, t: int, theta: torch.Tensor, correct: torch.Tensor) -> None:
        logp = torch.log_softmax(theta, -1)
        self.tables["logit"].append((theta - theta.mean(-1, keepdim=True)).float().numpy())
        self.tables["logp"].append(logp.float().numpy())
        self.series["reward"][t] = expected_reward(logp, correct).numpy()
        self.series["entropy"][t] = entropy(logp).numpy()
        self.series["min_logp"][t] = logp.flatten(1).amin(1).numpy()

    def _histograms(self, log_p, log_r, push, adv) -> None:
        for key, h in HISTOGRAMS.items():
            x = (log_p if h.by == "p" else log_r).numpy() / math.log(10)
            which = np.clip(np.digitize(x, h.edges) - 1, 0, len(h.edges) - 2)
            value = (push / adv.abs() if h.per_adv else push).abs().numpy()
            np.add.at(self.push_sum[key], which, value)
            np.add.at(self.push_count[key], which, 1)

    def _mark_entries(self, t: int, ln: torch.Tensor, ids: torch.Tensor) -> None:
        s_i, p_i, _, l_i = (x.numpy() for x in ln.nonzero(as_tuple=True))
        key = (s_i, p_i, l_i, ids[ln].numpy())
        self.first_ln[key] = np.where(self.first_ln[key] < 0, t, self.first_ln[key])

    def after_entry(self, table: str, horizon: int) -> np.ndarray:
        """(horizon + 1, S): per seed, the mean change of ``table`` (logit or logp) j updates after a
        token first entered LN, over the tokens that did and whose run lasted j more updates."""
        values = np.stack(self.tables[table])  # (T + 1, S, P, L, V)
        t0, last = self.first_ln, values.shape[0] - 1
        at = lambda t: np.take_along_axis(values, np.clip(t, 0, last)[None], 0)[0]  # noqa: E731
        start = at(t0)
        out = np.full((horizon + 1, values.shape[1]), np.nan)
        for j in range(horizon + 1):
            ok = (t0 >= 0) & (t0 + j <= last)
            change = np.where(ok, at(t0 + j) - start, 0.0).reshape(ok.shape[0], -1).sum(1)
            n = ok.reshape(ok.shape[0], -1).sum(1)
            out[j] = np.where(n > 0, change / np.maximum(n, 1), np.nan)
        return out

    def update(self, t: int, theta: torch.Tensor, b: Batch, logp: torch.Tensor, coef: torch.Tensor,
               region: torch.Tensor, metrics: dict) -> None:
        ln = (region == LN_CODE).reshape(logp.shape)
        self._mark_entries(t, ln, b.ids)
        self.series["ln_frac"][t] = ln.flatten(1).double().mean(1).numpy()
        self.series["hp_frac"][t] = (region == HP_CODE).reshape(logp.shape).flatten(1).double().mean(1).numpy()
        centred = gather(theta - theta.mean(-1, keepdim=True), b.ids)
        push = -coef.reshape(logp.shape) * (1.0 - logp.exp())  # −A·V·(1−π): the push on the own logit
        for key, values, how in (("ln_logp_mean", logp, "mean"), ("ln_logp_min", logp, "min"),
                                 ("ln_logit_mean", centred, "mean"), ("ln_logit_min", centred, "min"),
                                 ("ln_push_mean", push, "mean")):
            self.series[key][t] = _nan_stat(values, ln, how).numpy()
        self._histograms(logp[ln], (logp - b.old_logp)[ln], push[ln], b.adv.unsqueeze(-1).expand_as(logp)[ln])
        for r in dgpo_ref.REGIONS:
            self.pooled_regions[r] += metrics[f"region/{r}"]


def run_method(method: str, s: Setting, seeds: list[int], progress=None) -> Recorder:
    """Train ``len(seeds)`` tabular policies with ``method``; returns the recorder."""
    hp = dgpo_ref.get_spec(method).resolve({})
    tables = [seed_tables(seed, s) for seed in seeds]
    theta = torch.stack([t[0] for t in tables]).requires_grad_(True)
    correct = torch.stack([t[1] for t in tables])
    uniforms = torch.stack([t[2] for t in tables], 1)  # (batches, S, P, G, L)
    step, opt_state = OPTIMIZERS[s.optimizer], {}
    history = [theta.detach().clone()]  # history[-1 - k] = the policy k updates ago
    rec = Recorder(s, len(seeds))
    per_mb = s.group // s.minibatches
    t = 0
    for batch_index in range(s.steps // s.minibatches):
        sampler = history[max(0, len(history) - 1 - s.staleness)]
        batch = rollout(sampler, correct, uniforms[batch_index])
        for mb in range(s.minibatches):
            cols = slice(mb * per_mb, (mb + 1) * per_mb)  # these samples of every prompt
            b = Batch(batch.ids[:, :, cols], batch.old_logp[:, :, cols], batch.adv[:, :, cols])
            rec.state(t, theta.detach(), correct)
            theta.grad = None
            logp, coef, metrics = loss_and_coef(method, theta, b)
            region = dgpo_ref.classify((logp - b.old_logp).exp(), b.adv.unsqueeze(-1).expand_as(logp),
                                       hp["eps_low"], hp["eps_high"])
            rec.update(t, theta.detach(), b, logp, coef, region, metrics)
            with torch.no_grad():
                step(theta, theta.grad, opt_state, s.lr)
            t += 1
            history = (history + [theta.detach().clone()])[-(s.staleness + 1):]
            if progress is not None:
                progress.update(1)
    rec.state(t, theta.detach(), correct)
    rec.pooled_regions = {r: v / s.steps for r, v in rec.pooled_regions.items()}
    rec.after = {k: rec.after_entry(k, min(AFTER_HORIZON, s.steps)) for k in rec.tables}
    rec.tables = {}  # (updates x seeds x table) floats: not kept once summarised
    return rec


# ---------------------------------------------------------------- statistics and output


def bootstrap(values, resamples: int = 2000, seed: int = 0) -> dict:
    """Mean and 95 % percentile-bootstrap interval of the finite entries (over seeds)."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return {"mean": None, "ci95": [None, None], "n": 0}
    means = x[np.random.default_rng(seed).integers(0, x.size, (resamples, x.size))].mean(1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return {"mean": float(x.mean()), "ci95": [float(lo), float(hi)], "n": int(x.size)}


def _quiet_nan(fn, x: np.ndarray, axis: int) -> np.ndarray:
    """``np.nanmean``/``np.nanmin`` that give NaN for an all-NaN slice (a seed with no LN token) silently."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(x, axis)


def _per_seed(rec: Recorder) -> dict[str, np.ndarray]:
    """The per-seed numbers the table reports (NaN where a seed never had an LN token)."""
    sr = rec.series
    return {
        "final_reward": sr["reward"][-1],
        "mean_reward": sr["reward"].mean(0),
        "final_entropy": sr["entropy"][-1],
        "final_min_logp": sr["min_logp"][-1],
        "ln_frac": _quiet_nan(np.nanmean, sr["ln_frac"], 0),
        "hp_frac": _quiet_nan(np.nanmean, sr["hp_frac"], 0),
        "min_ln_logp": _quiet_nan(np.nanmin, sr["ln_logp_min"], 0),
        "min_ln_logit": _quiet_nan(np.nanmin, sr["ln_logit_min"], 0),
    }


def _curve(x: np.ndarray, stride: int) -> list:
    m = _quiet_nan(np.nanmean, x[::stride], 1)
    return [None if not np.isfinite(v) else round(float(v), 6) for v in m]


def _histogram_rows(rec: Recorder, key: str) -> list[dict]:
    h, total, count = HISTOGRAMS[key], rec.push_sum[key], rec.push_count[key]
    return [{f"log10_{h.by}": [float(lo), float(hi)], "tokens": int(c), "mean": float(v / c)}
            for lo, hi, c, v in zip(h.edges[:-1], h.edges[1:], count, total) if c > 0]


def summarize(recs: dict[str, Recorder], s: Setting, seeds: list[int], seconds: float) -> dict:
    """The JSON payload: setting, per method statistics with intervals, paired differences, curves."""
    stride = max(1, s.steps // 100)
    per_seed = {m: _per_seed(r) for m, r in recs.items()}
    methods = {}
    for m, rec in recs.items():
        methods[m] = {
            "hparams": dict(dgpo_ref.get_spec(m).resolve({})),
            **{k: bootstrap(v) for k, v in per_seed[m].items()},
            "pooled_region_fraction": rec.pooled_regions,
            **{key: _histogram_rows(rec, key) for key in HISTOGRAMS},
            **{f"{k}_change_after_ln_entry": {str(j): bootstrap(rec.after[k][j]) for j in AFTER_REPORTED
                                              if j < len(rec.after[k])} for k in rec.after},
            "curves": {k: _curve(rec.series[k], stride) for k in ("reward", "entropy", "min_logp", "ln_frac",
                                                                  "ln_logp_mean", "ln_logit_mean")},
        }
    paired = {}
    if "dgpo" in recs:
        for m in recs:
            if m != "dgpo":
                paired[f"dgpo-{m}"] = {k: bootstrap(per_seed["dgpo"][k] - per_seed[m][k])
                                       for k in ("final_reward", "mean_reward", "final_entropy")}
    return {
        "setting": asdict(s),
        "seeds": [seeds[0], seeds[-1]] if seeds == list(range(seeds[0], seeds[-1] + 1)) else seeds,
        "n_seeds": len(seeds),
        "curve_stride": stride,
        "wall_seconds": round(seconds, 1),
        "torch": torch.__version__,
        "methods": methods,
        "paired_dgpo_minus": paired,
    }


def _band(ax, x, y, label, color):
    mean, sd = _quiet_nan(np.nanmean, y, 1), _quiet_nan(np.nanstd, y, 1)
    half = 1.96 * sd / np.sqrt(np.maximum(np.isfinite(y).sum(1), 1))
    ax.plot(x, mean, label=label, color=color, lw=1.2)
    ax.fill_between(x, mean - half, mean + half, color=color, alpha=0.15, lw=0)


CURVE_PANELS = (  # (where, key, title): one panel each in <name>_curves.png
    ("series", "reward", "expected reward"),
    ("series", "entropy", "entropy (nats, mean over prompts, positions)"),
    ("series", "ln_frac", "fraction of the update's tokens in LN"),
    ("series", "min_logp", "lowest log π in the table"),
    ("series", "ln_logp_mean", "mean log π of the tokens in LN at that update"),
    ("series", "ln_logit_mean", "mean centred logit of the tokens in LN"),
    ("after", "logit", "centred logit change since the token first entered LN"),
    ("after", "logp", "log π change since the token first entered LN"),
)


def _law(method: str, r: np.ndarray, p_old: float = 0.5) -> np.ndarray:
    """V = p·W on LN from the registry (r < 1 − eps_low), NaN elsewhere so the line stops there."""
    eps_low = dgpo_ref.get_spec(method).resolve({})["eps_low"]
    p = torch.as_tensor(r * p_old, dtype=torch.float64)
    v = (p * dgpo_ref.token_weight(method, p, p_old, -1.0)).numpy()
    return np.where((r < 1 - eps_low) & (v > 0), v, np.nan)


def plot(recs: dict[str, Recorder], s: Setting, out: Path, name: str = "mechanism") -> list[Path]:
    """<name>_curves.png (mean over seeds, 95 % normal band) and <name>_push.png (|push| vs π)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    palette = plt.get_cmap("tab20").colors  # 20 colours: one per registry method (tab10 ran out at 11)
    colors = {m: palette[i % len(palette)] for i, m in enumerate(recs)}
    fig, axes = plt.subplots(2, 4, figsize=(19, 8), constrained_layout=True)
    for ax, (where, key, title) in zip(axes.flat, CURVE_PANELS):
        for m, rec in recs.items():
            y = getattr(rec, where)[key]
            _band(ax, np.arange(len(y)), y, m, colors[m])
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("optimizer update" if where == "series" else "updates since first LN entry")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(f"tabular softmax, {s.prompts} prompts x {s.length} positions x {s.vocab} tokens, "
                 f"staleness {s.staleness}, {s.minibatches} minibatch(es), {s.optimizer} lr {s.lr}; "
                 f"mean over {recs[next(iter(recs))].series['reward'].shape[1]} seeds, 95 % band", fontsize=10)
    paths = [out / f"{name}_curves.png"]
    fig.savefig(paths[0], dpi=80)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(13, 5), constrained_layout=True)
    for ax, (key, h) in zip(axes, HISTOGRAMS.items()):
        centres = 10 ** ((h.edges[:-1] + h.edges[1:]) / 2)
        seen = np.flatnonzero(sum(rec.push_count[key] for rec in recs.values()) > 0)
        if seen.size:  # the bins some method has data in, and one more below
            centres = centres[max(0, seen[0] - 1): seen[-1] + 1]
        for m, rec in recs.items():
            lo = max(0, seen[0] - 1) if seen.size else 0
            count, total = (x[lo: lo + len(centres)] for x in (rec.push_count[key], rec.push_sum[key]))
            ok = (count > 0) & (total > 0)
            ax.loglog(centres[ok], total[ok] / count[ok], "o-", label=m, color=colors[m], ms=3)
            if h.by == "r":  # the registry's own V(r) on LN (p_old 0.5, A −1), as a thin dashed line
                ax.loglog(centres, _law(m, centres), "--", color=colors[m], lw=0.7)
        ax.set_xlabel(f"{'π' if h.by == 'p' else 'r = π/π_old'} of the LN token (bin centre)")
        ax.set_ylabel(f"{h.label} on its own logit")
        ax.legend(fontsize=8)
    axes[0].set_title("push on LN tokens' logits vs π (methods with V = 0 on LN have no points)", fontsize=10)
    axes[1].set_title("push per unit advantage vs r; dashed: V(r) from dgpo_ref.token_weight", fontsize=10)
    paths.append(out / f"{name}_push.png")
    fig.savefig(paths[1], dpi=90)
    plt.close(fig)
    return paths


# ---------------------------------------------------------------- command line


def _fmt(stat: dict, scale: float = 1.0, digits: int = 3) -> str:
    """'mean [lo, hi]' of a bootstrap dict, or 'n/a' where no seed had a value."""
    if stat["mean"] is None:
        return "n/a"
    lo, hi = stat["ci95"]
    return f"{scale * stat['mean']:.{digits}f} [{scale * lo:.{digits}f}, {scale * hi:.{digits}f}]"


TABLE_COLUMNS = (  # (header, key in the method's row, scale, digits): the printed and documented table
    ("final reward", "final_reward", 1.0, 3),
    ("mean reward over the run", "mean_reward", 1.0, 3),
    ("final entropy", "final_entropy", 1.0, 3),
    ("LN % of tokens", "ln_frac", 100.0, 1),
    ("HP % of tokens", "hp_frac", 100.0, 1),
    ("lowest log π of an LN token", "min_ln_logp", 1.0, 2),
    ("lowest log π at the end", "final_min_logp", 1.0, 2),
)


def table(payload: dict) -> str:
    """Markdown table, one row per method: mean [95 % bootstrap interval] over seeds."""
    after = [j for j in AFTER_REPORTED if j <= min(AFTER_HORIZON, payload["setting"]["steps"])][1:3]
    heads = [h for h, *_ in TABLE_COLUMNS] + [f"logit change {j} updates after LN entry" for j in after]
    lines = ["| method | " + " | ".join(heads) + " |", "|---" * (len(heads) + 1) + "|"]
    for m, row in payload["methods"].items():
        cells = [_fmt(row[k], scale, d) for _, k, scale, d in TABLE_COLUMNS]
        cells += [_fmt(row["logit_change_after_ln_entry"][str(j)]) for j in after]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired_table(payload: dict) -> str:
    """Markdown table of DGPO − X, paired by seed (same initial table, correct sets and uniforms)."""
    keys = ("final_reward", "mean_reward", "final_entropy")
    lines = ["| pair | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for pair, row in payload["paired_dgpo_minus"].items():
        lines.append(f"| {pair} | " + " | ".join(_fmt(row[k]) for k in keys) + " |")
    return "\n".join(lines)


def _methods(text: str) -> list[str]:
    names = [m.strip() for m in text.split(",") if m.strip()] if text != "all" else list(dgpo_ref.LOSSES)
    bad = [m for m in names if m not in dgpo_ref.LOSSES]
    if bad or not names:
        raise CliError(f"--methods must be 'all' or a comma-separated list of {', '.join(dgpo_ref.LOSSES)}; "
                       f"got {text!r}")
    return names


def parse(argv: list[str] | None) -> tuple[Setting, list[str], list[int], Path, str]:
    d = Setting()
    ap = ArgumentParser(prog="python -m bench.mechanism", description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="all", help="'all' (every registry method) or e.g. dgpo,cispo")
    ap.add_argument("--seeds", type=int, default=50, help="seeds per method (default 50)")
    ap.add_argument("--first-seed", type=int, default=0, help="seeds are first-seed .. first-seed + seeds - 1")
    ap.add_argument("--out", type=Path, default=RESULTS, help="folder for <name>.json and the PNGs")
    ap.add_argument("--name", default="mechanism", help="file stem: <name>.json, <name>_curves.png, <name>_push.png")
    for f in fields(Setting):
        default = getattr(d, f.name)
        ap.add_argument(_flag(f.name), type=type(default), default=default,
                        help=f"{f.metadata['help']} (default {default})")
    a = ap.parse_args(argv)
    if a.seeds < 1:
        raise CliError(f"--seeds must be a positive integer, got {a.seeds}")
    s = Setting(**{f.name: getattr(a, f.name) for f in fields(Setting)})
    check_setting(s, a.seeds)
    if a.first_seed < 0:
        raise CliError(f"--first-seed must be >= 0, got {a.first_seed}")
    if not a.out.is_dir():
        raise CliError(f"--out {a.out} is not an existing folder")
    if not a.name.replace("_", "").replace("-", "").isalnum():
        raise CliError(f"--name must be letters, digits, '-' or '_', got {a.name!r}")
    return s, _methods(a.methods), list(range(a.first_seed, a.first_seed + a.seeds)), a.out, a.name


def run(s: Setting, methods: list[str], seeds: list[int], show_progress: bool = True) -> dict[str, Recorder]:
    from tqdm import tqdm

    with tqdm(total=len(methods) * s.steps, desc="mechanism", unit="update", disable=not show_progress) as bar:
        recs = {}
        for m in methods:
            bar.set_postfix_str(m)
            recs[m] = run_method(m, s, seeds, bar)
    return recs


def main(argv: list[str] | None = None) -> int:
    torch.set_num_threads(1)
    s, methods, seeds, out, name = parse(argv)
    t0 = time.time()
    recs = run(s, methods, seeds)
    payload = summarize(recs, s, seeds, time.time() - t0)
    payload["command"] = " ".join(["python -m bench.mechanism", *(argv if argv is not None else sys.argv[1:])])
    (out / f"{name}.json").write_text(json.dumps(payload, indent=1) + "\n")
    for p in plot(recs, s, out, name):
        print(f"wrote {p}")
    print(f"wrote {out / f'{name}.json'} ({payload['wall_seconds']} s)")
    print(table(payload))
    print(paired_table(payload))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except CliError as exc:
        print(f"python -m bench.mechanism: error: {exc}", file=sys.stderr)
        sys.exit(2)
