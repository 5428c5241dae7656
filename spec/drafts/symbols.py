"""The drafts' new symbols (to move into spec/symbols.py with the records) and the sigmoid.

Assumptions as in spec/symbols.py: every new hyper-parameter is positive; finer domains are
HParam conditions.
"""

from __future__ import annotations

import math

import sympy as sp

from spec.hparams import EPS_HIGH, EPS_LOW, HParam

tau_pos = sp.Symbol("tau_pos", positive=True)
tau_neg = sp.Symbol("tau_neg", positive=True)
k_pos = sp.Symbol("k_pos", positive=True)
k_neg = sp.Symbol("k_neg", positive=True)
lambda_pos = sp.Symbol("lambda_pos", positive=True)
lambda_neg = sp.Symbol("lambda_neg", positive=True)
delta_low = sp.Symbol("delta_low", positive=True)
delta_high = sp.Symbol("delta_high", positive=True)
trunc = sp.Symbol("trunc", positive=True)

#: name -> symbol, for every new symbol
SYMBOLS: dict[str, sp.Symbol] = {s.name: s for s in (tau_pos, tau_neg, k_pos, k_neg, lambda_pos, lambda_neg,
                                                     delta_low, delta_high, trunc)}


def sigmoid(x: sp.Expr) -> sp.Expr:
    """σ(x) = 1/(1 + exp(−x)), torch.sigmoid's function (SymPy has no sigmoid of its own)."""
    return 1 / (1 + sp.exp(-x))


def hparam(name: str, default: float, constraint: str, lower: float, upper: float = math.inf) -> HParam:
    """A real hyper-parameter lower < x < upper, its symbol taken from :data:`SYMBOLS`."""
    return HParam(name, SYMBOLS[name], default, constraint, lower, upper)



#: eps_low, eps_high (0.2) only cut the regions for the metrics (as for ``pg``): the drafts'
#: weights do not use them, so every obligation is claimed for all 0 < eps_low < 1, eps_high > 0
REGION_HPARAMS = (EPS_LOW.with_default(0.2), EPS_HIGH.with_default(0.2))
