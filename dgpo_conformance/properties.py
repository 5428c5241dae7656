"""Runtime of the generated conformance tests (``dgpo conformance`` runs them: :mod:`dgpo_conformance.runner`).

``dgpo gen-tests`` (dgpo_conformance/gentests.py) writes ``tests/conformance/test_<method>.py`` from the SymPy
spec: per method the hyper-parameter domains, the weight ``V`` on ∇log π and the surrogate value
``J`` per region as plain torch expressions, the breakpoints with what the spec says about their
one-sided limits, and the bounds on ``W``. Those files hold data and one line per test; the
properties themselves live here, written once for every method (PyTorch OpInfo style):

| property | what must hold |
|---|---|
| ``gradient`` | d loss/d log_prob = −A·V/N per token (token-mean), 0 off the mask |
| ``value`` | the loss equals −Σ A·J/N |
| ``continuity`` | one-sided limits at each breakpoint (± a few ulps, ± 1e-4 relative) agree where the spec is continuous, jump by the spec's jump where it is not |
| ``bounds`` | the per-token W = −grad·N/(A·p) lies in the spec's bounds (DGPO: 0 ≤ W ≤ 1/p_old) |
| ``regions`` | the ``region/<R>`` metrics equal the spec's classification |
| ``finiteness`` | p in [1e-30, 1], abs(log r) up to 1e3: no NaN; ±inf only where A·V overflows; NaN/±inf padding gets exactly 0 |
| ``aggregation`` | micro-batches with the global normalizer sum to the full batch |
| ``invariance`` | permuting sequences, or tokens under token-mean, permutes the gradient and keeps the loss |
| ``dtypes`` | float32 and bfloat16 inputs agree with float64 within per-dtype tolerances |

The implementation under test is an :class:`Implementation`: a function and the calling
convention of one of :data:`SIGNATURES` (dgpo_ref's keywords, or verl's policy-loss signature).
The generated tests get it from the ``impl`` fixture (tests/conformance/conftest.py), which reads
``DGPO_CONFORMANCE_IMPL`` (``module:function`` or ``path/to/file.py:function``; default
``dgpo_ref.policy_loss``), ``DGPO_CONFORMANCE_SIGNATURE`` and ``DGPO_CONFORMANCE_HPARAMS`` (JSON:
hyper-parameters to hold fixed instead of sampling them). ``DGPO_HYPOTHESIS_PROFILE`` picks the
Hypothesis profile: ``ci`` (default; the whole suite in well under a minute on 2 cores) or
``thorough`` (100x the examples).

This module imports torch, hypothesis and pytest (never SymPy); nothing in dgpo_ref/ imports it.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import torch
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from dgpo_conformance import PROPERTIES  # noqa: F401 (the generated tests' C.PROPERTIES)

F64 = torch.float64
REGIONS = ("IN", "LN", "HP", "LP", "HN")

# ---------------------------------------------------------------------------------------------
# Hypothesis profiles
# ---------------------------------------------------------------------------------------------
_COMMON = dict(deadline=None, database=None, print_blob=False,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                      HealthCheck.function_scoped_fixture])
#: ci: fixed seed, no shrinking (a failure is reported as drawn, fast); thorough: 100x, shrunk
settings.register_profile("ci", max_examples=12, derandomize=True,
                          phases=(Phase.explicit, Phase.reuse, Phase.generate), **_COMMON)
settings.register_profile("thorough", max_examples=1200, **_COMMON)
PROFILE_ENV = "DGPO_HYPOTHESIS_PROFILE"
argparse_unset = object()


def profile() -> settings:
    """The settings decorator of the profile named by ``DGPO_HYPOTHESIS_PROFILE`` (default ``ci``).

    Applied per test (never ``settings.load_profile``), so other Hypothesis tests in the same
    pytest session keep their own defaults.
    """
    name = os.environ.get(PROFILE_ENV, "ci")
    try:
        return settings(settings.get_profile(name))
    except Exception as exc:  # InvalidArgument for an unknown name
        raise ValueError(f"{PROFILE_ENV}={name!r} is not a profile; choose ci or thorough") from exc


# ---------------------------------------------------------------------------------------------
# What the generated files declare
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HParam:
    """A hyper-parameter's exact default and its domain (open bounds), as the spec gives them."""

    default: Fraction | int | None
    lower: Fraction | int
    upper: Fraction | int | None = None
    integer: bool = False
    optional: bool = False
    constraint: str = ""

    def plain(self, value):
        """An exact spec number as the int (integer parameters) or float an implementation receives."""
        if value is None:
            return None
        return int(value) if self.integer else float(value)

    def check(self, name: str, value) -> str | None:
        """None if ``value`` is in the domain, else a one-line message naming the constraint."""
        if value is None:
            return None if self.optional else f"{name} must be set ({self.constraint})"
        if self.integer and (not float(value).is_integer() or value <= self.lower):
            return f"{name} must be an integer > {self.lower} ({self.constraint}), got {value}"
        bad_upper = self.upper is not None and not value < self.upper
        if not math.isfinite(float(value)) or not value > self.lower or bad_upper:
            return f"{name} must satisfy {self.constraint}, got {value}"
        return None


@dataclass(frozen=True)
class Breakpoint:
    """A point in r where V may change formula, met from ``outer`` with A of sign ``sign``.

    ``continuous`` is the spec's verdict on the one-sided limits of V there (emitted as data at
    generation time). ``left``/``right`` are the (region, sign) cases on each side.
    """

    name: str
    at: Callable[..., float]  # hparams -> r (None when the breakpoint is absent, e.g. no dual clip)
    sign: int
    left: str
    right: str
    continuous: bool


@dataclass(frozen=True)
class MethodSpec:
    """One method as the generated file declares it (functions take float64 tensors)."""

    name: str
    hparams: Mapping[str, HParam]
    V: Mapping[tuple[str, int], Callable[..., torch.Tensor]]  # (region, sign) -> V(r, **hp)
    J: Mapping[tuple[str, int], Callable[..., torch.Tensor]]  # -> J(r, log_r, log_p_old, **hp)
    breakpoints: Sequence[Breakpoint]
    bounds: Mapping[tuple[str, int], Callable]  # -> bounds(r, **hp) = (lower, upper) on V

    def defaults(self) -> dict:
        return {k: h.plain(h.default) for k, h in self.hparams.items()}

    def points(self, hp: Mapping) -> list[tuple[Breakpoint, float]]:
        """The breakpoints present for these hyper-parameters, with their r.

        An interior breakpoint (the dual clip, ``left == right``) exists only inside its region.
        """
        out = []
        for bp in self.breakpoints:
            at = bp.at(**hp)
            if at is None or not math.isfinite(at):
                continue
            if bp.left == bp.right and _case_of(at, bp.sign, hp)[0] != bp.left:
                continue
            out.append((bp, float(at)))
        return out


def _case_of(r: float, sign: int, hp: Mapping) -> tuple[str, int]:
    low, high = 1.0 - hp["eps_low"], 1.0 + hp["eps_high"]
    if r < low:
        return ("LN", -1) if sign < 0 else ("LP", 1)
    if r > high:
        return ("HP", 1) if sign > 0 else ("HN", -1)
    return ("IN", 1 if sign >= 0 else -1)


# ---------------------------------------------------------------------------------------------
# The spec, evaluated per token in float64
# ---------------------------------------------------------------------------------------------
def classify(ratio: torch.Tensor, adv: torch.Tensor, hp: Mapping) -> torch.Tensor:
    """Region index per token (docs/methods.md): breakpoints in IN, A = 0 outside IN in LP/HN."""
    low = ratio < 1.0 - hp["eps_low"]
    high = ratio > 1.0 + hp["eps_high"]
    region = torch.zeros(ratio.shape, dtype=torch.long)
    region[low & (adv < 0)] = 1
    region[high & (adv > 0)] = 2
    region[low & (adv >= 0)] = 3
    region[high & (adv <= 0)] = 4
    return region


def _hp_tensors(spec: MethodSpec, hp: Mapping) -> dict[str, torch.Tensor]:
    return {k: torch.tensor(math.inf if hp[k] is None else float(hp[k]), dtype=F64) for k in spec.hparams}


def _per_case(spec, table, log_r, adv, hp, args: Callable) -> torch.Tensor:
    ratio = torch.exp(log_r)
    region = classify(ratio, adv, hp)
    sign = torch.where(adv < 0, -1, 1)
    out = torch.zeros_like(log_r)
    hpt = _hp_tensors(spec, hp)
    for (name, s), fn in table.items():
        sel = (region == REGIONS.index(name)) & (sign == s)
        if bool(sel.any()):
            out[sel] = torch.broadcast_to(torch.as_tensor(fn(*args(sel), **hpt), dtype=F64), out[sel].shape)
    return out


def spec_v(spec: MethodSpec, log_r: torch.Tensor, adv: torch.Tensor, hp: Mapping) -> torch.Tensor:
    """The spec's V per token (float64), region by region."""
    ratio = torch.exp(log_r)
    return _per_case(spec, spec.V, log_r, adv, hp, lambda sel: (ratio[sel],))


def spec_j(spec, log_r, adv, hp, log_p_old) -> torch.Tensor:
    """The spec's surrogate value J per token (float64)."""
    ratio = torch.exp(log_r)
    return _per_case(spec, spec.J, log_r, adv, hp, lambda sel: (ratio[sel], log_r[sel], log_p_old[sel]))


#: log-space half-width of the zone around a breakpoint where float rounding may decide the side
AMBIGUOUS = 2e-6


def spec_candidates(fn: Callable, log_r: torch.Tensor) -> torch.Tensor:
    """fn at log r and at log r ± AMBIGUOUS, stacked: an implementation that computes r in float32
    (or compares in log space) may put a token within rounding of a breakpoint on either side."""
    return torch.stack([fn(log_r), fn(log_r - AMBIGUOUS), fn(log_r + AMBIGUOUS)])


# ---------------------------------------------------------------------------------------------
# Batches and Hypothesis strategies
# ---------------------------------------------------------------------------------------------
@dataclass
class Batch:
    """Inputs of one loss call (float64, shape (batch, response_len)) and the hyper-parameters."""

    hp: dict
    log_prob: torch.Tensor
    old_log_prob: torch.Tensor
    advantages: torch.Tensor
    mask: torch.Tensor  # bool

    @property
    def log_r(self) -> torch.Tensor:
        return self.log_prob - self.old_log_prob

    def cast(self, dtype: torch.dtype) -> Batch:
        """The same batch quantized to ``dtype`` and back to float64 (what a ``dtype`` run sees)."""
        q = lambda x: x.to(dtype).to(F64)  # noqa: E731
        return Batch(self.hp, q(self.log_prob), q(self.old_log_prob), q(self.advantages), self.mask)

    def __repr__(self) -> str:
        """Exact values (Python floats round-trip), so a failing example can be replayed."""
        return (f"Batch(hp={self.hp},\n  log_prob={self.log_prob.tolist()},\n"
                f"  old_log_prob={self.old_log_prob.tolist()},\n  advantages={self.advantages.tolist()},\n"
                f"  mask={self.mask.int().tolist()})")

    def _repr_pretty_(self, printer, cycle) -> None:  # Hypothesis prints drawn values with this
        printer.text(repr(self))


#: how far outside the trust region (in log r) tokens are drawn, per scale
SCALES = {
    "normal": (3.0, (1e-4, 1e-2, 0.1, 0.5)),
    "wide": (60.0, (1e-4, 0.5, 21.0, 45.0)),
    "extreme": (1e3, (20.0, 45.0, 50.0, 88.0, 90.0, 200.0, 355.0, 709.0, 711.0, 1e3)),
}
#: largest -log p_old drawn, per scale (extreme: p down to 1e-30)
OLD_DEPTH = {"normal": 8.0, "wide": 8.0, "extreme": -math.log(1e-30)}


def _unit_floats(h: HParam) -> st.SearchStrategy:
    lo = float(h.lower)
    hi = float(h.upper) if h.upper is not None else lo + 2.0
    pad = 0.01 * (hi - lo)
    return st.floats(lo + pad, hi - pad).map(lambda x: round(x, 6))


def hparam_strategy(spec: MethodSpec, fixed: Mapping) -> st.SearchStrategy:
    """Hyper-parameters: the user's fixed values, else the default first, then the domain."""

    @st.composite
    def draw_hp(draw):
        out = {}
        for name, h in spec.hparams.items():
            default = h.plain(h.default)
            if name in fixed:
                out[name] = fixed[name]
            elif h.integer:
                out[name] = draw(st.one_of(st.just(default), st.integers(int(h.lower) + 1, 4)))
            elif h.optional:
                base = 1.0 + out.get("eps_high", 0.2)
                cap = st.floats(1.05, 4.0).map(lambda k, b=base: round(b * k, 6))
                out[name] = draw(st.one_of(st.just(default), st.none(), cap))
            else:
                out[name] = draw(st.one_of(st.just(default), _unit_floats(h)))
        return out

    return draw_hp()


def _nudge(x: float, ulps: int) -> float:
    for _ in range(abs(ulps)):
        x = math.nextafter(x, math.inf if ulps > 0 else -math.inf)
    return x


SIDES = ("in", "low", "high", "breakpoint")
#: every (where in r, sign of A) combination: the five regions, A = 0 outside IN, the breakpoints
COMBOS = tuple((side, sign) for side in SIDES for sign in (1, -1, 0))


@st.composite
def _token(draw, spec: MethodSpec, hp: Mapping, scale: str, combo: tuple[str, int] | None = None):
    """(log_prob, old_log_prob, advantage) for one token in a region, at a breakpoint, or near one."""
    low, high = math.log1p(-hp["eps_low"]), math.log1p(hp["eps_high"])
    far, marks = SCALES[scale]
    side, sign = combo or (draw(st.sampled_from(SIDES)), draw(st.sampled_from((1, -1, 0))))
    if side == "in":
        log_r = draw(st.floats(low, high))
    elif side == "breakpoint":
        points = [math.log(at) for _, at in spec.points(hp)] or [low, high]
        log_r = _nudge(draw(st.sampled_from(points)), draw(st.integers(-3, 3)))
    else:
        dist = draw(st.one_of(st.sampled_from(marks), st.floats(1e-6, far)))
        log_r = low - dist if side == "low" else high + dist
    adv = sign * draw(st.floats(0.05, 3.0))
    depth = draw(st.floats(1e-3, OLD_DEPTH[scale]))
    old = -(depth + max(log_r, 0.0))
    return old + log_r, old, adv


def _tensors(hp, toks, rows: int, cols: int, lengths) -> Batch:
    t = torch.tensor(toks, dtype=F64).reshape(rows, cols, 3)
    mask = torch.arange(cols)[None, :] < torch.tensor(lengths)[:, None]
    return Batch(hp, t[..., 0].clone(), t[..., 1].clone(), t[..., 2].clone(), mask)


@st.composite
def batches(draw, spec: MethodSpec, fixed: Mapping | None = None, scale: str = "normal",
            min_rows: int = 1) -> Batch:
    """A (rows, cols) batch of tokens covering every region, both signs of A and A = 0, the exact
    breakpoints and a few ulps around them; masked-out positions hold ordinary tokens too.

    The simplest draw (the one Hypothesis tries first and shrinks towards) is a *tour*: one
    masked-in token for each of the 12 (side, sign of A) combinations, in a drawn order, in rows
    of unequal lengths with masked-out positions, so every case is exercised whatever the budget.
    """
    hp = draw(hparam_strategy(spec, fixed or {}))
    if not draw(st.booleans()):
        combos = iter(draw(st.permutations(COMBOS)))
        lengths = (6, 4, 2)  # unequal lengths (a per-sequence mean differs), 6 masked-out positions
        toks = [draw(_token(spec, hp, scale, next(combos) if j < n else None)) for n in lengths for j in range(6)]
        return _tensors(hp, toks, 3, 6, lengths)
    rows, cols = draw(st.integers(min_rows, 3)), draw(st.integers(1, 5))
    toks = draw(st.lists(_token(spec, hp, scale), min_size=rows * cols, max_size=rows * cols))
    lengths = draw(st.lists(st.integers(0, cols), min_size=rows, max_size=rows))
    lengths[0] = max(lengths[0], 1)
    return _tensors(hp, toks, rows, cols, lengths)


def extreme_grid(hp: Mapping) -> Batch:
    """Deterministic extremes: log r in ±{0, 1e-3, 1, 10, 30, 50, 87, 100, 200, 700, 1e3}, A in
    {-1, 0, 1}, p (for log r ≥ 0) or p_old (for log r < 0) in {1e-30, 1}."""
    mags = (0.0, 1e-3, 1.0, 10.0, 30.0, 50.0, 87.0, 100.0, 200.0, 700.0, 1e3)
    rows = []
    for adv in (-1.0, 0.0, 1.0):
        for base in (math.log(1e-30), 0.0):
            row = []
            for log_r in sorted({s * x for x in mags for s in (1, -1)}):
                lp, old = (base, base - log_r) if log_r >= 0 else (base + log_r, base)
                row.append((lp, old, adv))
            rows.append(row)
    t = torch.tensor(rows, dtype=F64)
    return Batch(dict(hp), t[..., 0].clone(), t[..., 1].clone(), t[..., 2].clone(),
                 torch.ones(t.shape[:2], dtype=torch.bool))


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


# ---------------------------------------------------------------------------------------------
# Assertions
# ---------------------------------------------------------------------------------------------
#: (rtol, atol factor) per input dtype, for gradients and loss values against float64
TOLERANCE = {torch.float64: 5e-5, torch.float32: 2e-4, torch.bfloat16: 2e-2}


def _token_mean_n(batch: Batch) -> float:
    return float(batch.mask.sum())


def _close(got: torch.Tensor, want: torch.Tensor, rtol: float, atol: float) -> torch.Tensor:
    return (got - want).abs() <= rtol * want.abs() + atol


def _fail(what: str, batch: Batch, idx: torch.Tensor, **cols: torch.Tensor) -> str:
    """A readable report of the offending tokens (at most 4)."""
    lines = [what]
    ratio = torch.exp(batch.log_r)
    for k, (i, j) in enumerate(idx.tolist()):
        if k == 4:
            lines.append(f"  ... and {len(idx) - 4} more")
            break
        extra = ", ".join(f"{name}={float(v[i, j]):.17g}" for name, v in cols.items())
        lines.append(f"  token[{i},{j}]: r={float(ratio[i, j]):.17g} A={float(batch.advantages[i, j]):.6g} "
                     f"mask={bool(batch.mask[i, j])} {extra}")
    return "\n".join(lines)


def _any_close(got: torch.Tensor, candidates: torch.Tensor, rtol: float, atol: float) -> torch.Tensor:
    return _close(got[None], candidates, rtol, atol).any(0)


def expected_grad(spec: MethodSpec, batch: Batch, normalizer: float | None = None) -> torch.Tensor:
    """The spec's gradient candidates (3, rows, cols): −A·V/N on the mask, 0 elsewhere."""
    n = normalizer or _token_mean_n(batch)
    adv = batch.advantages

    def grad(log_r):
        g = -adv * spec_v(spec, log_r, adv, batch.hp) / n
        return torch.where(batch.mask & (adv != 0), g, torch.zeros_like(g))

    return spec_candidates(grad, batch.log_r)


def check_gradient(impl: Implementation, spec: MethodSpec, batch: Batch) -> None:
    """d loss/d log_prob = −A·V/N on the mask (N = masked-in tokens), exactly 0 off the mask."""
    res = impl.run(batch)
    want = expected_grad(spec, batch)
    rtol = TOLERANCE[F64]
    atol = 1e-30 * float(batch.advantages.abs().max()) / _token_mean_n(batch)
    ok = _any_close(res.grad, want, rtol, atol)
    bad = (~ok).nonzero()
    assert len(bad) == 0, _fail(f"{spec.name}: gradient differs from the spec's -A*V/N", batch, bad,
                                got=res.grad, spec=want[0])


def check_value(impl: Implementation, spec: MethodSpec, batch: Batch) -> None:
    """The loss equals −Σ A·J/N (the spec's surrogate aggregated by token-mean)."""
    res = impl.run(batch)
    adv, live = batch.advantages, batch.mask & (batch.advantages != 0)
    n = _token_mean_n(batch)
    per = spec_candidates(lambda lr: torch.where(
        live, -adv * spec_j(spec, lr, adv, batch.hp, batch.old_log_prob) / n, torch.zeros_like(lr)),
        batch.log_r)
    lo, hi = per.amin(0).sum(), per.amax(0).sum()
    slack = TOLERANCE[F64] * float(per.abs().amax(0).sum()) + 1e-300
    got = float(res.loss)
    assert float(lo) - slack <= got <= float(hi) + slack, (
        f"{spec.name}: loss {got!r} != spec's -sum(A*J)/N = {float(per[0].sum())!r} (tolerance {slack:.3g})")


def _sides(batch_hp: Mapping, spec: MethodSpec):
    """Tokens just left and right of every breakpoint: ±1e-4 relative and ± a few ulps (in log r)."""
    rows = []
    for bp, at in spec.points(batch_hp):
        la = math.log(at)
        for tag, left, right in (("1e-4", la + math.log1p(-1e-4), la + math.log1p(1e-4)),
                                 ("ulps", _nudge(la, -4), _nudge(la, 4))):
            rows.append((bp, at, tag, left, right))
    return rows


def check_continuity(impl: Implementation, spec: MethodSpec, hp: Mapping) -> None:
    """At each breakpoint b, the implementation's V at b·(1 ± 1e-4) is the spec's, and its jump
    across b matches the spec's one-sided limits there: none where the spec proves V continuous
    (also at b ± a few ulps), the spec's jump where it does not."""
    rows = _sides(hp, spec)
    if not rows:
        return
    log_r = torch.tensor([[lft, rgt] for _, _, _, lft, rgt in rows], dtype=F64)
    adv = torch.tensor([[float(bp.sign)] * 2 for bp, *_ in rows], dtype=F64)
    old = -2.0 - torch.clamp(log_r, min=0.0)
    batch = Batch(dict(hp), old + log_r, old, adv, torch.ones_like(log_r, dtype=torch.bool))
    res = impl.run(batch)
    v_impl = -res.grad * _token_mean_n(batch) / adv
    hpt, rtol = _hp_tensors(spec, hp), TOLERANCE[F64]
    for k, (bp, at, tag, *_) in enumerate(rows):
        vl, vr = float(v_impl[k, 0]), float(v_impl[k, 1])
        lim_l, lim_r = (float(torch.as_tensor(spec.V[(side, bp.sign)](
            torch.tensor([at * (1 + d)], dtype=F64), **hpt)).reshape(-1)[0])
            for side, d in ((bp.left, -1e-13), (bp.right, 1e-13)))
        scale = max(abs(lim_l), abs(lim_r), 1e-300)
        # the proofs' verdict holds on their domain; where these hparams leave it, trust the limits
        continuous = bp.continuous and abs(lim_l - lim_r) <= 1e-9 * scale
        where = (f"{spec.name} at breakpoint {bp.name}: r = {at!r}, A sign {bp.sign:+d}, "
                 f"{'±' + tag + ' relative' if tag == '1e-4' else '± 4 ulps in log r'}")
        if tag == "1e-4":
            sl, sr = (float(spec_v(spec, batch.log_r[k, i:i + 1], adv[k, i:i + 1], hp)) for i in (0, 1))
            if continuous:
                assert abs(vl - vr) <= 4 * abs(sr - sl) + rtol * scale, (
                    f"{where}: spec proves V continuous (limit {lim_l!r}), implementation jumps "
                    f"{vl!r} -> {vr!r}")
            else:
                assert abs((vr - vl) - (lim_r - lim_l)) <= 4 * abs(sr - sl - lim_r + lim_l) + rtol * scale, (
                    f"{where}: spec's jump is {lim_l!r} -> {lim_r!r}, implementation's {vl!r} -> {vr!r}")
            for side, got, want in (("left", vl, sl), ("right", vr, sr)):
                assert abs(got - want) <= rtol * abs(want) + 1e-12 * scale, (
                    f"{where}: V {side} of it is {got!r}, spec says {want!r}")
        elif continuous:
            for got in (vl, vr):
                assert abs(got - lim_l) <= 1e-6 * scale, (
                    f"{where}: spec proves V continuous with limit {lim_l!r}; implementation gives "
                    f"{vl!r} / {vr!r}")
        else:
            for got in (vl, vr):
                assert any(abs(got - s) <= 1e-6 * scale for s in (lim_l, lim_r)), (
                    f"{where}: V = {got!r} is neither one-sided limit ({lim_l!r}, {lim_r!r})")


def check_bounds(impl: Implementation, spec: MethodSpec, batch: Batch) -> None:
    """The per-token W = −grad·N/(A·p) lies within the spec's bounds (checked as V = p·W)."""
    res = impl.run(batch)
    adv, n = batch.advantages, _token_mean_n(batch)
    live = batch.mask & (adv != 0)
    safe_adv = torch.where(live, adv, torch.ones_like(adv))
    v_impl = torch.where(live, -res.grad * n / safe_adv, torch.zeros_like(adv))
    ratio, hpt = torch.exp(batch.log_r), _hp_tensors(spec, batch.hp)
    region = classify(ratio, adv, batch.hp)
    sign = torch.where(adv < 0, -1, 1)
    rtol = TOLERANCE[F64]
    for (name, s), bounds_fn in spec.bounds.items():
        sel = live & (region == REGIONS.index(name)) & (sign == s)
        if not bool(sel.any()):
            continue
        r = ratio[sel]
        lo, hi = (torch.broadcast_to(torch.as_tensor(x, dtype=F64), r.shape) for x in bounds_fn(r, **hpt))
        # near a breakpoint the region may be decided by rounding: use the looser neighbour bound
        v = v_impl[sel]
        ok = (v >= lo * (1 - rtol) - 1e-300) & (v <= hi * (1 + rtol) + 1e-300)
        near = _near_breakpoint(spec, batch.log_r, batch.hp)[sel]
        bad_idx = sel.nonzero()[~(ok | near)]
        assert len(bad_idx) == 0, _fail(
            f"{spec.name}: W outside the spec's bounds on {name} (A sign {s:+d})", batch, bad_idx,
            V_impl=v_impl, V_lower=_scatter(lo, sel), V_upper=_scatter(hi, sel))


def _scatter(values: torch.Tensor, sel: torch.Tensor) -> torch.Tensor:
    out = torch.full(sel.shape, math.nan, dtype=F64)
    out[sel] = values
    return out


def _near_breakpoint(spec: MethodSpec, log_r: torch.Tensor, hp: Mapping, width: float = AMBIGUOUS):
    near = torch.zeros_like(log_r, dtype=torch.bool)
    points = {math.log(1 - hp["eps_low"]), math.log(1 + hp["eps_high"])}
    points |= {math.log(at) for _, at in spec.points(hp)}
    for lp in points:
        near |= (log_r - lp).abs() <= width * (1 + abs(lp))
    return near


def check_regions(impl: Implementation, spec: MethodSpec, batch: Batch) -> None:
    """``region/<R>`` metrics (fractions of masked-in tokens) equal the spec's classification."""
    res = impl.run(batch)
    keys = [f"region/{r}" for r in REGIONS]
    missing = [k for k in keys if k not in res.metrics]
    if missing:
        _not_applicable(impl, f"the implementation reports no {', '.join(missing)} metrics")
    mask, adv, n = batch.mask, batch.advantages, _token_mean_n(batch)
    codes = torch.stack([classify(torch.exp(lr), adv, batch.hp)
                         for lr in (batch.log_r, batch.log_r - AMBIGUOUS, batch.log_r + AMBIGUOUS)])
    for code, key in enumerate(keys):
        hit = (codes == code) & mask
        certain, possible = float(hit.all(0).sum()) / n, float(hit.any(0).sum()) / n
        got = res.metrics[key]
        assert certain - 1e-9 <= got <= possible + 1e-9, (
            f"{spec.name}: metric {key} = {got!r}, spec's classification gives {certain!r}"
            + (f" (up to {possible!r} with tokens on a breakpoint)" if possible != certain else ""))


def _overflows(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return ~torch.isfinite(x) | (x.abs() > torch.finfo(dtype).max / 4)


def check_finiteness(impl: Implementation, spec: MethodSpec, batch: Batch, dtype=torch.float32) -> None:
    """In ``dtype``: no NaN gradient; ±inf only where the spec's |A|·V overflows ``dtype``; the
    loss is finite unless some |A·J| overflows; NaN/±inf padding at masked positions gets 0."""
    padded = _pad_masked(batch)
    for label, b in (("extreme grid", extreme_grid(batch.hp)), ("drawn batch", padded)):
        q = b.cast(dtype)
        res = impl.run(b, dtype)
        adv = torch.where(q.mask, q.advantages, torch.zeros_like(q.advantages))
        live = q.mask & (adv != 0)
        log_r = torch.where(q.mask, q.log_r, torch.zeros_like(q.log_r))
        v = spec_v(spec, log_r, adv, q.hp)
        av = torch.where(live, adv.abs() * torch.clamp(v, min=1.0), torch.zeros_like(v))
        allowed = live & _overflows(av, dtype)
        bad = (torch.isnan(res.grad) | (~torch.isfinite(res.grad) & ~allowed)).nonzero()
        assert len(bad) == 0, _fail(f"{spec.name}: NaN gradient, or ±inf where the spec's |A|*V "
                                    f"is finite in {dtype} ({label})", q, bad, got=res.grad, spec_V=v)
        off = (~q.mask & (res.grad != 0)).nonzero()
        assert len(off) == 0, _fail(f"{spec.name}: masked position gets a gradient ({label})", q, off,
                                    got=res.grad)
        j = spec_j(spec, log_r, adv, q.hp, torch.where(q.mask, q.old_log_prob, torch.zeros_like(log_r)))
        aj = torch.where(live, (adv * j).abs(), torch.zeros_like(j))
        if not bool(_overflows(aj, dtype).any()):
            assert math.isfinite(float(res.loss)), f"{spec.name}: loss {float(res.loss)} with finite A*J ({label})"
        if "nonfinite_tokens" in res.metrics:
            count = int((q.mask & ~torch.isfinite(res.grad)).sum())
            assert res.metrics["nonfinite_tokens"] == count, (
                f"{spec.name}: metric nonfinite_tokens = {res.metrics['nonfinite_tokens']}, "
                f"gradient has {count} non-finite masked-in entries ({label})")


def _pad_masked(batch: Batch) -> Batch:
    """The batch with masked-out positions holding -inf / NaN / +inf log-probs and NaN advantages."""
    fill = torch.tensor([-math.inf, math.nan, math.inf], dtype=F64)
    idx = torch.arange(batch.mask.numel()).reshape(batch.mask.shape) % 3
    pad_lp, pad_old = fill[idx], fill[(idx + 1) % 3]
    keep = batch.mask
    return Batch(batch.hp, torch.where(keep, batch.log_prob, pad_lp),
                 torch.where(keep, batch.old_log_prob, pad_old),
                 torch.where(keep, batch.advantages, torch.full_like(batch.advantages, math.nan)), keep)


def _rows(batch: Batch, idx) -> Batch:
    return Batch(batch.hp, batch.log_prob[idx], batch.old_log_prob[idx], batch.advantages[idx], batch.mask[idx])


def _loss_scale(spec: MethodSpec, batch: Batch) -> float:
    """Σ|A·J|/N over the mask: the size of the terms a loss value sums (rounding scales with it)."""
    mask = batch.mask
    j = spec_j(spec, torch.where(mask, batch.log_r, 0.0), torch.where(mask, batch.advantages, 0.0), batch.hp,
               torch.where(mask, batch.old_log_prob, 0.0))
    terms = (batch.advantages * j).abs()[mask]
    return max(float(terms.sum()) / _token_mean_n(batch), 1e-300)


def check_aggregation(impl: Implementation, spec: MethodSpec, batch: Batch, cuts: Sequence[int]) -> None:
    """Micro-batches (row slices at ``cuts``) given the global token count as normalizer sum to
    the full batch: loss and per-token gradient."""
    full = impl.run(batch)
    n = _token_mean_n(batch)
    bounds = [0, *sorted(set(cuts)), batch.mask.shape[0]]
    parts = [impl.run(_rows(batch, slice(a, b)), normalizer=n) for a, b in zip(bounds[:-1], bounds[1:])]
    loss, grad = sum(float(p.loss) for p in parts), torch.cat([p.grad for p in parts])
    rtol = TOLERANCE[F64]
    atol = 1e-12 * _loss_scale(spec, batch)
    bad = (~_close(grad, full.grad, rtol, atol)).nonzero()
    assert len(bad) == 0, _fail(f"{spec.name}: micro-batch gradients (cuts {sorted(set(cuts))}, normalizer {n}) "
                                "differ from the full batch", batch, bad, micro=grad, full=full.grad)
    slack = rtol * (abs(float(full.loss)) + _loss_scale(spec, batch))  # float32 compute may re-order sums
    assert abs(loss - float(full.loss)) <= slack, (
        f"{spec.name}: sum of micro-batch losses {loss!r} != full-batch loss {float(full.loss)!r}")


def check_invariance(impl: Implementation, spec: MethodSpec, batch: Batch,
                     row_perm: Sequence[int], token_perm: Sequence[int]) -> None:
    """Permuting sequences, or the masked-in tokens among themselves (token-mean), permutes the
    gradient the same way and leaves the loss unchanged."""
    base = impl.run(batch)
    rtol = TOLERANCE[F64]
    slack = rtol * (abs(float(base.loss)) + _loss_scale(spec, batch))
    rows = _rows(batch, list(row_perm))
    res = impl.run(rows)
    bad = (~_close(res.grad, base.grad[list(row_perm)], rtol, 0.0)).nonzero()
    assert len(bad) == 0, _fail(f"{spec.name}: permuting sequences {list(row_perm)} changes the gradient",
                                rows, bad, got=res.grad, want=base.grad[list(row_perm)])
    assert abs(float(res.loss) - float(base.loss)) <= slack, (
        f"{spec.name}: permuting sequences {list(row_perm)} changes the loss "
        f"{float(base.loss)!r} -> {float(res.loss)!r}")
    pos = batch.mask.nonzero()
    src = pos[list(token_perm)]

    def move(x):
        y = x.clone()
        y[pos[:, 0], pos[:, 1]] = x[src[:, 0], src[:, 1]]
        return y

    moved = Batch(batch.hp, move(batch.log_prob), move(batch.old_log_prob), move(batch.advantages), batch.mask)
    res = impl.run(moved)
    want = move(base.grad)
    bad = (~_close(res.grad, want, rtol, 0.0)).nonzero()
    assert len(bad) == 0, _fail(f"{spec.name}: moving tokens between positions/sequences under token-mean "
                                "changes their gradient", moved, bad, got=res.grad, want=want)
    assert abs(float(res.loss) - float(base.loss)) <= slack, (
        f"{spec.name}: moving tokens under token-mean changes the loss {float(base.loss)!r} -> {float(res.loss)!r}")


def check_dtypes(impl: Implementation, spec: MethodSpec, batch: Batch) -> None:
    """float32 and bfloat16 inputs agree with float64 on the same (quantized) values, within
    per-dtype tolerances (tokens within rounding of a breakpoint excluded)."""
    for dtype in (torch.float32, torch.bfloat16):
        q = batch.cast(dtype)
        ref, low = impl.run(q, F64), impl.run(q, dtype)
        rtol = TOLERANCE[dtype]
        scale = max(float(ref.grad.abs().max()), 1e-300)
        near = _near_breakpoint(spec, q.log_r, q.hp, width=1e-5)
        bad = (~(_close(low.grad, ref.grad, rtol, 1e-6 * scale) | near)).nonzero()
        assert len(bad) == 0, _fail(f"{spec.name}: {dtype} gradient differs from float64 beyond rtol {rtol}",
                                    q, bad, got=low.grad, float64=ref.grad)
        slack = 3 * rtol * (_loss_scale(spec, q) + abs(float(ref.loss)))
        if not bool(near.any()):
            assert abs(float(low.loss) - float(ref.loss)) <= slack, (
                f"{spec.name}: {dtype} loss {float(low.loss)!r} vs float64 {float(ref.loss)!r}")


# ---------------------------------------------------------------------------------------------
# The properties, as the generated tests call them: draw inputs, then check
# ---------------------------------------------------------------------------------------------
def gradient(impl: Implementation, spec: MethodSpec, data) -> None:
    check_gradient(impl, spec, data.draw(batches(spec, impl.fixed, scale="wide"), label="batch"))


def value(impl: Implementation, spec: MethodSpec, data) -> None:
    check_value(impl, spec, data.draw(batches(spec, impl.fixed, scale="wide"), label="batch"))


def continuity(impl: Implementation, spec: MethodSpec, data) -> None:
    check_continuity(impl, spec, data.draw(hparam_strategy(spec, impl.fixed), label="hparams"))


def bounds(impl: Implementation, spec: MethodSpec, data) -> None:
    check_bounds(impl, spec, data.draw(batches(spec, impl.fixed, scale="wide"), label="batch"))


def regions(impl: Implementation, spec: MethodSpec, data) -> None:
    check_regions(impl, spec, data.draw(batches(spec, impl.fixed), label="batch"))


def finiteness(impl: Implementation, spec: MethodSpec, data) -> None:
    check_finiteness(impl, spec, data.draw(batches(spec, impl.fixed, scale="extreme"), label="batch"))


def aggregation(impl: Implementation, spec: MethodSpec, data) -> None:
    batch = data.draw(batches(spec, impl.fixed, min_rows=2), label="batch")
    rows = batch.mask.shape[0]
    cuts = data.draw(st.lists(st.integers(1, rows - 1), min_size=1, max_size=rows - 1), label="cuts")
    check_aggregation(impl, spec, batch, cuts)


def invariance(impl: Implementation, spec: MethodSpec, data) -> None:
    batch = data.draw(batches(spec, impl.fixed, min_rows=2), label="batch")
    row_perm = data.draw(st.permutations(range(batch.mask.shape[0])), label="sequence permutation")
    token_perm = data.draw(st.permutations(range(int(batch.mask.sum()))), label="token permutation")
    check_invariance(impl, spec, batch, row_perm, token_perm)


def dtypes(impl: Implementation, spec: MethodSpec, data) -> None:
    check_dtypes(impl, spec, data.draw(batches(spec, impl.fixed), label="batch"))


def _not_applicable(impl: Implementation, why: str) -> None:
    import pytest

    if impl.require_metrics:
        raise AssertionError(f"{impl.label}: {why}")
    pytest.skip(f"n/a: {why}")
