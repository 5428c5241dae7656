"""The verified losses as verl 0.9.x policy losses: ``dgpo``, ``gppo``, ``ce_gppo``, ``aspo``.

verl imports every ``verl.plugins`` entry point when ``verl`` itself is imported, in every process
(Ray workers included). This package's entry point is this module, and importing it registers the
four losses (which verl 0.9.1 lacks) with ``verl.trainer.ppo.core_algos.register_policy_loss``.
verl swallows a plugin's import error, so ``dgpo verl-check`` exists to make a broken install loud.

Each registered function has verl's exact signature and delegates to ``dgpo_ref.policy_loss``:

- ``eps_low``/``eps_high`` are the actor's ``clip_ratio_low``/``clip_ratio_high`` (``clip_ratio``
  where unset); ``dual_clip`` (gppo, ce_gppo, aspo) is the actor's ``clip_ratio_c``, verl's dual-clip
  knob (default 3.0 in verl; ``inf`` turns it off). ``n``, ``m``, ``beta1``, ``beta2`` come from
  ``policy_loss`` when it is a :class:`DGPOPolicyLossConfig` (selected with ``policy_loss._target_``;
  verl's own ``PolicyLossConfig`` rejects unknown keys); a field left at ``None`` means the method's
  default in ``dgpo_ref.LOSSES``. A config without ``clip_ratio_c`` gets the method's dual clip.
- ``config.global_batch_info`` becomes dgpo_ref's ``normalizer``. verl's ``agg_loss`` divides a
  micro-batch's sum by the global count (tokens or sequences) and multiplies by ``dp_size`` to
  cancel FSDP's gradient averaging: that is a division by ``count / dp_size``.
- ``rollout_is_weights`` (≥ 0, no gradient) multiply each token's loss, as in verl's own losses.
  A method's surrogate J depends on the advantage only through its sign, so
  ``w·(−A·J) = −(w·A)·J`` exactly: the weights are folded into the advantages.
- Metrics use verl's key names (``actor/pg_clipfrac`` = fraction of tokens in the boundary
  regions LN and HP, ``actor/ppo_kl`` = mean −log r, ``actor/pg_clipfrac_lower`` = fraction with
  A < 0 and r > dual_clip) plus ``actor/region/<R>`` for the five regions of docs/methods.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from verl.trainer.ppo.core_algos import register_policy_loss
from verl.workers.config import PolicyLossConfig

from dgpo_ref import LOSSES, REGIONS, policy_loss
from dgpo_ref.integrations.verl import EXTRA_HPARAMS, METHODS


@dataclass
class DGPOPolicyLossConfig(PolicyLossConfig):
    """verl's ``PolicyLossConfig`` plus the dgpo_ref hyper-parameters (``None``: the method's default).

    Select it with ``actor_rollout_ref.actor.policy_loss._target_=`` this class's dotted path; the
    values are checked against the method's domains (docs/methods.md) when the config is built.
    """

    n: int | None = None
    m: int | None = None
    beta1: float | None = None
    beta2: float | None = None

    def __post_init__(self):
        if self.loss_mode in METHODS:
            LOSSES[self.loss_mode].resolve(_extra_hparams(self))


def _get(config: Any, key: str, default=None):
    """``config[key]`` for an ActorConfig, a DictConfig or a dict; ``default`` when absent or None."""
    value = config.get(key, default) if hasattr(config, "get") else getattr(config, key, default)
    return default if value is None else value


def _extra_hparams(policy_loss_config: Any) -> dict[str, Any]:
    return {k: _get(policy_loss_config, k) for k in EXTRA_HPARAMS if _get(policy_loss_config, k) is not None}


def hparams(name: str, config: Any) -> dict[str, Any]:
    """The dgpo_ref hyper-parameters of method ``name`` read from verl's actor ``config``."""
    if config is None:
        raise ValueError(f"config is required for policy loss {name!r}: verl passes the actor config")
    clip = _get(config, "clip_ratio", 0.2)
    hp = {
        "eps_low": _get(config, "clip_ratio_low", clip),
        "eps_high": _get(config, "clip_ratio_high", clip),
        **_extra_hparams(_get(config, "policy_loss", {})),
    }
    clip_c = _get(config, "clip_ratio_c")
    if "dual_clip" in LOSSES[name].defaults and clip_c is not None:
        hp["dual_clip"] = None if clip_c == math.inf else clip_c
    return hp


# verl loss_agg_mode -> (dgpo_ref mode, the key of config.global_batch_info holding the global count).
# token-sum multiplies the local sum by dp_size: dgpo_ref's token-mean with normalizer 1/dp_size.
AGGREGATION: dict[str, tuple[str, str | None]] = {
    "token-mean": ("token-mean", "batch_num_tokens"),
    "token-sum": ("token-mean", None),
    "seq-mean-token-sum": ("seq-mean-token-sum", "global_batch_size"),
    "seq-mean-token-mean": ("seq-mean-token-mean", "global_batch_size"),
    "seq-mean-token-sum-norm": ("seq-mean-token-sum-norm", "global_batch_size"),
}


def aggregation(loss_agg_mode: str, global_batch_info: Any) -> dict[str, Any]:
    """dgpo_ref's ``loss_agg_mode``, ``normalizer`` and ``loss_scale_factor`` for verl's settings."""
    if loss_agg_mode not in AGGREGATION:
        raise ValueError(f"loss_agg_mode={loss_agg_mode!r} is not known to verl; choose one of {', '.join(AGGREGATION)}")
    mode, key = AGGREGATION[loss_agg_mode]
    info = global_batch_info or {}
    dp_size = _get(info, "dp_size", 1)
    count = _get(info, key) if key else None
    if key and count is None and dp_size > 1:
        raise ValueError(f"config.global_batch_info[{key!r}] is required when dp_size > 1 ({loss_agg_mode=})")
    if key is None:
        normalizer = 1.0 / dp_size
    else:
        normalizer = None if count is None else count / dp_size
    return {"loss_agg_mode": mode, "normalizer": normalizer, "loss_scale_factor": _get(info, "loss_scale_factor")}


def fold_weights(advantages: torch.Tensor, weights: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """Advantages times ``rollout_is_weights`` (detached); ValueError unless finite and ≥ 0 where masked in."""
    if tuple(weights.shape) != tuple(response_mask.shape):
        raise ValueError(
            f"rollout_is_weights must have the shape of response_mask {tuple(response_mask.shape)}, "
            f"got {tuple(weights.shape)}"
        )
    weights = weights.detach()
    bad = (response_mask != 0) & ~(torch.isfinite(weights) & (weights >= 0))
    if bool(bad.any()):
        raise ValueError("rollout_is_weights must be finite and >= 0 at masked-in positions")
    if advantages.dim() == 1:
        advantages = advantages[:, None]
    return advantages * weights


def verl_metrics(metrics: dict[str, float], dual_clip: float | None, log_prob, old_log_prob,
                 advantages, response_mask) -> dict[str, float]:
    """dgpo_ref's metrics under verl's key names, plus the region fractions."""
    out = {
        "actor/pg_clipfrac": metrics["region/LN"] + metrics["region/HP"],
        "actor/ppo_kl": metrics["kl/k1"],
        "actor/pg_clipfrac_lower": 0.0,
    }
    if dual_clip is not None:
        with torch.no_grad():
            mask = response_mask != 0
            above = (log_prob.detach() - old_log_prob.detach() > math.log(dual_clip)) & (advantages < 0) & mask
            out["actor/pg_clipfrac_lower"] = (above.sum() / mask.sum().clamp(min=1)).item()
    out.update({f"actor/region/{r}": metrics[f"region/{r}"] for r in REGIONS})
    return out


def make_loss(name: str):
    """verl's policy-loss callable for dgpo_ref method ``name``."""

    def compute_policy_loss(
        old_log_prob: torch.Tensor,
        log_prob: torch.Tensor,
        advantages: torch.Tensor,
        response_mask: torch.Tensor,
        loss_agg_mode: str = "token-mean",
        config: Any = None,
        rollout_is_weights: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        hp = hparams(name, config)
        if rollout_is_weights is not None:
            advantages = fold_weights(advantages, rollout_is_weights, response_mask)
        loss, metrics = policy_loss(
            name, log_prob=log_prob, old_log_prob=old_log_prob, advantages=advantages,
            response_mask=response_mask, **aggregation(loss_agg_mode, _get(config, "global_batch_info")), **hp,
        )
        dual_clip = LOSSES[name].resolve(hp).get("dual_clip")
        adv = advantages if advantages.dim() == 2 else advantages[:, None]
        return loss, verl_metrics(metrics, dual_clip, log_prob, old_log_prob, adv, response_mask)

    compute_policy_loss.__name__ = compute_policy_loss.__qualname__ = f"compute_policy_loss_{name}"
    compute_policy_loss.__doc__ = f"dgpo_ref's {name!r} loss with verl's policy-loss signature (see module doc)."
    return compute_policy_loss


LOSS_FNS = {name: make_loss(name) for name in METHODS}


def register() -> None:
    """Register every loss in ``LOSS_FNS`` with verl (idempotent)."""
    for name, fn in LOSS_FNS.items():
        register_policy_loss(name)(fn)


register()

# The registered functions under importable names, e.g. for
# `dgpo conformance --impl dgpo_ref.integrations.verl_plugin:compute_policy_loss_dgpo --signature verl`.
compute_policy_loss_dgpo = LOSS_FNS["dgpo"]
compute_policy_loss_gppo = LOSS_FNS["gppo"]
compute_policy_loss_ce_gppo = LOSS_FNS["ce_gppo"]
compute_policy_loss_aspo = LOSS_FNS["aspo"]
