"""The expected status of every (theorem, method): what the mathematics says, written down before
running the provers so that ``dgpo prove`` fails when a result changes.

DGPO is expected to satisfy all eight obligations. Why each baseline fails the ones it fails:

- continuity: hard clipping (grpo, dapo, aspo) drops W to 0 at the breakpoint; ce_gppo scales the
  boundary constant by beta1, beta2 != 1. (GPPO and CISPO clip V continuously, so they pass.)
- boundedness: CISPO, GPPO, CE-GPPO have W = const/p on a low region (-> oo); ASPO's 1/r inside.
- vanishing: pg, CISPO, GPPO, CE-GPPO keep W >= const/p_old (or -> oo) as p -> 0 on LN.
- monotonicity: only DGPO decays strictly; the others are constant (0, 1/p_old) or grow as p -> 0.
- bias: hard clipping has bias exactly 1/p_old; const/p exceeds 2/p_old for small p; CISPO
  reweights LP and HN, ASPO inverts IN for A > 0.
- logit_bound: CE-GPPO's beta1·(1−eps_low) exceeds 1 − eps_low when beta1 > 1.
- family: no baseline has n, m, so each would have to *be* GPPO and pg at once.
"""

from __future__ import annotations

from proofs.engine import DISPROVED, PROVED

_P, _D = PROVED, DISPROVED
_METHODS = ("pg", "grpo", "dapo", "cispo", "gppo", "ce_gppo", "aspo", "dgpo")
_TABLE = {
    #                pg  grpo dapo cispo gppo ce_gppo aspo dgpo
    "continuity":   (_P, _D, _D, _P, _P, _D, _D, _P),
    "boundedness":  (_P, _P, _P, _D, _D, _D, _D, _P),
    "vanishing":    (_D, _P, _P, _D, _D, _D, _P, _P),
    "monotonicity": (_D, _D, _D, _D, _D, _D, _D, _P),
    "bias":         (_P, _D, _D, _D, _D, _D, _D, _P),
    "surrogate":    (_P, _P, _P, _P, _P, _P, _P, _P),
    "logit_bound":  (_P, _P, _P, _P, _P, _D, _P, _P),
    "family":       (_D, _D, _D, _D, _D, _D, _D, _P),
}

#: (theorem, method) -> expected status
EXPECTED: dict[tuple[str, str], str] = {
    (theorem, method): status
    for theorem, row in _TABLE.items() for method, status in zip(_METHODS, row)
}
