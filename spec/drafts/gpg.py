"""gpg: Group Policy Gradient (arXiv 2504.02546), verl ``gpg``.

verl 0.9.1, verl/trainer/ppo/core_algos.py, ``compute_policy_loss_gpg``:
``pg_losses = -log_prob * advantages`` (old_log_prob unused, no ratio, no clip, no clamp), then
``agg_loss`` with the configured ``loss_agg_mode``. (GPG's advantage rescaling lives in the
advantage estimator ``gpg``, ``compute_gpg_outcome_advantage``, not in the loss.)

So V = 1 on ∇log π for either sign of A and every r: W = 1/p, the on-policy REINFORCE weight
(equal to the spec's ``pg``, W = 1/p_old, only at r = 1). No hyper-parameters of its own
(eps_low, eps_high only cut the regions for the metrics, as for ``pg``).
"""

from __future__ import annotations

import sympy as sp

from spec.core import Branch, MethodSpec
from spec.drafts.symbols import REGION_HPARAMS
from spec.symbols import p

_ALL = Branch.from_V(sp.S.One, J=sp.log(p))

SPEC = MethodSpec(
    name="gpg",
    title="GPG (group policy gradient: REINFORCE on log π, no ratio)",
    summary="V = 1 in every region, for either sign of A (W = 1/p)",
    hparams=REGION_HPARAMS,
    branches={"IN": _ALL, "LN": _ALL, "HP": _ALL, "LP": _ALL, "HN": _ALL},
)

HPARAMS = REGION_HPARAMS
FLAGS: dict[str, str] = {}
LIBRARY_NAMES: dict = {"verl": {}}
SAMPLES: dict = {}

#: the mathematically right status of each obligation for this draft (library defaults' domains)
EXPECTED = {"continuity": "proved", "boundedness": "disproved", "vanishing": "disproved", "monotonicity": "disproved", "bias": "disproved", "surrogate": "proved", "logit_bound": "disproved", "family": "disproved"}

#: worked examples: one completion token, p_old = 0.4, library defaults, float64; ``V`` is
#: −(d loss/d log_prob)/A. Computed by spec/drafts/library_examples.py with the lines:
#: verl: loss, _ = get_policy_loss_fn("gpg")(old_log_prob, log_prob, advantages, response_mask, "token-mean", ActorConfig(strategy="fsdp", rollout_n=1, ppo_micro_batch_size_per_gpu=1)); loss.backward()
EXAMPLES = (
    {"library": "verl", "r": 0.5, "p_old": 0.4, "A": -1.0, "loss": -1.6094379124341003, "V": 1.0},
    {"library": "verl", "r": 1.3, "p_old": 0.4, "A": 1.0, "loss": 0.6539264674066639, "V": 1.0},
    {"library": "verl", "r": 2.0, "p_old": 0.4, "A": -0.5, "loss": -0.11157177565710485, "V": 1.0},
)
