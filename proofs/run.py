"""Run the obligations for methods and collect records.

One record per (theorem, method, instance): ``instance`` is ``general`` when every claim was decided
for symbolic n, m (or the method has none), else one record per (n, m) in 1..6 x 1..6.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import sympy as sp

from proofs.engine import DISPROVED, PROVED, UNKNOWN, Context, Outcome, instance_label
from proofs.expected import EXPECTED
from proofs.lemmas import softmax_lemma
from proofs.theorems import THEOREMS, Theorem
from spec import symbols as S
from spec.core import MethodSpec

#: hyper-parameters held at the method's default in the proofs (an on/off switch, not a real knob)
FIXED = ("dual_clip",)


@dataclass(frozen=True)
class Record:
    theorem: str
    method: str
    instance: str
    status: str
    expected: str
    how: str
    counterexample: dict | None

    def as_json(self) -> dict:
        return asdict(self)


def context(spec: MethodSpec) -> Context:
    """Domains of the free hyper-parameters, fixed switches, and the family symbols n, m."""
    free = [h for h in spec.hparams if h.name not in FIXED and h.symbol not in (S.n, S.m)]
    fixed = {spec.hparam(k).symbol: spec.hparam(k).exact(spec.hparam(k).default)
             for k in FIXED if k in spec.hparam_names}
    family = tuple(s for s in (S.n, S.m) if s in {h.symbol for h in spec.hparams})
    return Context(domain=sp.And(*(h.condition() for h in free)), fixed=fixed, family=family)


def _combine(outcomes: list[Outcome]) -> Outcome:
    """All proved -> proved; any disproved -> disproved (first counterexample); else unknown."""
    hows = "; ".join(dict.fromkeys(o.how for o in outcomes))
    for o in outcomes:
        if o.status == DISPROVED:
            return Outcome(DISPROVED, o.how, o.counterexample)
    status = PROVED if all(o.status == PROVED for o in outcomes) else UNKNOWN
    return Outcome(status, hows)


def prove(theorem: Theorem, spec: MethodSpec, expected: str | None = None) -> list[Record]:
    """Decide one theorem for one method: general first, then per (n, m) instance if needed."""
    expected = expected or EXPECTED.get((theorem.name, spec.name), PROVED)
    ctx = context(spec)
    claims = theorem.claims(spec)
    general = [claim.decide(ctx, {}) for claim in claims]
    if theorem.needs_softmax_lemma:
        general.append(softmax_lemma())
    decided = [o for o in general if o is not None]
    record = lambda inst, o: Record(theorem.name, spec.name, inst, o.status, expected, o.how,  # noqa: E731
                                    o.counterexample)
    if len(decided) == len(general) or any(o.status == DISPROVED for o in decided):
        return [record("general", _combine(decided))]
    if not ctx.family:
        return [record("general", Outcome(UNKNOWN, "undecided without n, m"))]
    pending = [c for c, o in zip(claims, general) if o is None]
    out = []
    for inst in ctx.instances():
        found = [c.decide(ctx, inst) or Outcome(UNKNOWN, "undecided") for c in pending]
        out.append(record(instance_label(inst), _combine(decided + found)))
    return out


def run(methods: Iterable[MethodSpec], theorems: Iterable[str] | None = None,
        progress: bool = False) -> list[Record]:
    """Every record for the given methods and theorems (default: all eight)."""
    chosen = [THEOREMS[t] for t in (theorems or THEOREMS)]
    jobs = [(t, s) for s in methods for t in chosen]
    if progress:
        from tqdm import tqdm

        jobs = tqdm(jobs, desc="proving", unit="obligation", leave=False, disable=None)
    return [rec for t, s in jobs for rec in prove(t, s)]
