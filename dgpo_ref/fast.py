"""The compiled fast path of ``policy_loss``: every method's own terms, in one fused pass.

:func:`dgpo_ref.loss.reference_policy_loss` evaluates a method op by op: about 30 ``torch.where``
and a hundred other element-wise kernels per call, each a full pass over memory. Here the same
code (:func:`_fast_body` calls the method's ``terms``, :func:`dgpo_ref.loss._loss_value`,
``_coefficients`` and :func:`dgpo_ref.metrics.unshifted_metric_values`) is compiled with ``torch.compile``
(inductor: C++/OpenMP on the CPU, Triton on the GPU), so value, per-token coefficients, metrics
and the input value checks come out of one fused kernel (a few loops over the tokens). Nothing is re-derived:
a method added to the registry has a fast path without writing one.

What keeps it to one compiled graph per method and setting:

- hyper-parameters enter as 0-d float64 tensors (``terms`` use :func:`dgpo_ref.method.log` /
  ``log1p`` / ``Tokens.pick``, which accept them), so a new value does not recompile; ``None``
  (an option switched off, e.g. ``dual_clip``) is part of the graph;
- shapes are dynamic (``dynamic=True``, sizes 0/1 not specialized), so a new batch shape does not
  recompile;
- inputs are cast to the compute dtype (float32, or float64) before the graph, so bfloat16 and
  float16 share float32's graph; the aggregation weights w are formed inside it by
  :func:`dgpo_ref.aggregate.weights` from 0-d tensors, so the four ``loss_agg_mode`` (and a
  normalizer given or not) share one graph. The mask enters as given (one graph per mask dtype).

When it is used (``DGPO_COMPILE``): ``auto`` (default) for calls of at least
``DGPO_COMPILE_MIN_TOKENS`` (default 65 536) tokens, where the one-off compile (tens of seconds on a
CPU, see docs/performance.md) pays for itself within a run; ``always``; ``never``. Where compiling
fails (no C++ compiler, an unsupported device or backend) one warning is issued and that device
method stays on the reference on that device type from then on. A method's ``terms`` must take its
hyper-parameters through ``log``, ``log1p`` and ``Tokens.pick`` (never ``math.*`` or ``float()``
on them), or its graph breaks: tests/test_fast.py compiles every registry method with that
warning turned into an error. ``tests/test_fast.py`` checks the fast path against the
reference; ``dgpo conformance --impl dgpo_ref.fast:compiled_policy_loss`` runs the whole generated
suite through it.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import types
import warnings

import torch

from . import checks
from .aggregate import form, weights
from .loss import (
    _coefficients,
    _direct_coefficients,
    _direct_sum,
    _loss_value,
    _Surrogate,
    reference_parts,
    reference_policy_loss,
    validate,
)
from .method import Tokens
from .metrics import METRIC_NAMES, unshifted_metric_values
from .registry import get_spec

__all__ = ["MODE_ENV", "MIN_TOKENS_ENV", "DEFAULT_MIN_TOKENS", "compiled_policy_loss", "wanted", "mode"]

MODE_ENV = "DGPO_COMPILE"
MIN_TOKENS_ENV = "DGPO_COMPILE_MIN_TOKENS"
DEFAULT_MIN_TOKENS = 1 << 16
MODES = ("auto", "always", "never")
RECOMPILE_LIMIT = 64
"""Graphs kept per method (settings x compute dtypes x advantage layouts; torch's default is 8)."""


def mode() -> str:
    value = os.environ.get(MODE_ENV, "auto").strip().lower() or "auto"
    if value not in MODES:
        raise ValueError(f"{MODE_ENV} must be one of {', '.join(MODES)}, got {os.environ[MODE_ENV]!r}")
    return value


def min_tokens() -> int:
    raw = os.environ.get(MIN_TOKENS_ENV)
    if raw is None or not raw.strip():
        return DEFAULT_MIN_TOKENS
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ValueError(f"{MIN_TOKENS_ENV} must be a whole number >= 0, got {raw!r}")
    return value


def wanted(name: str, log_prob) -> bool:
    """Whether ``policy_loss`` should try the compiled path for this call."""
    m = mode()
    if m == "never" or not isinstance(log_prob, torch.Tensor) or log_prob.numel() == 0:
        return False
    if (name, log_prob.device.type) in _BROKEN:
        return False
    return m == "always" or log_prob.numel() >= min_tokens()


def _fast_body(terms, log_p, old_log_p, ratio, adv, response_mask, agg, eps_low, eps_high, hp, overflow_at,
               with_metrics, log_space):
    """One call's value, per-token coefficients, input-check flags and metrics (inputs detached,
    in the compute dtype; ``ratio`` = exp(log_p − old_log_p) computed eagerly; ``response_mask`` as
    given; ``agg`` the 0-d tensor arguments of :func:`dgpo_ref.aggregate.weights`). The same
    functions as the reference, in one graph.

    ``log_space`` False: the value is the direct sum and the coefficients −A·V·w are formed directly
    only, and a fifth flag says that either overflowed (the sum is not finite, or V = inf on a live
    token; the caller, which reads the flags anyway, then takes the reference's value, coefficients
    and metrics). Their log-space forms cost every call, for a case that almost never happens: the
    signed log-sum-exp needs a maximum over the tokens before its sum (two more passes), and a
    kernel evaluates both sides of a ``where``, so the coefficient's log(|A|) + log V + log w and its
    exp would be computed for every token. They stay in the graph only for calls that do not
    synchronize (no checks, no metrics)."""
    slack = checks.LOG_PROB_SLACK
    if response_mask.dtype == torch.bool:  # 0/1 by its dtype (the graph is per mask dtype); != 0 would compare as int64
        mask, not_0_or_1 = response_mask, torch.zeros((), dtype=torch.bool, device=response_mask.device)
    else:
        mask = response_mask != 0
        not_0_or_1 = (mask & (response_mask != 1)).any()
    flags = torch.stack([
        not_0_or_1,
        (mask & ~(torch.isfinite(log_p) & (log_p <= slack))).any(),
        (mask & ~(torch.isfinite(old_log_p) & (old_log_p <= slack))).any(),
        (mask & ~torch.isfinite(adv.expand_as(log_p))).any(),
    ])
    w = weights(mask.to(log_p.dtype), *agg)
    zero = torch.zeros((), dtype=log_p.dtype, device=log_p.device)
    adv = torch.where(mask, adv.expand_as(log_p), zero)
    tokens = Tokens.build(torch.where(mask, log_p, zero), torch.where(mask, old_log_p, zero), adv, eps_low, eps_high,
                          ratio=torch.where(mask, ratio, zero + 1))
    t = terms(tokens, eps_low=eps_low, eps_high=eps_high, **hp)
    live = mask & (adv != 0)
    if log_space:
        coef, value = _coefficients(t, adv, w, live), _loss_value(t, adv, w, live)
    else:
        v = torch.exp(t.log_v)
        coef, value = _direct_coefficients(v, adv, w, live), _direct_sum(t, adv, w, live)
        flags = torch.cat([flags, (~torch.isfinite(value) | (live & torch.isinf(v)).any()).reshape(1)])
    stats = None
    if with_metrics:  # the last entry: whether the unshifted sums were exact enough (else the caller redoes them)
        stats, in_range = unshifted_metric_values(tokens.log_r, tokens.region, t.log_v, coef.abs() < overflow_at,
                                                  mask, value, ratio=tokens.ratio)
        stats = torch.cat([stats, in_range.to(stats.dtype).reshape(1)])
    return value, coef, flags, stats


_FNS: dict[str, object] = {}
_BROKEN: set[tuple[str, str]] = set()
"""(method, device type) pairs whose compile failed: they use the reference from then on."""
_HP_CACHE: dict[tuple, dict] = {}
_AGG_CACHE: dict[tuple, tuple] = {}


def _compiled(name: str):
    """The compiled body for method ``name``: its own code object, so each method has its own graphs."""
    if name not in _FNS:
        code = _fast_body.__code__.replace(co_name=f"fast_{name}", co_qualname=f"fast_{name}")
        body = types.FunctionType(code, _fast_body.__globals__, f"fast_{name}")
        _FNS[name] = torch.compile(functools.partial(body, get_spec(name).terms), dynamic=True, fullgraph=True)
    return _FNS[name]


def _hp_tensors(name: str, hp: dict, device: torch.device) -> dict:
    """Hyper-parameters as 0-d float64 tensors on ``device`` (None stays None), cached per value."""
    key = (name, tuple(sorted(hp.items())), str(device))
    if key not in _HP_CACHE:
        if len(_HP_CACHE) > 256:
            _HP_CACHE.clear()
        _HP_CACHE[key] = {k: None if v is None else torch.tensor(float(v), dtype=torch.float64, device=device)
                          for k, v in hp.items()}
    return _HP_CACHE[key]


def _agg_tensors(args: tuple, dtype: torch.dtype, device) -> tuple:
    """:func:`dgpo_ref.aggregate.form`'s arguments as 0-d tensors (no normalizer: NaN, this call's count)."""
    by_length, count_sequences, normalizer, scale = args
    key = (by_length, count_sequences, float(scale), dtype, str(device))
    if key not in _AGG_CACHE:
        if len(_AGG_CACHE) > 256:
            _AGG_CACHE.clear()
        flag = functools.partial(torch.tensor, dtype=torch.bool, device=device)
        _AGG_CACHE[key] = (flag(by_length), flag(count_sequences), torch.tensor(math.nan, dtype=dtype, device=device),
                           torch.tensor(float(scale), dtype=dtype, device=device))
    by_length, count_sequences, own_count, scale = _AGG_CACHE[key]
    if normalizer is not None:
        normalizer = torch.as_tensor(normalizer, device=device).detach().to(dtype).reshape(())
    return by_length, count_sequences, own_count if normalizer is None else normalizer, scale


def _overflow_at(grad_dtype: torch.dtype, device) -> torch.Tensor:
    """Smallest |x| that rounds to ±inf in ``grad_dtype``: its max plus half an ulp (inf for float64),
    so ``|coef| < overflow_at`` is exactly "finite once cast to ``grad_dtype``"."""
    info = torch.finfo(grad_dtype)
    binade = 2.0 ** (math.frexp(info.max)[1] - 1)
    return torch.tensor(info.max + info.eps / 2 * binade, dtype=torch.float64, device=device)


def _dynamo_settings():
    stack = contextlib.ExitStack()
    # torch's own deprecation warnings while compiling must not become errors under -W error
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore", DeprecationWarning)
    stack.enter_context(torch._dynamo.config.patch(recompile_limit=RECOMPILE_LIMIT,
                                                   accumulated_recompile_limit=RECOMPILE_LIMIT * 32))
    import torch.fx.experimental._config as fx_config  # noqa: PLC0415

    stack.enter_context(fx_config.patch(backed_size_oblivious=True))
    return stack


def compiled_policy_loss(
    name: str,
    *,
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    loss_agg_mode: str = "token-mean",
    normalizer=None,
    loss_scale_factor=None,
    check_inputs: bool = True,
    metrics: bool = True,
    **hparams,
) -> tuple[torch.Tensor, dict[str, float]] | None:
    """``policy_loss`` through the compiled graph; None where compiling failed on this device type
    (after one warning; the caller then uses the reference). Same checks, value, gradient and metric keys."""
    spec = get_spec(name)
    hp = spec.resolve(hparams)
    adv_in, dtype = validate(log_prob, old_log_prob, advantages, response_mask, normalizer, loss_scale_factor,
                             read_tensors=check_inputs)
    device = log_prob.device
    if (name, device.type) in _BROKEN or log_prob.numel() == 0:
        return None
    agg = _agg_tensors(form(loss_agg_mode, response_mask.shape, normalizer, loss_scale_factor), dtype, device)
    eps = _hp_tensors(name, {"eps_low": hp["eps_low"], "eps_high": hp["eps_high"]}, device)
    rest = _hp_tensors(name, {k: v for k, v in hp.items() if k not in ("eps_low", "eps_high")}, device)
    # advantages enter compact ((batch, 1) when given per sequence), expanded inside the graph:
    # one graph whether the cast to the compute dtype copies them or not
    adv_compact = advantages.detach().reshape(-1, 1) if advantages.dim() == 1 or advantages.shape[-1:] == (1,) \
        else advantages.detach()
    synced = check_inputs or metrics  # the host reads flags (and metrics) once: the value's overflow flag with them
    try:
        with torch.no_grad(), _dynamo_settings():
            log_p, old_log_p = log_prob.detach().to(dtype), old_log_prob.detach().to(dtype)
            # r eagerly, as the reference computes it: the graph's vectorized and scalar tail loops
            # may round exp differently, which would move a token sitting on a breakpoint across it
            # depending on its position in the batch (conformance: micro-batches = full batch)
            value, coef, flags, stat_values = _compiled(name)(
                log_p, old_log_p, torch.exp(log_p - old_log_p), adv_compact.to(dtype),
                response_mask.detach(), agg,
                eps["eps_low"], eps["eps_high"], rest, _overflow_at(log_prob.dtype, device), metrics, not synced)
    except Exception as exc:  # noqa: BLE001 (any compiler failure: fall back, say so once)
        _BROKEN.add((name, device.type))
        why = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())[:300]
        warnings.warn(f"dgpo_ref: torch.compile of {name!r} failed on {device.type} ({type(exc).__name__}: "
                      f"{why}); policy_loss({name!r}) uses the eager reference on {device.type} from now on "
                      f"(set {MODE_ENV}=never to silence this)",
                      RuntimeWarning, stacklevel=3)
        return None
    stats = {}
    if synced:
        host = torch.cat([flags.to(torch.float64)] + ([stat_values] if metrics else [])).tolist()  # one synchronization
        if check_inputs and any(host[:4]):  # the reference's checks give the exact message (and decide edge cases)
            checks.check_values(log_prob, old_log_prob, adv_in, response_mask.detach() != 0, response_mask)
        overflowed, host = host[4], host[5:]
        if metrics:
            stats = dict(zip(METRIC_NAMES, host[:-1]))
        # the direct sum is not finite (+inf and -inf terms, or an overflow) or V overflowed on a
        # live token: the reference's log-space value and coefficients (and the metrics, which
        # count non-finite coefficients); or a maximum log beyond ±80 (or NaN): the reference's
        # max-shifted metrics
        if overflowed or (metrics and not host[-1]):
            ref_value, ref_coef, ref_stats, _ = reference_parts(
                name, log_prob=log_prob.detach(), old_log_prob=old_log_prob, advantages=advantages,
                response_mask=response_mask, loss_agg_mode=loss_agg_mode, normalizer=normalizer,
                loss_scale_factor=loss_scale_factor, check_inputs=False, metrics=metrics, **hparams)
            if overflowed:
                value, coef = ref_value.to(value.dtype), ref_coef.to(coef.dtype)
            stats = ref_stats if metrics else stats
    # the gradient flows to log_prob in its own dtype: autograd casts grad_output · coef to it
    loss = _Surrogate.apply(log_prob, value, coef).to(log_prob.dtype)
    return loss, stats


def compiled_only(name: str, **kwargs) -> tuple[torch.Tensor, dict[str, float]]:
    """``policy_loss`` forced through the compiled graph at any size (for ``dgpo conformance``
    and the tests); an empty batch, which has nothing to compute, takes the reference. Where the
    graph cannot be compiled it raises instead of falling back, so that a conformance run of the
    fast path can never pass on the reference."""
    log_prob = kwargs.get("log_prob")
    if isinstance(log_prob, torch.Tensor) and log_prob.numel() == 0:
        return reference_policy_loss(name, **kwargs)
    out = compiled_policy_loss(name, **kwargs)
    if out is None:
        device = log_prob.device.type if isinstance(log_prob, torch.Tensor) else "?"
        raise RuntimeError(f"compiled_only: the fast path of {name!r} could not be compiled on {device} "
                           "(see the RuntimeWarning above)")
    return out
