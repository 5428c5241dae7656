"""What a generated conformance module declares, and the spec it declares, evaluated per token.

Hypothesis profiles (``ci``, ``thorough``); the schema the generated files fill in (:class:`HParam`,
:class:`Breakpoint`, :class:`MethodSpec`); the spec's V and J per token in float64 (:func:`spec_v`,
:func:`spec_j`) and the region classification. torch and hypothesis only.
"""


from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

import torch
from hypothesis import HealthCheck, Phase, settings

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


@contextlib.contextmanager
def hermetic_draws():
    """Hypothesis draws that depend on the test and the profile only, not on which modules are loaded.

    Hypothesis (6.131 and later) mixes into its draws literals it mines from every "local" module in
    ``sys.modules``: any file outside site-packages and the standard library, so here dgpo_ref, spec,
    bench and a user's own code. The same derandomized test then draws other batches when another
    module has been imported, or when any literal in the project changes: in CI the report card's
    cells for verl's dppo_tv and bypass_mode changed because tests/integrations/verl/test_verl_bench.py
    had imported ``bench`` earlier in the session. Inside this context the pool of local constants
    is empty (Hypothesis's own global constants stay); tests/test_conformance_draws.py checks that
    importing a module full of literals leaves the draws unchanged, and fails if the upstream hook moves.
    """
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:  # pragma: no cover - a Hypothesis without the providers module mines nothing
        yield
        return
    original = getattr(providers, "_get_local_constants", None)
    if original is None:  # pragma: no cover - older Hypothesis: no local constants to pin
        yield
        return
    empty = providers.Constants()
    providers._get_local_constants = lambda: empty
    providers.CONSTANTS_CACHE.cache.clear()  # pools computed with local constants before entering
    try:
        yield
    finally:
        providers._get_local_constants = original
        providers.CONSTANTS_CACHE.cache.clear()


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
    V: Mapping[tuple[str, int], Callable[..., torch.Tensor]]  # (region, sign) -> V(r, log_p_old, **hp)
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


def spec_v(spec: MethodSpec, log_r: torch.Tensor, adv: torch.Tensor, hp: Mapping,
           log_p_old: torch.Tensor) -> torch.Tensor:
    """The spec's V per token (float64), region by region (log_p_old: DPPO's masks use p_old)."""
    ratio = torch.exp(log_r)
    return _per_case(spec, spec.V, log_r, adv, hp, lambda sel: (ratio[sel], log_p_old[sel]))


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
