"""The training loop, top to bottom (shared/DESIGN.md, "The trainer's loop").

One step: sample prompts -> generate G completions each (keeping the sampler's log-probs) -> score
with a verifiable reward -> group advantages -> old log-probs from the training model -> shuffle
into ``mini_batches`` and run ``epochs`` passes of optimizer steps with a ``dgpo_ref`` loss -> push
the new weights into the rollout engine -> log one ``metrics.jsonl`` line per optimizer step ->
evaluate every ``eval_every`` steps (``eval.jsonl``) -> checkpoint atomically.

How it departs from the paper's setup (arXiv 2603.14389, verl on GPUs): one process, no KL term, no
entropy bonus, and on a CPU the defaults are scaled down (SmolLM2-135M, arithmetic, 16 new tokens).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path

import torch
from tqdm import tqdm

import dgpo_ref

from . import checkpoint, plot, runlog
from .config import TrainConfig, resolve_device, resolve_dtype, validate
from .evaluation import evaluate_splits, initial_eval_key
from .models import check_model_name, load_policy, resolve_model
from .rewards import REWARDS
from .rollout import build_rollout, choose_backend
from .staleness import StaleWeights
from .tasks import build_task, prompt_probe
from .update import Batch, attention, choose_attention, old_logprobs, optimizer_step, plan_minibatches

truncate_log = runlog.truncate_log

ADVANTAGES = {"grpo": dgpo_ref.grpo_advantages, "drgrpo": dgpo_ref.drgrpo_advantages}
RUN_FILES = ("config.json", "metrics.jsonl", "eval.jsonl", "checkpoint", ".checkpoint.old", ".checkpoint.tmp",
             "metrics.png", "eval_problems")


class RunError(ValueError):
    """A run that cannot start (bad folder, nothing to resume); the message says what to do."""


# --- set-up ----------------------------------------------------------------------------------------
def prepare_run_dir(run_dir: Path, resume: bool, overwrite: bool) -> None:
    if run_dir.exists() and not run_dir.is_dir():
        raise RunError(f"--output {run_dir}: not a folder (a file of that name exists); name a folder for the run")
    holds_run = any((run_dir / f).exists() for f in ("config.json", "metrics.jsonl", "checkpoint"))
    if resume:
        if checkpoint.latest(run_dir) is None:
            raise RunError(f"--resume: {run_dir} holds no checkpoint to resume from")
        return check_writable(run_dir)
    if holds_run and not overwrite:
        raise RunError(f"output folder {run_dir} already holds a run; pass --resume to continue it "
                       f"or --overwrite to replace it")
    if run_dir.is_dir():
        check_writable(run_dir)
    for name in RUN_FILES:
        path = run_dir / name
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    check_writable(run_dir)


def check_writable(run_dir: Path) -> None:
    """Find a read-only folder (or a full disk) before the model loads, not at the first log line."""
    from clikit import os_error_line

    probe = run_dir / ".dgpo-write-probe"
    try:
        probe.write_bytes(b"probe")
        probe.unlink()
    except OSError as exc:
        raise RunError(f"--output {run_dir}: cannot write there ({os_error_line(exc)})") from None


USER_SLOT = "DGPO-QUESTION-SLOT"
"""Stands for the question when the chat template is rendered, so the template's own text and the
user's text can be tokenized apart (see ``make_encoder``)."""


def make_encoder(tok, chat_template: bool, system_prompt: str = "default"):
    """question -> prompt token ids. The question is user text: a special-token string in it (say
    ``<|im_end|>``) is split into ordinary tokens (``split_special_tokens``) and never becomes the
    control token, so no prompt can close its user turn; the template's own markers are parsed as
    usual. A question without such a string is tokenized in one call, exactly as before."""
    system = [] if system_prompt == "default" else [{"role": "system", "content": system_prompt}]
    specials = {t.content for t in tok.added_tokens_decoder.values() if t.special} | set(tok.all_special_tokens)

    def templated(content: str) -> str:
        return tok.apply_chat_template([*system, {"role": "user", "content": content}], tokenize=False,
                                       add_generation_prompt=True)

    def encode(question: str) -> list[int]:
        if not (chat_template and tok.chat_template):
            return tok(question, split_special_tokens=True).input_ids
        if not any(s in question for s in specials):
            return tok(templated(question), add_special_tokens=False).input_ids
        head, tail = templated(USER_SLOT).split(USER_SLOT)
        return [*tok(head, add_special_tokens=False).input_ids,
                *tok(question, add_special_tokens=False, split_special_tokens=True).input_ids,
                *tok(tail, add_special_tokens=False).input_ids]

    return encode


def check_context(path, cfg: TrainConfig, task) -> int:
    """The longest prompt in tokens; RunError when it plus ``max_new_tokens`` exceeds the model's
    context (``max_position_embeddings``). Reads only the tokenizer and config.json, so it runs
    before the run folder is made."""
    from transformers import AutoConfig, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    encode = make_encoder(tok, cfg.chat_template, cfg.system_prompt)
    max_prompt = max(len(encode(p.prompt)) for p in prompt_probe(task))
    context = getattr(AutoConfig.from_pretrained(path), "max_position_embeddings", None)
    if context and max_prompt + cfg.max_new_tokens > context:
        raise RunError(f"the longest prompt ({max_prompt} tokens) plus max_new_tokens ({cfg.max_new_tokens}) "
                       f"exceeds the context of model {cfg.model!r} ({context} tokens); lower max_new_tokens "
                       f"or drop the long prompts")
    return max_prompt


def lr_factor(cfg: TrainConfig, s: int) -> float:
    """Multiplier of ``cfg.lr`` for the optimizer step after ``s`` completed ones: linear warm-up
    times a hold at 1, a linear fall over ``lr_decay_steps`` from ``lr_decay_start``, then
    ``min_lr_ratio``."""
    warm = min(1.0, (s + 1) / (cfg.warmup_steps + 1)) if cfg.warmup_steps else 1.0
    into = s - cfg.lr_decay_start
    if into < 0:
        return warm
    frac = min(1.0, (into + 1) / cfg.lr_decay_steps) if cfg.lr_decay_steps else 1.0
    return warm * (1.0 - (1.0 - cfg.min_lr_ratio) * frac)


def make_optimizer(model, cfg: TrainConfig):
    # fused where torch has the kernel for the parameters' device and dtype (CPU and CUDA): one pass
    # instead of a dozen kernels per tensor (bench/update_step.py); the same update up to rounding
    # order and the same state keys, so a checkpoint saved before this loads (and keeps the
    # foreach step it was saved with: load_state_dict restores the param-group flags)
    kw = dict(lr=cfg.lr, betas=tuple(cfg.adam_betas), weight_decay=cfg.weight_decay)
    try:
        opt = torch.optim.AdamW(model.parameters(), fused=True, **kw)
    except RuntimeError:
        opt = torch.optim.AdamW(model.parameters(), **kw)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(cfg, s))
    return opt, sched


class MetricsLog:
    """Appends JSON lines; optionally mirrors scalars to TensorBoard or W&B."""

    def __init__(self, run_dir: Path, cfg: TrainConfig):
        self.run_dir, self.sink = run_dir, None
        if cfg.log_to == "tensorboard":
            from torch.utils.tensorboard import SummaryWriter

            self.sink = SummaryWriter(str(run_dir / "tensorboard"))
        elif cfg.log_to == "wandb":
            import wandb

            self.sink = wandb.init(project="dgpo", config=cfg.to_dict(), dir=str(run_dir))

    def write(self, file: str, record: dict) -> None:
        runlog.append_line(self.run_dir / file, record)
        scalars = {k: v for k, v in record.items() if isinstance(v, (int, float))}
        if self.sink is not None and hasattr(self.sink, "add_scalar"):
            for k, v in scalars.items():
                self.sink.add_scalar(k, v, record["step"])
        elif self.sink is not None:
            self.sink.log(scalars, step=record["step"])


def check_resume(run_dir: Path, cfg: TrainConfig) -> Path:
    """The checkpoint to resume from, once it is known to be readable and to leave steps to do."""
    ckpt = checkpoint.latest(run_dir)
    done = checkpoint.peek_state(ckpt)["step"]
    if done >= cfg.steps:
        raise RunError(f"--resume: the run in {run_dir} has done {done} steps and steps={cfg.steps}; nothing to "
                       f"do (to train on, pass --set steps=N with N > {done}); nothing was changed")
    return ckpt


def resume_logs(run_dir: Path, cfg: TrainConfig, state: dict) -> None:
    """Cut the logs back to the checkpoint. The evaluation logged at the checkpoint's own step is kept
    unless the loop will run it again (its step is a multiple of ``eval_every``): an end-of-run or
    out-of-time evaluation at another step is part of the history."""
    truncate_log(run_dir / "metrics.jsonl", state["opt_step"])
    again = bool(cfg.eval_every) and state["step"] % cfg.eval_every == 0
    truncate_log(run_dir / "eval.jsonl", state["opt_step"] - again)


def load_resumed(ckpt: Path, cfg: TrainConfig, device: str):
    """The model of the checkpoint; a damaged one is one line naming it (and nothing is changed)."""
    try:
        return load_policy(ckpt, "float32" if cfg.autocast else cfg.dtype, device)
    except Exception as exc:  # noqa: BLE001 (safetensors, json and OS errors alike mean "cannot read")
        raise checkpoint.CheckpointError(f"--resume: the model in {ckpt} cannot be loaded ({type(exc).__name__}: "
                                         f"{(str(exc).splitlines() or [''])[0][:160]}); nothing was changed") from None


def check_sink(cfg: TrainConfig) -> None:
    import importlib.util

    module = {"tensorboard": "tensorboard", "wandb": "wandb"}.get(cfg.log_to)
    if module and importlib.util.find_spec(module) is None:
        raise RunError(f"log_to={cfg.log_to!r} needs the package {module!r} installed")


# --- one step ----------------------------------------------------------------------------------------
def _sample_groups(engine, encode, decode, task, state, cfg: TrainConfig, seed: int):
    """One round: ``prompts_per_step`` prompts from the stream, ``group_size`` completions each, rewarded."""
    problems = [task.train_problem(state["position"] + i) for i in range(cfg.prompts_per_step)]
    state["position"] += cfg.prompts_per_step
    prompts = [encode(p.prompt) for p in problems]
    outs = engine.generate(prompts, cfg.group_size, temperature=cfg.temperature, top_p=cfg.top_p,
                           max_new_tokens=cfg.max_new_tokens, seed=seed)
    reward_fn = REWARDS[cfg.reward]
    answers = [p.answer for p in problems for _ in range(cfg.group_size)]
    rewards = torch.tensor([reward_fn(decode(o.token_ids), a) for o, a in zip(outs, answers)])
    g = cfg.group_size
    return [(prompts[i], outs[i * g : (i + 1) * g], rewards[i * g : (i + 1) * g]) for i in range(len(prompts))]


def rollout_batch(engine, encode, decode, task, state, cfg: TrainConfig, seed: int):
    """The step's batch of ``prompts_per_step`` groups. With ``filter_groups``, rounds of prompts are
    sampled (round r with seed ``seed + r · 1 000 000 007``) until that many groups have differing
    rewards or ``max_sample_rounds`` ran out; the batch takes the first such groups in sampling order,
    then equal-reward groups if it is still short. The statistics cover everything sampled."""
    groups, kept, rounds = [], [], 0
    while rounds < (cfg.max_sample_rounds if cfg.filter_groups else 1):
        new = _sample_groups(engine, encode, decode, task, state, cfg, seed + rounds * 1_000_000_007)
        groups += new
        rounds += 1
        kept = [x for x in groups if not cfg.filter_groups or bool((x[2] != x[2][0]).any())]
        if len(kept) >= cfg.prompts_per_step:
            break
    filled = max(0, cfg.prompts_per_step - len(kept))
    chosen = kept[: cfg.prompts_per_step] + [x for x in groups if not any(x is k for k in kept)][:filled]
    rewards = torch.stack([r for _, _, r in chosen])
    adv = ADVANTAGES[cfg.advantage](rewards).reshape(-1)
    outs = [o for _, os, _ in chosen for o in os]
    batch = Batch.build([p for p, os, _ in chosen for _ in os], [o.token_ids for o in outs],
                        [o.logprobs for o in outs], adv)
    every = [o for _, os, _ in groups for o in os]
    all_rewards = torch.cat([r for _, _, r in groups])
    lengths = torch.tensor([len(o.token_ids) for o in every], dtype=torch.float32)
    stats = {"reward/mean": float(all_rewards.mean()), "accuracy": float((all_rewards >= 1).float().mean()),
             "response_length/mean": float(lengths.mean()),
             "response_length/clip_frac": sum(not o.finished for o in every) / len(every),
             "tokens": float(lengths.sum())}
    if cfg.filter_groups:
        mixed = sum(bool((r != r[0]).any()) for _, _, r in groups)
        stats.update({"groups/sampled": float(len(groups)), "groups/mixed_frac": mixed / len(groups),
                      "groups/filled": float(filled), "sample_rounds": float(rounds)})
    return batch, stats


def update_phase(model, opt, sched, batch: Batch, cfg: TrainConfig, pad_id: int, seed: int) -> list[dict]:
    """``epochs`` passes of ``mini_batches`` optimizer steps over ``batch``. π_old is the sampler's
    (``old_logprobs=sampler``) or recomputed: the first mini-batch from its own forward (exactly on
    policy), the rest of the first epoch beforehand, on the micro-batches the update will use."""
    plan = plan_minibatches(len(batch), cfg, seed)
    impl = choose_attention(model, cfg, batch)  # one kernel for π_old and the update: their shapes match too
    with attention(model, impl):
        t = time.perf_counter()
        recompute = cfg.old_logprobs == "recompute"
        if recompute:
            old_logprobs(model, batch, cfg, pad_id, plan[0][1:])
        else:
            batch.old_logprobs = batch.sampler_logprobs.clone()
        t_old = time.perf_counter() - t
        records = []
        for epoch, minibatches in enumerate(plan):
            for mb, idx in enumerate(minibatches):
                t = time.perf_counter()
                m = optimizer_step(model, opt, sched, batch, idx, cfg, pad_id,
                                   on_policy=recompute and epoch == mb == 0)
                m.update({"epoch": epoch, "minibatch": mb, "time/update": time.perf_counter() - t, "kl": m["kl/k3"],
                          "time/old_logprob": t_old, "attention_eager": float(impl == "eager")})
                records.append(m)
    return records


# --- the loop ------------------------------------------------------------------------------------------
def train(cfg: TrainConfig, run_dir: Path, *, resume: bool = False, overwrite: bool = False) -> dict:
    """Train per ``cfg`` into ``run_dir``; returns the last evaluation. Bad input raises before heavy work."""
    t0 = time.time()
    if cfg.dtype == "auto":  # a TrainConfig built by hand (build_config resolves it)
        cfg = dataclasses.replace(cfg, dtype=resolve_dtype(cfg.dtype, cfg.device))
    validate(cfg)
    check_model_name(cfg.model)
    check_sink(cfg)
    backend = choose_backend(cfg.backend)
    task = build_task(cfg)
    path = resolve_model(cfg.model)
    max_prompt = check_context(path, cfg, task)
    prepare_run_dir(run_dir, resume, overwrite)
    ckpt = check_resume(run_dir, cfg) if resume else None
    device = resolve_device(cfg.device)
    model, tok = load_resumed(ckpt, cfg, device) if ckpt else load_policy(path, "float32" if cfg.autocast else cfg.dtype,
                                                                          device)
    opt, sched = make_optimizer(model, cfg)
    state = {"step": 0, "opt_step": 0, "position": 0}
    if ckpt is not None:
        state = checkpoint.load_state(ckpt, opt, sched)
        resume_logs(run_dir, cfg, state)
    encode = make_encoder(tok, cfg.chat_template, cfg.system_prompt)
    decode = lambda ids: tok.decode(ids, skip_special_tokens=True)  # noqa: E731
    engine = build_rollout(backend, model, tok, ckpt or path, cfg, max_prompt + 64)
    stale = StaleWeights(cfg.staleness)
    if ckpt is not None:
        stale.load(ckpt)
    runlog.write_atomic(run_dir / "config.json", json.dumps({**cfg.to_dict(), "resolved_backend": backend,
                                                             "resolved_device": device,
                                                             "task_report": getattr(task, "report", {})}, indent=2))
    log = MetricsLog(run_dir, cfg)

    eval_time = [0.0]  # seconds spent evaluating: train_elapsed_s leaves it out

    def run_eval() -> dict:
        t_eval = time.time()
        cache = None
        if cfg.eval_cache and state["opt_step"] == 0:
            key = initial_eval_key(cfg, task.splits, backend=backend, device=device, model_path=path)
            cache = Path(cfg.eval_cache) / f"step0_{key}.json"
        ev = evaluate_splits(engine, encode, task.splits, cfg, decode=decode,
                             out_dir=run_dir / "eval_problems", step=state["opt_step"], cache=cache)
        eval_time[0] += time.time() - t_eval
        log.write("eval.jsonl", {"step": state["opt_step"], "iteration": state["step"], "elapsed_s": time.time() - t0,
                                 "train_elapsed_s": time.time() - t0 - eval_time[0],
                                 "eval_s": time.time() - t_eval, **ev})
        return ev

    last_eval: dict = {}
    bar = tqdm(total=cfg.steps, initial=state["step"], disable=not cfg.progress, desc=f"dgpo train ({cfg.loss})")
    def over_time() -> bool:
        return bool(cfg.max_minutes) and time.time() - t0 > 60 * cfg.max_minutes

    while state["step"] < cfg.steps:
        redraw = False  # metrics.png, once per iteration that evaluated or saved (a draw takes ~1-3 s)
        if cfg.eval_every and state["step"] % cfg.eval_every == 0:
            last_eval, redraw = run_eval(), True
            if over_time():  # this evaluation ran past max_minutes: it is the last one (no iteration after it)
                checkpoint.save(run_dir, model, tok, opt, sched, dict(state), extra=stale.save)
                plot.refresh(run_dir)
                break
        seed = cfg.seed * 1_000_003 + state["step"]
        t = time.perf_counter()
        stale.record(model)
        with stale.sampling(model):  # the weights of step t - staleness (the current ones by default)
            if cfg.staleness:
                engine.push_weights(model)
            batch, stats = rollout_batch(engine, encode, decode, task, state, cfg, seed)
        engine.sleep()
        t_roll = time.perf_counter() - t
        records = update_phase(model, opt, sched, batch, cfg, tok.pad_token_id, seed)
        t = time.perf_counter()
        engine.push_weights(model)
        t_push = time.perf_counter() - t
        state["step"] += 1
        common = {**stats, "iteration": state["step"], "time/rollout": t_roll, "time/push": t_push, "tokens_per_s": stats["tokens"] / max(t_roll, 1e-9)}
        for r in records:
            state["opt_step"] += 1
            log.write("metrics.jsonl", {"step": state["opt_step"], **common, **r, "elapsed_s": time.time() - t0,
                                        "train_elapsed_s": time.time() - t0 - eval_time[0]})
        bar.update(1)
        bar.set_postfix(reward=f"{stats['reward/mean']:.2f}", acc=f"{stats['accuracy']:.2f}",
                        eval=f"{next(iter(last_eval.values()), float('nan')):.2f}")
        out_of_time = over_time()
        if (cfg.save_every and state["step"] % cfg.save_every == 0) or out_of_time or state["step"] == cfg.steps:
            if cfg.eval_every and (state["step"] == cfg.steps or out_of_time):
                last_eval = run_eval()
            checkpoint.save(run_dir, model, tok, opt, sched, dict(state), extra=stale.save)
            redraw = True
        if redraw:
            plot.refresh(run_dir)
        if out_of_time:
            break
    bar.close()
    return last_eval
