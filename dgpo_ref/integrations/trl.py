"""The verified losses in TRL: ``DGPOConfig(GRPOConfig)`` and ``DGPOTrainer(GRPOTrainer)``.

``DGPOTrainer`` changes one thing in GRPOTrainer: the per-token policy loss, which comes from
``dgpo_ref.policy_loss(config.loss_name, ...)`` (any method of ``dgpo_ref.LOSSES``; default
``dgpo``) instead of TRL's loss ladder. Everything around it is TRL's, with TRL's own helpers:
log-probs and entropies (``_get_per_token_logps_and_entropies``), the tool mask, the
high-entropy mask, the off-policy sequence mask, vLLM's importance-sampling correction, the KL
term against the reference model (with its bias correction) and the normalization that
``loss_type`` selects. TRL multiplies the per-token loss by the masks and the IS ratio; those
factors are ≥ 0 and a method's surrogate depends on the advantage only through its sign, so they
are folded into the advantages exactly. TRL's normalizations are dgpo_ref aggregation modes:

| TRL ``loss_type`` | TRL's formula (train; divide by 1 instead of GA in eval) | dgpo_ref mode, normalizer |
|---|---|---|
| ``grpo`` | mean over rows of Σ_t l·mask / len_i, / GA | seq-mean-token-mean, B·GA |
| ``bnpo`` | Σ l·mask / Σ mask, / GA | token-mean, Σ mask·GA |
| ``dr_grpo`` | Σ l·mask / (B·max_completion_length), / GA | seq-mean-token-sum-norm, B·GA |
| ``dapo`` (TRL's default) | Σ l·mask / (num_items_in_batch/processes·GA/steps_per_generation) | token-mean, that count |

TRL's ``loss_type="cispo"`` is a different loss from dgpo_ref's ``cispo`` with TRL's epsilons:
TRL weights each token by min(r, epsilon_high), an *absolute* cap (TRL recommends 5.0) with no
floor, while dgpo_ref's cispo clips r to [1 − eps_low, 1 + eps_high]. ``loss_type="cispo"`` asks
for TRL's semantics, so it is mapped (``_trl_cispo``): loss_name cispo, eps_high = epsilon_high − 1,
eps_low = ``NO_FLOOR`` (the largest float below 1: a floor at 1.1e-16, i.e. none for any log-ratio
above −36.7), TRL's ``dapo`` normalization; the gradient equals TRL's own cispo loss. With
``loss_type="dapo"`` and ``loss_name="cispo"`` the epsilons keep dgpo_ref's meaning.

Metrics: dgpo_ref's ``region/<R>`` fractions (docs/methods.md) and, beside them, TRL's own names
for the same counts so that TRL dashboards keep working: ``clip_ratio/low_mean`` (LN),
``clip_ratio/high_mean`` (HP), ``clip_ratio/region_mean`` (LN + HP), ``clip_ratio/low_min`` and
``clip_ratio/high_max`` (over sequences), and with ``loss_type="cispo"`` ``cispo_clip_ratio`` (HP).

TRL's private method names change between releases, so this module supports exactly the range
in ``SUPPORTED_TRL`` and refuses to import with any other TRL. TRL features that act on its own
loss ladder (``delta``, sequence-level importance sampling, the entropy bonus, the other loss
types) are rejected when the config is built, never silently ignored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, make_dataclass
from typing import Any, Optional

import torch
import trl
from packaging.version import Version
from trl import GRPOConfig, GRPOTrainer

from dgpo_ref import LOSSES, REGIONS, classify, policy_loss, token_weights
from dgpo_ref.hparams import DEFAULTS, DOMAINS, NAMES, kind
from dgpo_ref.method import HP, LN

SUPPORTED_TRL = ("1.16.0", "1.17.0")
"""TRL versions v with SUPPORTED_TRL[0] <= v < SUPPORTED_TRL[1] (GRPOTrainer internals read here)."""

EXTRA_HPARAMS = tuple(k for k in NAMES if k not in ("eps_low", "eps_high"))
"""dgpo_ref hyper-parameters beyond TRL's epsilon/epsilon_high, from the spec records: ``DGPOConfig``
has a field for each, made from the records (tests/integrations/trl checks it)."""

# TRL inputs passed through to _get_per_token_logps_and_entropies, as GRPOTrainer._compute_loss does.
_MODEL_INPUTS = ("pixel_values", "image_grid_thw", "num_images", "pixel_attention_mask", "spatial_shapes",
                 "num_tiles", "image_sizes", "token_type_ids", "mm_token_type_ids", "image_position_ids")


def check_trl_version(version: str) -> None:
    """ImportError naming the supported range when ``version`` is outside it."""
    low, high = SUPPORTED_TRL
    if not Version(low) <= Version(version) < Version(high):
        raise ImportError(
            f"dgpo_ref.integrations.trl supports trl>={low},<{high} (found trl {version}): it reuses "
            f"GRPOTrainer internals that change between releases; install 'dgpo[trl]'"
        )


check_trl_version(trl.__version__)


@dataclass
class _DGPOConfigBase(GRPOConfig):
    """GRPOConfig plus ``loss_name``; :data:`DGPOConfig` adds a field per hyper-parameter."""

    loss_name: str | None = field(default=None, metadata={
        "help": f"dgpo_ref method: one of {', '.join(LOSSES)} (default dgpo; cispo with loss_type='cispo')"})

    def __post_init__(self):
        super().__post_init__()
        if self.loss_name is None:
            self.loss_name = "cispo" if self.loss_type == "cispo" else "dgpo"
        _check_supported(self)
        self.loss_hparams()

    def loss_hparams(self) -> dict[str, Any]:
        """The method's hyper-parameters, validated against its domains (ValueError names the bad one)."""
        if self.loss_name not in LOSSES:
            raise ValueError(f"loss_name={self.loss_name!r} is not a dgpo_ref method; choose one of {', '.join(LOSSES)}")
        eps_high = self.epsilon if self.epsilon_high is None else self.epsilon_high
        extra = {k: getattr(self, k) for k in EXTRA_HPARAMS if getattr(self, k) is not None}
        hp = {"eps_low": self.epsilon, "eps_high": eps_high, **extra}
        if self.loss_type == "cispo":
            hp = _trl_cispo(self.loss_name, hp)
        LOSSES[self.loss_name].resolve(hp)
        return hp


def _hparam_field(name: str) -> tuple[str, Any, Any]:
    """The DGPOConfig field of a dgpo_ref hyper-parameter (None: the method's default), from the records."""
    integer, _ = kind(name)
    users = [method for method, hp in DEFAULTS.items() if name in hp]
    text = DOMAINS[users[0]][name].text
    defaults = ", ".join(f"{method} {DEFAULTS[method][name]}" for method in users)
    return name, Optional[int] if integer else Optional[float], field(  # noqa: UP045 (HfArgumentParser)
        default=None, metadata={"help": f"{text}; None: the method's default ({defaults})"})


DGPOConfig = make_dataclass("DGPOConfig", [_hparam_field(k) for k in EXTRA_HPARAMS], bases=(_DGPOConfigBase,))
DGPOConfig.__module__ = __name__
DGPOConfig.__doc__ = """GRPOConfig plus the dgpo_ref loss: ``loss_name`` and its hyper-parameters.

``epsilon``/``epsilon_high`` are the method's eps_low/eps_high; ``loss_type`` only selects TRL's
normalization (grpo, bnpo, dr_grpo or dapo), except ``cispo``, which asks for TRL's cispo loss
(module doc); ``beta`` stays TRL's KL coefficient. Every other hyper-parameter of any method
(``EXTRA_HPARAMS``, from the spec records) is a field, ``None`` meaning the method's default."""


NO_FLOOR = math.nextafter(1.0, 0.0)
"""eps_low for TRL's floor-less cispo: dgpo_ref's domain is 0 < eps_low < 1, and 1 − NO_FLOOR ≈ 1.1e-16."""


def _trl_cispo(loss_name: str, hp: dict[str, Any]) -> dict[str, Any]:
    """TRL's cispo (weight min(r, epsilon_high), no floor) as dgpo_ref cispo hyper-parameters."""
    differs = ("TRL's cispo weights a token by min(r, epsilon_high) with no floor, dgpo_ref's cispo by r "
               "clipped to [1 - epsilon, 1 + epsilon_high] (loss_type='dapo', loss_name='cispo')")
    if loss_name != "cispo":
        raise ValueError(f"loss_type='cispo' selects TRL's cispo loss, not loss_name={loss_name!r}: {differs}")
    if not hp["eps_high"] > 1:
        raise ValueError(f"epsilon_high={hp['eps_high']!r} must be > 1 with loss_type='cispo': it is TRL's "
                         f"absolute cap on r (TRL recommends 5.0); {differs}")
    return {**hp, "eps_low": NO_FLOOR, "eps_high": hp["eps_high"] - 1.0}


def _accumulation(trainer, mode: str) -> float:
    """TRL divides by the gradient-accumulation steps in training, never in eval."""
    return trainer.current_gradient_accumulation_steps if mode == "train" else 1.0


def _grpo(trainer, inputs, mask, mode):
    return "seq-mean-token-mean", mask.shape[0] * _accumulation(trainer, mode), None


def _bnpo(trainer, inputs, mask, mode):
    return "token-mean", mask.sum().clamp(min=1.0) * _accumulation(trainer, mode), None


def _dr_grpo(trainer, inputs, mask, mode):
    return "seq-mean-token-sum-norm", mask.shape[0] * _accumulation(trainer, mode), trainer.max_completion_length


def _dapo(trainer, inputs, mask, mode):
    # num_items_in_batch spans the generation batch: rescaled to one accumulation window in training
    count = inputs["num_items_in_batch"].clamp(min=1.0) / trainer.accelerator.num_processes
    if mode == "train":
        count = count * trainer.current_gradient_accumulation_steps / trainer.args.steps_per_generation
    return "token-mean", count, None


NORMALIZATIONS = {"grpo": _grpo, "bnpo": _bnpo, "dr_grpo": _dr_grpo, "dapo": _dapo, "cispo": _dapo}
"""TRL loss_type -> (trainer, inputs, mask, mode) -> (dgpo_ref mode, normalizer, loss_scale_factor).
``cispo`` normalizes as ``dapo`` in TRL 1.16 and also selects TRL's cispo loss (module doc)."""


_UNSUPPORTED = (  # (setting, is-unsupported test, reason)
    ("loss_type", lambda a: a.loss_type not in NORMALIZATIONS,
     f"with DGPOTrainer loss_type only selects TRL's normalization: one of {', '.join(NORMALIZATIONS)} "
     "(cispo: TRL's cispo loss, mapped to dgpo_ref's); the per-token loss is loss_name"),
    ("importance_sampling_level", lambda a: a.importance_sampling_level != "token",
     "the dgpo_ref losses are token-level: use importance_sampling_level='token'"),
    ("delta", lambda a: a.delta is not None, "delta caps TRL's own clipped ratio; use dual_clip with loss_name"),
    ("entropy_coef", lambda a: a.entropy_coef != 0.0 or a.use_adaptive_entropy,
     "the entropy bonus is not supported by DGPOTrainer (the paper uses none)"),
)


def _check_supported(args) -> None:
    for setting, unsupported, reason in _UNSUPPORTED:
        if unsupported(args):
            raise ValueError(f"{setting}={getattr(args, setting)!r} is not supported: {reason}")


class DGPOTrainer(GRPOTrainer):
    """GRPOTrainer whose per-token policy loss is ``dgpo_ref.policy_loss(args.loss_name, ...)``."""

    def __init__(self, *args, **kwargs):
        check_trl_version(trl.__version__)
        config = kwargs.get("args", args[2] if len(args) > 2 else None)
        if not isinstance(config, DGPOConfig):
            raise TypeError(f"DGPOTrainer needs args=DGPOConfig(...), got {type(config).__name__}")
        super().__init__(*args, **kwargs)
        self.loss_hparams = config.loss_hparams()

    def _token_factors(self, inputs, per_token_logps, old_logps, entropies, advantages, mask):
        """TRL's per-token multipliers (entropy mask, off-policy mask, vLLM IS ratio), all ≥ 0."""
        factor = torch.ones_like(mask, dtype=per_token_logps.dtype)
        if self.top_entropy_quantile < 1.0:
            factor = factor * self.get_high_entropy_mask(entropies, mask, 1 - self.top_entropy_quantile)
        if self.off_policy_mask_threshold is not None:
            factor = factor * self.get_off_policy_mask(
                advantages=advantages, per_token_logps=per_token_logps,
                sampling_per_token_logps=inputs.get("sampling_per_token_logps", old_logps), mask=mask,
                off_policy_threshold=self.off_policy_mask_threshold,
            )
        if self.use_vllm and self.vllm_importance_sampling_correction:
            factor = factor * inputs["importance_sampling_ratio"]
        return factor

    def _kl(self, inputs, per_token_logps, old_logps):
        """TRL's k3 estimator of KL(π_θ‖π_ref) per token, with its optional bias correction."""
        ref = inputs["ref_per_token_logps"]
        kl = torch.exp(ref - per_token_logps) - (ref - per_token_logps) - 1
        if self.args.use_bias_correction_kl:
            kl = kl * torch.exp(per_token_logps - old_logps)
        return kl

    def _compute_loss(self, model, inputs):
        mode = "train" if self.model.training else "eval"
        completion_ids = inputs["completion_ids"]
        mask = inputs["completion_mask"] if "tool_mask" not in inputs else inputs["completion_mask"] * inputs["tool_mask"]
        per_token_logps, entropies, aux_loss = self._get_per_token_logps_and_entropies(
            model,
            torch.cat([inputs["prompt_ids"], completion_ids], dim=1),
            torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1),
            completion_ids.size(1),
            compute_entropy=True,
            compute_aux_loss=self.aux_loss_enabled,
            **{k: inputs.get(k) for k in _MODEL_INPUTS},
        )
        advantages = inputs["advantages"]
        advantages = advantages.unsqueeze(1) if advantages.dim() == 1 else advantages
        old = inputs.get("old_per_token_logps")
        old = per_token_logps.detach() if old is None else old
        factor = self._token_factors(inputs, per_token_logps, old, entropies, advantages, mask)
        agg_mode, normalizer, scale = NORMALIZATIONS[self.loss_type](self, inputs, mask, mode)
        loss, metrics = policy_loss(
            self.args.loss_name, log_prob=per_token_logps, old_log_prob=old,
            advantages=(advantages * factor).expand_as(per_token_logps), response_mask=mask,
            loss_agg_mode=agg_mode, normalizer=normalizer, loss_scale_factor=scale, **self.loss_hparams,
        )
        per_token_kl = None
        if self.beta != 0.0:
            per_token_kl = self._kl(inputs, per_token_logps, old)
            weights = token_weights(agg_mode, mask.to(per_token_kl.dtype), normalizer, scale)
            loss = loss + self.beta * (per_token_kl * weights).sum()
        if self.aux_loss_enabled:
            loss = loss + self.router_aux_loss_coef * aux_loss / _accumulation(self, mode)
            self._metrics[mode]["aux_loss"].append(self.accelerator.gather_for_metrics(aux_loss).mean().item())
        self._log_loss_metrics(mode, metrics, mask, entropies, per_token_kl)
        self._log_clip_ratios(mode, per_token_logps, old, advantages, mask)
        return loss

    def _log_loss_metrics(self, mode, metrics, mask, entropies, per_token_kl):
        """TRL's entropy/kl (token means over all processes) and the region fractions of docs/methods.md."""
        mask = mask.to(entropies.dtype)
        tokens = metrics["tokens"]
        local = [(entropies * mask).sum(), *(torch.tensor(metrics[f"region/{r}"] * tokens) for r in REGIONS)]
        if per_token_kl is not None:
            local.append((per_token_kl * mask).sum())
        local.append(mask.sum())
        totals = self.accelerator.reduce(torch.stack([x.to(mask) for x in local]), reduction="sum")
        means = (totals[:-1] / totals[-1].clamp(min=1.0)).tolist()
        record = self._metrics[mode]
        record["entropy"].append(means[0])
        for r, value in zip(REGIONS, means[1:6]):
            record[f"region/{r}"].append(value)
        if per_token_kl is not None:
            record["kl"].append(means[6])

    def _log_clip_ratios(self, mode, per_token_logps, old, advantages, mask):
        """TRL's ``clip_ratio/*`` (and ``cispo_clip_ratio``) from the regions, on TRL's raw advantages."""
        with torch.no_grad():
            hp = self.loss_hparams
            region = classify(torch.exp(per_token_logps.detach() - old), advantages.expand_as(old),
                              hp["eps_low"], hp["eps_high"])
            mask = mask.to(per_token_logps.dtype)
            low, high = (region == LN).to(mask) * mask, (region == HP).to(mask) * mask
            sums = self.accelerator.reduce(torch.stack([low.sum(), high.sum(), mask.sum()]), reduction="sum")
            per_seq = torch.stack([low.sum(-1), high.sum(-1)]) / mask.sum(-1)  # NaN for empty rows, as TRL
            low_seq, high_seq = self.accelerator.gather(per_seq[0]), self.accelerator.gather(per_seq[1])
        count = sums[2].clamp(min=1.0)
        record = self._metrics[mode]
        record["clip_ratio/low_mean"].append((sums[0] / count).item())
        record["clip_ratio/high_mean"].append((sums[1] / count).item())
        record["clip_ratio/region_mean"].append(((sums[0] + sums[1]) / count).item())
        record["clip_ratio/low_min"].append(_nan_reduce(low_seq, torch.min))
        record["clip_ratio/high_max"].append(_nan_reduce(high_seq, torch.max))
        if self.loss_type == "cispo":
            record["cispo_clip_ratio"].append((sums[1] / count).item())


def _nan_reduce(values: torch.Tensor, reduce) -> float:
    """TRL's nanmin/nanmax: the reduction over the non-NaN values, NaN when there are none."""
    kept = values[~torch.isnan(values)]
    return reduce(kept).item() if kept.numel() else math.nan
