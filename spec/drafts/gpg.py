"""gpg: Group Policy Gradient (arXiv 2504.02546), verl ``gpg``.

verl 0.9.1, verl/trainer/ppo/core_algos.py, ``compute_policy_loss_gpg``:
``pg_losses = -log_prob * advantages`` (old_log_prob unused, no ratio, no clip, no clamp), then
``agg_loss`` with the configured ``loss_agg_mode``. (GPG's advantage rescaling lives in the
advantage estimator ``gpg``, ``compute_gpg_outcome_advantage``, not in the loss.)

So V = 1 on ∇log π for either sign of A and every r: W = 1/p, the on-policy REINFORCE weight
(equal to the spec's ``pg``, W = 1/p_old, only at r = 1). No hyper-parameters.
"""

from __future__ import annotations

import sympy as sp

from spec.core import Branch, MethodSpec
from spec.symbols import p

_ALL = Branch.from_V(sp.S.One, J=sp.log(p))

SPEC = MethodSpec(
    name="gpg",
    title="GPG (group policy gradient: REINFORCE on log π, no ratio)",
    summary="V = 1 in every region, for either sign of A (W = 1/p)",
    hparams=(),
    branches={"IN": _ALL, "LN": _ALL, "HP": _ALL, "LP": _ALL, "HN": _ALL},
)

HPARAMS = ()
FLAGS: dict[str, str] = {}
LIBRARY_NAMES: dict = {"verl": {}}
SAMPLES: dict = {}
EXPECTED = {}
EXAMPLES = ()
