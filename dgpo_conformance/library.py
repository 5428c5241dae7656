"""The policy losses of verl 0.9.1 and TRL 1.16, each run by the library's own code, behind
dgpo_ref's keyword signature: what the report card (:mod:`dgpo_conformance.report`) checks.

:data:`LIBRARY_LOSSES` is the one table that says, for every policy loss the two libraries
register (docs/library-losses.md), which spec method it is checked against and under which
library name each of the method's hyper-parameters reaches the library's code; or, for a loss
that does not fit the per-token form, why. ``VERL.<key>`` and ``TRL.<key>`` are the callables
``dgpo conformance --impl dgpo_conformance.library:VERL.<key> --method <method>`` checks; both
import their library on the first call only.

What each shim wraps, and nothing else:

- verl: ``verl.trainer.ppo.core_algos.get_policy_loss_fn(name)`` (verl's own registry, looked up
  at every call) called as verl's actor calls it, ``fn(old_log_prob, log_prob, advantages,
  response_mask, loss_agg_mode, config)``, with ``config`` a real ``ActorConfig`` (verl's ``sapo``
  asserts that type) built from the drawn hyper-parameters under their verl names, and
  ``config.global_batch_info = {"dp_size": 1, "batch_num_tokens": normalizer}`` (the global token
  count the ``aggregation`` property passes; absent when none is).
- TRL: ``trl.trainer.grpo_trainer.GRPOTrainer._compute_loss(trainer, None, inputs)``, TRL's whole
  loss method, unbound, on a stand-in ``trainer`` with the attributes that method reads:
  ``args`` a copy of a real ``GRPOConfig(loss_type=...)`` (TRL's defaults, built once per loss
  type) with the drawn hyper-parameters set on it under their TRL names, the
  attributes ``GRPOTrainer.__init__`` derives from it (``epsilon_low``/``epsilon_high``,
  ``loss_type``, ``importance_sampling_level``, ``beta``, ``top_entropy_quantile``,
  ``off_policy_mask_threshold``, ``use_vllm``), TRL's own ``get_gamma_weights``, one process
  (``accelerator`` gathers and reduces nothing), one accumulation step, training mode, and
  ``_get_per_token_logps_and_entropies`` returning the ``log_prob`` under test (the model's
  forward pass is what it replaces). ``inputs["num_items_in_batch"]`` is the normalizer (TRL's
  ``dapo``/``cispo``/``vespo`` divide by it; default: the mask's token count);
  ``max_completion_length`` is the batch's width (``dr_grpo`` divides by it). TRL chooses the
  aggregation from ``loss_type``; ``loss_agg_mode`` is not TRL's to take and is ignored.

Neither shim returns the ``region/<R>`` metrics (the libraries name their metrics otherwise), so
the ``regions`` property is n/a for every library loss.
"""

from __future__ import annotations

import copy
import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from types import SimpleNamespace

VERL_VERSION = "0.9.1"
TRL_VERSION = "1.16"


@dataclass(frozen=True)
class LibraryLoss:
    """One policy loss of a library, as the report card runs it.

    ``method`` is the spec method it is checked against (None: it does not fit dgpo's per-token
    form, ``note`` says why); ``names`` maps each of the method's hyper-parameters to the
    library's name for it (None: it only cuts the regions, the library's loss has none; verl: an ``ActorConfig`` field, or ``rollout_correction.<field>`` of
    its ``policy_loss``; TRL: a ``GRPOConfig`` field); ``options`` are library settings the row
    fixes (not hyper-parameters of the method); ``note`` is what the reader needs to read the row.
    """

    library: str  # "verl" | "trl"
    key: str  # attribute of VERL / TRL, unique per library
    loss: str  # the library's name for the loss (verl loss_mode, TRL loss_type)
    method: str | None
    names: Mapping[str, str | None] = field(default_factory=dict)
    options: Mapping[str, object] = field(default_factory=dict)
    note: str = ""

    @property
    def target(self) -> str:
        return f"dgpo_conformance.library:{self.library.upper()}.{self.key}"

    @property
    def label(self) -> str:
        return f"{'verl' if self.library == 'verl' else 'TRL'} `{self.loss}`" + (
            f" ({', '.join(f'{k}={v}' for k, v in _flat(self.options).items())})" if self.options else "")


def _flat(options: Mapping) -> dict:
    out = {}
    for k, v in options.items():
        if isinstance(v, Mapping):
            out.update({f"{k}.{kk}": vv for kk, vv in v.items()})
        else:
            out[k] = v
    return out


_VERL_EPS = {"eps_low": "clip_ratio_low", "eps_high": "clip_ratio_high"}
_TRL_EPS = {"eps_low": "epsilon", "eps_high": "epsilon_high"}
_SEQ = "does not fit: token t's weight depends on the other tokens of its sequence"

#: every policy loss of verl 0.9.1 and TRL 1.16 (docs/library-losses.md), in report order
LIBRARY_LOSSES: tuple[LibraryLoss, ...] = (
    # --- verl 0.9.1: verl/trainer/ppo/core_algos.py, every @register_policy_loss
    LibraryLoss("verl", "vanilla", "vanilla", "grpo", {**_VERL_EPS, "dual_clip": "clip_ratio_c"},
                note="PPO clip with verl's dual clip (always on: spec dual_clip None is clip_ratio_c = inf)"),
    LibraryLoss("verl", "cispo", "cispo", "cispo", dict(_VERL_EPS),
                note="V = clip(r, 1 - clip_ratio_low, 1 + clip_ratio_high), detached, for either sign of A"),
    LibraryLoss("verl", "sapo", "sapo", "sapo", {**_VERL_EPS, "tau_pos": "tau_pos", "tau_neg": "tau_neg"},
                note="eps only cut the regions; verl aggregates seq-mean-token-mean whatever loss_agg_mode says"),
    LibraryLoss("verl", "gpg", "gpg", "gpg", dict(_VERL_EPS), note="V = 1 (old_log_prob unused)"),
    LibraryLoss("verl", "dppo_tv", "dppo_tv", "dppo_tv",
                {**_VERL_EPS, "delta_low": "clip_ratio_low", "delta_high": "clip_ratio_high",
                 "trunc": "clip_ratio_c"}, note="the TV mask's deltas are verl's clip_ratio_low/high"),
    LibraryLoss("verl", "dppo_kl", "dppo_kl", "dppo_kl",
                {**_VERL_EPS, "delta_low": "clip_ratio_low", "delta_high": "clip_ratio_high",
                 "trunc": "clip_ratio_c"}, note="the KL mask's deltas are verl's clip_ratio_low/high"),
    LibraryLoss("verl", "bypass_mode_ppo_clip", "bypass_mode", "grpo", {**_VERL_EPS, "dual_clip": "clip_ratio_c"},
                {"rollout_correction": {"loss_type": "ppo_clip", "rollout_is": "token"}},
                note="verl's vanilla on (log_prob, rollout log-prob); the IS weights are not applied"),
    LibraryLoss("verl", "bypass_mode_reinforce_token", "bypass_mode", "tis",
                {**_VERL_EPS, "trunc": "rollout_correction.rollout_is_threshold"},
                {"rollout_correction": {"loss_type": "reinforce", "rollout_is": "token"}},
                note="REINFORCE with token-level truncated IS, V = min(r, threshold)"),
    LibraryLoss("verl", "bypass_mode_reinforce_sequence", "bypass_mode", None,
                options={"rollout_correction": {"loss_type": "reinforce", "rollout_is": "sequence"}},
                note=f"{_SEQ}: the IS weight is the sequence's product of ratios (rollout_is='sequence', "
                     "verl's default); rollout_is_batch_normalize divides by the batch mean"),
    LibraryLoss("verl", "gspo", "gspo", None,
                note=f"{_SEQ}: the ratio is the sequence's geometric mean s_i, so the gradient on token t is A*s_i"),
    LibraryLoss("verl", "geo_mean", "geo_mean", None,
                note=f"{_SEQ}: GMPO's sequence ratio exp(mean_t clipped log r_t) and sequence-mean advantage"),
    LibraryLoss("verl", "clip_cov", "clip_cov", None,
                note="does not fit: zeroes the loss of tokens drawn at random among those whose batch "
                     "covariance (A - mean A)(log p - mean log p) lies in a band"),
    LibraryLoss("verl", "kl_cov", "kl_cov", None,
                note="does not fit: a KL penalty on the top-k tokens by batch covariance"),
    LibraryLoss("verl", "dro", "dro", None,
                note="does not fit: gradient (A - beta*log r) on log p depends on |A| and is nonzero at A = 0"),
    # --- TRL 1.16: GRPOTrainer._compute_loss, every loss_type
    LibraryLoss("trl", "dapo", "dapo", "grpo", {**_TRL_EPS, "dual_clip": "delta"},
                note="TRL's default loss_type; token sum / num_items_in_batch (the global token count): "
                     "token-mean"),
    LibraryLoss("trl", "bnpo", "bnpo", "grpo", {**_TRL_EPS, "dual_clip": "delta"},
                note="dapo's per-token loss; token sum / the local token count (no global normalizer)"),
    LibraryLoss("trl", "grpo", "grpo", "grpo", {**_TRL_EPS, "dual_clip": "delta"},
                note="dapo's per-token loss; per-sequence token mean, then mean over sequences"),
    LibraryLoss("trl", "dr_grpo", "dr_grpo", "grpo", {**_TRL_EPS, "dual_clip": "delta"},
                note="dapo's per-token loss; token sum / (sequences x max_completion_length)"),
    LibraryLoss("trl", "luspo", "luspo", "grpo", {**_TRL_EPS, "dual_clip": "delta"},
                note="dapo's per-token loss; per-sequence token sum, then mean over sequences"),
    LibraryLoss("trl", "cispo", "cispo", "tis", {"eps_low": None, "eps_high": None, "trunc": "epsilon_high"},
                note="V = min(r, epsilon_high), an absolute cap, no floor: the spec's tis, not dgpo's cispo"),
    LibraryLoss("trl", "sapo", "sapo", "sapo", {"eps_low": None, "eps_high": None, "tau_pos": "sapo_temperature_pos",
                                                "tau_neg": "sapo_temperature_neg"},
                note="eps only cut the regions; TRL aggregates sapo as grpo (per-sequence token mean)"),
    LibraryLoss("trl", "vespo", "vespo", "vespo",
                {"eps_low": None, "eps_high": None, "k_pos": "vespo_k_pos", "lambda_pos": "vespo_lambda_pos",
                 "k_neg": "vespo_k_neg",
                 "lambda_neg": "vespo_lambda_neg"},
                note="the weight is phi of the sequence's ratio prod_t r_t: the spec's per-token form is "
                     "exact for one-token completions only"),
    LibraryLoss("trl", "sequence_level", "any", None, options={"importance_sampling_level": "sequence"},
                note=f"{_SEQ}: GSPO's sequence ratio exp(mean_t log r_t) replaces r_t in every loss_type"),
)


def _rows(library: str) -> dict[str, LibraryLoss]:
    return {row.key: row for row in LIBRARY_LOSSES if row.library == library and row.method is not None}


def _library_names(row: LibraryLoss, hp: Mapping) -> dict[str, object]:
    """The drawn hyper-parameters under the library's names (ValueError for one without a name)."""
    out: dict[str, object] = {}
    for name, value in hp.items():
        if name not in row.names:
            raise ValueError(f"{row.label}: spec hyper-parameter {name!r} has no {row.library} name in "
                             "dgpo_conformance.library.LIBRARY_LOSSES (add it to the row's names)")
        lib = row.names[name]
        if lib is None:  # cuts the regions only; the library has no such setting here
            continue
        if lib in out and out[lib] != value:
            continue  # eps and the DPPO deltas share verl's clip_ratio_low/high: the method's own name wins
        out[lib] = value
    return out


# ---------------------------------------------------------------------------------------------
# verl
# ---------------------------------------------------------------------------------------------
def verl_actor_config(row: LibraryLoss, hp: Mapping, normalizer: float | None):
    """verl's ``ActorConfig`` for ``row`` with hyper-parameters ``hp`` (spec names)."""
    from verl.trainer.config.algorithm import RolloutCorrectionConfig
    from verl.workers.config.actor import ActorConfig, PolicyLossConfig

    # the method's own hyper-parameters first: they override eps where both map to one verl field
    own = {k: v for k, v in hp.items() if k not in _VERL_EPS}
    names = _library_names(row, {**own, **{k: v for k, v in hp.items() if k in _VERL_EPS}})
    top, correction = {}, dict(row.options.get("rollout_correction", {}))
    for lib, value in names.items():
        if lib == "clip_ratio_c" and value is None:
            value = math.inf  # verl's dual clip cannot be switched off; inf never binds
        if lib.startswith("rollout_correction."):
            correction[lib.removeprefix("rollout_correction.")] = value
        else:
            top[lib] = value
    policy_loss = PolicyLossConfig(loss_mode=row.loss, **(
        {"rollout_correction": RolloutCorrectionConfig(**correction)} if correction else {}))
    config = ActorConfig(strategy="fsdp", rollout_n=1, ppo_micro_batch_size_per_gpu=1, policy_loss=policy_loss,
                         **top)
    config.global_batch_info.update(dp_size=1, **({} if normalizer is None else {"batch_num_tokens": normalizer}))
    return config


class _VerlLoss:
    def __init__(self, row: LibraryLoss) -> None:
        self.row = row
        self.__name__ = f"verl_{row.key}"

    def __call__(self, *, log_prob, old_log_prob, advantages, response_mask, loss_agg_mode="token-mean",
                 normalizer=None, **hp):
        from verl.trainer.ppo.core_algos import get_policy_loss_fn

        fn = get_policy_loss_fn(self.row.loss)
        config = verl_actor_config(self.row, hp, normalizer)
        return fn(old_log_prob, log_prob, advantages, response_mask, loss_agg_mode, config)


# ---------------------------------------------------------------------------------------------
# TRL
# ---------------------------------------------------------------------------------------------
class _OneProcess:
    """accelerate's Accelerator as one process sees it: gather/reduce return their input."""

    num_processes = 1
    sync_gradients = True

    def gather(self, x):
        return x

    gather_for_metrics = gather

    def reduce(self, x, reduction="sum"):
        return x


@cache
def _grpo_config(loss_type: str, options: tuple):
    """``GRPOConfig(loss_type=...)`` with TRL's defaults, built once per loss type (building one
    sets up a device, seconds under load)."""
    from trl import GRPOConfig

    return GRPOConfig(output_dir="/tmp/dgpo-conformance-trl", report_to=[], bf16=False, use_cpu=True,
                      loss_type=loss_type, **dict(options))


def trl_args(row: LibraryLoss, hp: Mapping):
    """A copy of the row's ``GRPOConfig`` with the drawn hyper-parameters set under their TRL names."""
    args = copy.copy(_grpo_config(row.loss, tuple(sorted(row.options.items()))))
    for name, value in _library_names(row, hp).items():
        if not hasattr(args, name):
            raise ValueError(f"{row.label}: GRPOConfig has no field {name!r} (LIBRARY_LOSSES names it)")
        setattr(args, name, value)
    return args


def trl_stand_in(row: LibraryLoss, hp: Mapping, log_prob, width: int):
    """The stand-in ``self`` of ``GRPOTrainer._compute_loss`` (module doc), attributes as
    ``GRPOTrainer.__init__`` sets them from the ``GRPOConfig``."""
    from trl.trainer.grpo_trainer import GRPOTrainer

    args = trl_args(row, hp)
    return SimpleNamespace(
        args=args, loss_type=args.loss_type, importance_sampling_level=args.importance_sampling_level,
        epsilon_low=args.epsilon, epsilon_high=args.epsilon if args.epsilon_high is None else args.epsilon_high,
        beta=args.beta, top_entropy_quantile=args.top_entropy_quantile,
        off_policy_mask_threshold=args.off_policy_mask_threshold, use_vllm=args.use_vllm,
        vllm_importance_sampling_correction=args.vllm_importance_sampling_correction,
        aux_loss_enabled=False, _entropy_bonus_enabled=False, model=SimpleNamespace(training=True),
        current_gradient_accumulation_steps=1, accelerator=_OneProcess(), max_completion_length=width,
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
        get_gamma_weights=GRPOTrainer.get_gamma_weights, get_off_policy_mask=GRPOTrainer.get_off_policy_mask,
        get_high_entropy_mask=None,
        _get_per_token_logps_and_entropies=lambda *a, **k: (log_prob, log_prob.detach() * 0, None),
    )


class _TrlLoss:
    def __init__(self, row: LibraryLoss) -> None:
        self.row = row
        self.__name__ = f"trl_{row.key}"

    def __call__(self, *, log_prob, old_log_prob, advantages, response_mask, loss_agg_mode="token-mean",
                 normalizer=None, **hp):
        import torch
        from trl.trainer.grpo_trainer import GRPOTrainer

        rows, width = response_mask.shape
        ids = torch.zeros(rows, width, dtype=torch.long)
        count = response_mask.sum() if normalizer is None else torch.as_tensor(normalizer, dtype=response_mask.dtype)
        inputs = {"prompt_ids": ids[:, :1], "prompt_mask": torch.ones(rows, 1, dtype=torch.long),
                  "completion_ids": ids, "completion_mask": response_mask, "advantages": advantages,
                  "old_per_token_logps": old_log_prob, "num_items_in_batch": count}
        trainer = trl_stand_in(self.row, hp, log_prob, width)
        return GRPOTrainer._compute_loss(trainer, None, inputs), {}


VERL = SimpleNamespace(**{key: _VerlLoss(row) for key, row in _rows("verl").items()})
TRL = SimpleNamespace(**{key: _TrlLoss(row) for key, row in _rows("trl").items()})
