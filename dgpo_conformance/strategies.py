"""Batches and Hypothesis strategies: hyper-parameters from the declared domains, tokens in every
region, at the breakpoints and far outside them (``SCALES``), padding, and the extreme grid."""


from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from hypothesis import strategies as st

from dgpo_conformance.schema import F64, HParam, MethodSpec


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
