"""tis: REINFORCE with a truncated importance weight, V = min(r, trunc) (TRL ``cispo``, verl token-level TIS).

- TRL 1.16, ``GRPOTrainer._compute_loss``, ``loss_type="cispo"``:
  ``clamped_ratios = torch.clamp(coef_1, max=self.epsilon_high).detach()``;
  ``per_token_loss = -clamped_ratios * advantages * per_token_logps``: trunc is ``epsilon_high``,
  which defaults to ``epsilon`` = 0.2. There is no lower clip, so this is *not* dgpo's ``cispo``
  (V = clip(r, 1 − eps_low, 1 + eps_high)): it is that at eps_low -> 1 with 1 + eps_high = trunc.
- verl 0.9.1, ``compute_policy_loss_bypass_mode`` with ``rollout_correction.loss_type="reinforce"``
  and ``rollout_is="token"``: ``-advantages * log_prob * rollout_is_weights`` with the detached
  weight min(exp(clamp(log r, ±20)), rollout_is_threshold), threshold default 2.0
  (``RolloutCorrectionConfig``; its own default ``rollout_is="sequence"`` is a sequence weight,
  which does not fit the per-token form).

V = min(r, trunc) on ∇log π for either sign of A; W = min(r, trunc)/p; J = sg(min(r, trunc))·log p.

**Default trunc = 2.0, verl's** ``rollout_is_threshold``; TRL's effective default is 0.2. TRL's 0.2
is not a truncation chosen for this loss: ``epsilon_high`` falls back to ``epsilon``, the clip
*width* of the PPO losses, and used as an absolute cap it holds every token's weight at ≤ 0.2,
on-policy tokens (r = 1) included, i.e. it scales the whole gradient by 0.2. TRL's own
documentation recommends epsilon_high = 5.0 for cispo (ScaleRL's ε_max), and verl's 2.0 is a cap
chosen as a truncation threshold, so 2.0 is the default; the TRL examples below run with
trunc = 0.2 to match TRL's defaults.
"""

import sympy as sp

from spec.core import REGIONS, Branch, Example, LibraryExample, MethodSpec
from spec.hparams import EPS_HIGH, EPS_LOW, TRUNC
from spec.symbols import p, r, ratio, sg

trunc = TRUNC.symbol
_ALL = Branch.from_V(sp.Min(r, trunc), J=sg(sp.Min(ratio, trunc)) * sp.log(p))

SPEC = MethodSpec(
    name="tis",
    title="TIS (REINFORCE with a truncated importance weight; TRL's cispo)",
    summary="V = min(r, trunc) in every region, for either sign of A",
    hparams=(EPS_LOW.with_default(0.2), EPS_HIGH.with_default(0.2), TRUNC.with_default(2.0)),
    branches={region: _ALL for region in REGIONS},
    disproved={
        "vanishing": "W*p_old = min(r, trunc)/r = 1 for r < trunc: no decay as r -> 0",
        "monotonicity": "W*p_old = 1 is constant on LN",
        "bias": "W*p_old = trunc/r != 1 inside the trust region when trunc < 1 + eps_high (TRL's 0.2)",
        "family": "no n, m: it would have to be GPPO and pg at once",
    },
    examples=(Example(0.5, -1, 0.5), Example(0.1, -1, 0.1), Example(1.5, 1, 1.5), Example(3.0, 1, 2.0),
              Example(0.5, 1, 0.5), Example(3.0, -0.5, 2.0), Example(1.1, 1, 1.1)),
    library=(
        LibraryExample("verl", 0.1, 0.4, -1.0, -0.32188758248682015, 0.10000000000000002),
        LibraryExample("verl", 1.3, 0.4, 1.0, 0.8501044076286631, 1.3),
        LibraryExample("verl", 3.0, 0.4, -0.5, 0.1823215567939548, 2.0),
        LibraryExample("trl", 0.1, 0.4, -1.0, -0.32188758248682015, 0.10000000000000002, {"trunc": 0.2}),
        LibraryExample("trl", 1.3, 0.4, 1.0, 0.1307852934813328, 0.2, {"trunc": 0.2}),
        LibraryExample("trl", 3.0, 0.4, -0.5, 0.01823215567939548, 0.2, {"trunc": 0.2}),
    ),
    sources="TRL `cispo` (trunc = epsilon_high, effective default 0.2); verl `bypass_mode` with loss_type "
            "reinforce, rollout_is token (rollout_is_threshold 2.0). Default 2.0, verl's: TRL's 0.2 is "
            "epsilon's clip width reused as a cap (it scales every token by <= 0.2; TRL recommends 5.0)",
)
