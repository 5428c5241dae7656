"""gpg: Group Policy Gradient (arXiv 2504.02546), verl ``gpg``: REINFORCE on log π, no ratio, no clip.

verl 0.9.1, ``compute_policy_loss_gpg``: ``pg_losses = -log_prob * advantages`` (old_log_prob
unused, no clamp), then ``agg_loss`` with the configured ``loss_agg_mode``. GPG's advantage
rescaling is the separate advantage estimator ``gpg`` (``compute_gpg_outcome_advantage``), not
part of the loss. verl's ``bypass_mode`` with ``loss_type="reinforce"`` and ``rollout_is=None`` is
the same loss.

So V = 1 on ∇log π for either sign of A and every r: W = 1/p, the on-policy REINFORCE weight. It is
*not* ``pg`` (W = 1/p_old, V = r): the two agree only at r = 1. No hyper-parameters of its own:
eps_low, eps_high only cut the regions for the metrics, as for ``pg``.
"""

import sympy as sp

from spec.core import REGIONS, Branch, Example, LibraryExample, MethodSpec
from spec.hparams import EPS_HIGH, EPS_LOW
from spec.symbols import p

#: V = 1, J = log p, in every region
REINFORCE = Branch.from_V(sp.S.One, J=sp.log(p))

SPEC = MethodSpec(
    name="gpg",
    title="GPG (group policy gradient: REINFORCE on log π, no ratio)",
    summary="V = 1 (W = 1/p) in every region, for either sign of A",
    hparams=(EPS_LOW.with_default(0.2), EPS_HIGH.with_default(0.2)),
    branches={region: REINFORCE for region in REGIONS},
    disproved={
        "boundedness": "W*p_old = 1/r exceeds 1 for r < 1",
        "vanishing": "W*p_old = 1/r -> oo as r -> 0 on LN",
        "monotonicity": "W*p_old = 1/r decreases in p on LN",
        "bias": "W*p_old = 1/r differs from 1 off r = 1",
        "logit_bound": "V = 1 exceeds 1 - eps_low on LN",
        "family": "no n, m: it would have to be GPPO and pg at once",
    },
    examples=(Example(0.5, -1, 1.0), Example(1.5, 1, 1.0), Example(0.5, 1, 1.0), Example(1.5, -1, 1.0),
              Example(1.1, 1, 1.0)),
    library=(
        LibraryExample("verl", 0.5, 0.4, -1.0, -1.6094379124341003, 1.0),
        LibraryExample("verl", 1.3, 0.4, 1.0, 0.6539264674066639, 1.0),
        LibraryExample("verl", 2.0, 0.4, -0.5, -0.11157177565710485, 1.0),
    ),
    sources="verl `gpg` (no hyper-parameters); verl `bypass_mode` with loss_type reinforce, rollout_is None",
)
