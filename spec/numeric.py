"""Numbers from the spec: expressions ready for ``sympy.pycode`` and lambdified float functions.

Everything here removes the stop-gradients (``sg(x) -> x``), resolves the sign of A for one case,
and takes hyper-parameters as keyword arguments named as in :mod:`spec.hparams` (``dual_clip=None``
means off and is passed on as ``math.inf``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import sympy as sp

from spec import symbols as S
from spec.core import MethodSpec

#: which expression of a branch: V in r, W in (p, p_old), surrogate value in (p, p_old)
KINDS: dict[str, Callable[[MethodSpec, str], sp.Expr]] = {
    "V_r": MethodSpec.V_r,
    "W": MethodSpec.W,
    "J_value": MethodSpec.J_value,
}


def expression(spec: MethodSpec, region: str, sign: int, kind: str = "V_r") -> sp.Expr:
    """The plain expression (no ``sg``, no A) of ``kind`` for one region and sign of A."""
    return S.strip_sg(spec.case(KINDS[kind](spec, region), sign))


def arguments(spec: MethodSpec, kind: str = "V_r") -> list[sp.Symbol]:
    """Variables of a lambdified ``kind``: r and p_old (V_r: p_old only matters where V depends on
    it, DPPO's masks), or p and p_old; then the hyper-parameters."""
    head = [S.r, S.p_old] if kind == "V_r" else [S.p, S.p_old]
    return head + [h.symbol for h in spec.hparams]


def lambdified(spec: MethodSpec, region: str, sign: int, kind: str = "V_r") -> Callable[..., float]:
    """A float function f(x..., **hparams) for one branch, defaults filled in for missing hparams.

    ``V_r`` is f(r, p_old=None, **hparams): ``p_old`` is required only where V depends on it."""
    args = arguments(spec, kind)
    expr = expression(spec, region, sign, kind)
    fn = sp.lambdify(args, expr, modules="math")
    names = spec.hparam_names
    defaults = spec.defaults()
    needs_p_old = kind == "V_r" and expr.has(S.p_old)

    def call(*xs: float, p_old: float | None = None, **hp: float | int | None) -> float:
        if kind == "V_r":
            if p_old is None and needs_p_old:
                raise TypeError(f"{spec.name}: V on {region} depends on p_old; pass p_old=")
            xs = (*xs, 1.0 if p_old is None else p_old)
        vals = [math.inf if v is None else v for v in ({**defaults, **hp}[k] for k in names)]
        return float(fn(*xs, *vals))

    return call


def pycode(spec: MethodSpec, region: str, sign: int, kind: str = "V_r") -> str:
    """Plain Python source (``math.*`` calls) for one branch; variables named as the symbols."""
    return sp.pycode(expression(spec, region, sign, kind), fully_qualified_modules=True)
