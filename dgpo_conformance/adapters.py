"""The implementation under test: a loss function and its calling convention (:data:`SIGNATURES`:
dgpo_ref's keywords or verl's policy-loss signature), loaded from ``module:function`` or a file."""


from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import math
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import torch

from dgpo_conformance.schema import F64
from dgpo_conformance.strategies import Batch


# ---------------------------------------------------------------------------------------------
# The implementation under test
# ---------------------------------------------------------------------------------------------
@dataclass
class Result:
    loss: torch.Tensor  # float64 scalar
    grad: torch.Tensor  # float64, shape of the batch
    metrics: dict


def _call_dgpo_ref(impl, tensors, hp, normalizer):
    kwargs = dict(tensors, loss_agg_mode="token-mean", **hp)
    if normalizer is not None:
        kwargs["normalizer"] = normalizer
    args = (impl.method,) if impl.pass_name else ()
    return impl.fn(*args, **kwargs)


class VerlConfig(SimpleNamespace):
    """Attribute access plus ``get``/``[]``, as verl's ActorConfig and DictConfig both offer."""

    def get(self, key, default=None):
        return getattr(self, key, default)

    def __getitem__(self, key):
        return getattr(self, key)

    def __contains__(self, key) -> bool:
        return hasattr(self, key)


def verl_config(method: str, hp: Mapping, normalizer: float | None = None) -> VerlConfig:
    """The actor ``config`` a verl policy loss reads: ``clip_ratio``/``clip_ratio_low``/
    ``clip_ratio_high`` (eps), ``clip_ratio_c`` (dual clip; inf when off), ``global_batch_info``
    (the global token count as ``batch_num_tokens``, ``dp_size`` 1), ``policy_loss`` (``loss_mode``
    and the other hyper-parameters, as the dgpo verl plugin reads them), and every
    hyper-parameter under its spec name as well."""
    info = {"dp_size": 1} if normalizer is None else {"dp_size": 1, "batch_num_tokens": normalizer}
    dual = hp.get("dual_clip")
    return VerlConfig(**hp, clip_ratio=hp.get("eps_low"), clip_ratio_low=hp.get("eps_low"),
                      clip_ratio_high=hp.get("eps_high"), clip_ratio_c=math.inf if dual is None else dual,
                      global_batch_info=info,
                      policy_loss=VerlConfig(loss_mode=method, **{k: v for k, v in hp.items()
                                                                  if k not in ("eps_low", "eps_high")}))


def _call_verl(impl, tensors, hp, normalizer):
    out = impl.fn(tensors["old_log_prob"], tensors["log_prob"], tensors["advantages"],
                  tensors["response_mask"], "token-mean", verl_config(impl.method, hp, normalizer))
    if isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], Mapping):
        return out
    return (out[0] if isinstance(out, tuple) else out), {}


#: signature name -> how to call it (both carry a global normalizer: dgpo_ref's ``normalizer``,
#: verl's ``config.global_batch_info["batch_num_tokens"]``)
SIGNATURES: dict[str, Callable] = {
    "dgpo_ref": _call_dgpo_ref,
    "verl": _call_verl,
}


@dataclass
class Implementation:
    """A loss function under test, called through one of :data:`SIGNATURES`."""

    fn: Callable
    label: str
    method: str
    signature: str = "dgpo_ref"
    fixed: dict = field(default_factory=dict)
    #: metrics are required (dgpo_ref itself); otherwise properties needing them are n/a
    require_metrics: bool = False

    @property
    def pass_name(self) -> bool:
        try:
            params = list(inspect.signature(self.fn).parameters.values())
        except (TypeError, ValueError):
            return False
        return bool(params) and params[0].name == "name" and params[0].kind in (
            inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)

    def run(self, batch: Batch, dtype: torch.dtype = F64, normalizer: float | None = None) -> Result:
        """Loss, d loss/d log_prob (both as float64) and metrics (floats) for ``batch`` in ``dtype``."""
        log_prob = batch.log_prob.detach().to(dtype).clone().requires_grad_(True)
        tensors = dict(log_prob=log_prob, old_log_prob=batch.old_log_prob.to(dtype),
                       advantages=batch.advantages.to(dtype), response_mask=batch.mask.to(dtype))
        hp = {k: v for k, v in batch.hp.items()}
        try:
            loss, metrics = SIGNATURES[self.signature](self, tensors, hp, normalizer)
        except SystemExit as exc:  # a property must fail, not end the run as if everything passed
            raise AssertionError(f"the code under test exited: {self.label} raised SystemExit({exc.code!r})") from None
        assert isinstance(loss, torch.Tensor) and loss.dim() == 0, f"loss must be a 0-d tensor, got {loss!r}"
        (grad,) = torch.autograd.grad(loss, log_prob, allow_unused=True)
        grad = torch.zeros_like(log_prob) if grad is None else grad
        # verl prefixes its metrics with "actor/" (e.g. actor/region/IN): compare on the bare name
        plain = {k.removeprefix("actor/"): float(v) for k, v in (metrics or {}).items() if _is_number(v)}
        return Result(loss.detach().to(F64), grad.detach().to(F64), plain)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) or (isinstance(v, torch.Tensor) and v.numel() == 1)


class CodeExited(Exception):
    """The code under test ended (``sys.exit``, ``os._exit``, a crash) before its properties were checked."""


def load_function(target: str) -> Callable:
    """``module:function`` or ``path/to/file.py:function`` (dotted attributes allowed) -> callable.

    Raises ValueError with a one-line message when the module, the attribute or callability is missing.
    """
    mod_name, sep, attr = target.rpartition(":")
    if not sep or not mod_name or not attr:
        raise ValueError(f"--impl must look like MODULE:FUNCTION, got {target!r}")
    try:
        if mod_name.endswith(".py"):
            path = Path(mod_name)
            if not path.is_file():
                raise ImportError(f"no file {mod_name}")
            spec = importlib.util.spec_from_file_location(f"_dgpo_impl_{path.stem}", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            if os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())
            module = importlib.import_module(mod_name)
    except Exception as exc:  # ImportError, or an error raised while importing the user's module
        raise ValueError(f"cannot import {mod_name!r}: {type(exc).__name__}: {exc}") from exc
    except SystemExit as exc:  # a script without a main guard: its import must not end the check
        raise CodeExited(f"the code under test exited: importing {mod_name!r} raised SystemExit({exc.code!r})") from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{mod_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"{target!r} is not callable (it is a {type(obj).__name__})")
    return obj


IMPL_ENV, SIGNATURE_ENV, HPARAMS_ENV = ("DGPO_CONFORMANCE_IMPL", "DGPO_CONFORMANCE_SIGNATURE",
                                        "DGPO_CONFORMANCE_HPARAMS")


def implementation_from_env(method: str) -> Implementation:
    """The implementation the environment names (default: dgpo_ref.policy_loss, metrics required)."""
    target = os.environ.get(IMPL_ENV, "")
    signature = os.environ.get(SIGNATURE_ENV, "dgpo_ref")
    if signature not in SIGNATURES:
        raise ValueError(f"{SIGNATURE_ENV}={signature!r}; choose one of {', '.join(SIGNATURES)}")
    fixed = json.loads(os.environ.get(HPARAMS_ENV) or "{}")
    if not target:
        from dgpo_ref import policy_loss
        return Implementation(policy_loss, "dgpo_ref:policy_loss", method, "dgpo_ref", fixed, True)
    return Implementation(load_function(target), target, method, signature, fixed)
