"""Runtime of the generated conformance tests (``dgpo conformance`` runs them: :mod:`dgpo_conformance.runner`).

``dgpo gen-tests`` (dgpo_conformance/gentests.py) writes ``tests/conformance/test_<method>.py`` from the SymPy
spec: per method the hyper-parameter domains, the weight ``V`` on ∇log π and the surrogate value
``J`` per region as plain torch expressions, the breakpoints with what the spec says about their
one-sided limits, and the bounds on ``W``. Those files hold data and one line per test; the
properties themselves live here, written once for every method (PyTorch OpInfo style):

| property | what must hold |
|---|---|
| ``gradient`` | d loss/d log_prob = −A·V/N per token (token-mean), 0 off the mask |
| ``value`` | the loss equals −Σ A·J/N |
| ``continuity`` | one-sided limits at each breakpoint (± a few ulps, ± 1e-4 relative) agree where the spec is continuous, jump by the spec's jump where it is not |
| ``bounds`` | the per-token W = −grad·N/(A·p) lies in the spec's bounds (DGPO: 0 ≤ W ≤ 1/p_old) |
| ``regions`` | the ``region/<R>`` metrics equal the spec's classification |
| ``finiteness`` | p in [1e-30, 1], abs(log r) up to 1e3: no NaN; ±inf only where A·V overflows; NaN/±inf padding gets exactly 0 |
| ``aggregation`` | micro-batches with the global normalizer sum to the full batch |
| ``invariance`` | permuting sequences, or tokens under token-mean, permutes the gradient and keeps the loss |
| ``dtypes`` | float32 and bfloat16 inputs agree with float64 within per-dtype tolerances |

The profiles and declarations live in :mod:`dgpo_conformance.schema`, the strategies in
:mod:`dgpo_conformance.strategies`, the adapters in :mod:`dgpo_conformance.adapters`; this module
re-exports what the generated files use as ``C.*`` and defines the checks.

The implementation under test is an :class:`Implementation`: a function and the calling
convention of one of :data:`SIGNATURES` (dgpo_ref's keywords, or verl's policy-loss signature).
The generated tests get it from the ``impl`` fixture (tests/conformance/conftest.py), which reads
``DGPO_CONFORMANCE_IMPL`` (``module:function`` or ``path/to/file.py:function``; default
``dgpo_ref.policy_loss``), ``DGPO_CONFORMANCE_SIGNATURE`` and ``DGPO_CONFORMANCE_HPARAMS`` (JSON:
hyper-parameters to hold fixed instead of sampling them). ``DGPO_HYPOTHESIS_PROFILE`` picks the
Hypothesis profile: ``ci`` (default; the whole suite in well under a minute on 2 cores) or
``thorough`` (100x the examples).

This module imports torch, hypothesis and pytest (never SymPy); nothing in dgpo_ref/ imports it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from hypothesis import strategies as st

from dgpo_conformance import PROPERTIES  # noqa: F401 (the generated tests' C.PROPERTIES)
from dgpo_conformance.adapters import (  # noqa: F401 (the generated tests' and the runner's C.*)
    HPARAMS_ENV,
    IMPL_ENV,
    SIGNATURE_ENV,
    SIGNATURES,
    CodeExited,
    Implementation,
    implementation_from_env,
    load_function,
)
from dgpo_conformance.schema import (  # noqa: F401
    AMBIGUOUS,
    F64,
    PROFILE_ENV,
    REGIONS,
    Breakpoint,
    HParam,
    MethodSpec,
    _hp_tensors,
    classify,
    profile,
    spec_candidates,
    spec_j,
    spec_v,
)
from dgpo_conformance.strategies import Batch, _nudge, batches, extreme_grid, hparam_strategy  # noqa: F401

# ---------------------------------------------------------------------------------------------
# Assertions
# ---------------------------------------------------------------------------------------------
#: (rtol, atol factor) per input dtype, for gradients and loss values against float64
TOLERANCE = {torch.float64: 5e-5, torch.float32: 2e-4, torch.bfloat16: 2e-2}


def _token_mean_n(batch: Batch) -> float:
    return float(batch.mask.sum())


def _close(got: torch.Tensor, want: torch.Tensor, rtol: float, atol: float) -> torch.Tensor:
    return (got - want).abs() <= rtol * want.abs() + atol


def _fail(what: str, batch: Batch, idx: torch.Tensor, **cols: torch.Tensor) -> str:
    """A readable report of the offending tokens (at most 4)."""
    lines = [what]
    ratio = torch.exp(batch.log_r)
    for k, (i, j) in enumerate(idx.tolist()):
        if k == 4:
            lines.append(f"  ... and {len(idx) - 4} more")
            break
        extra = ", ".join(f"{name}={float(v[i, j]):.17g}" for name, v in cols.items())
        lines.append(f"  token[{i},{j}]: r={float(ratio[i, j]):.17g} A={float(batch.advantages[i, j]):.6g} "
                     f"mask={bool(batch.mask[i, j])} {extra}")
    return "\n".join(lines)


def _any_close(got: torch.Tensor, candidates: torch.Tensor, rtol: float, atol: float) -> torch.Tensor:
    return _close(got[None], candidates, rtol, atol).any(0)


def expected_grad(spec: MethodSpec, batch: Batch, normalizer: float | None = None) -> torch.Tensor:
    """The spec's gradient candidates (3, rows, cols): −A·V/N on the mask, 0 elsewhere."""
    n = normalizer or _token_mean_n(batch)
    adv = batch.advantages

    def grad(log_r):
        g = -adv * spec_v(spec, log_r, adv, batch.hp, batch.old_log_prob) / n
        return torch.where(batch.mask & (adv != 0), g, torch.zeros_like(g))

    return spec_candidates(grad, batch.log_r)


def check_gradient(impl: Implementation, spec: MethodSpec, batch: Batch) -> None:
    """d loss/d log_prob = −A·V/N on the mask (N = masked-in tokens), exactly 0 off the mask."""
    res = impl.run(batch)
    want = expected_grad(spec, batch)
    rtol = TOLERANCE[F64]
    atol = 1e-30 * float(batch.advantages.abs().max()) / _token_mean_n(batch)
    ok = _any_close(res.grad, want, rtol, atol)
    bad = (~ok).nonzero()
    assert len(bad) == 0, _fail(f"{spec.name}: gradient differs from the spec's -A*V/N", batch, bad,
                                got=res.grad, spec=want[0])


def check_value(impl: Implementation, spec: MethodSpec, batch: Batch) -> None:
    """The loss equals −Σ A·J/N (the spec's surrogate aggregated by token-mean)."""
    res = impl.run(batch)
    adv, live = batch.advantages, batch.mask & (batch.advantages != 0)
    n = _token_mean_n(batch)
    per = spec_candidates(lambda lr: torch.where(
        live, -adv * spec_j(spec, lr, adv, batch.hp, batch.old_log_prob) / n, torch.zeros_like(lr)),
        batch.log_r)
    lo, hi = per.amin(0).sum(), per.amax(0).sum()
    slack = TOLERANCE[F64] * float(per.abs().amax(0).sum()) + 1e-300
    got = float(res.loss)
    assert float(lo) - slack <= got <= float(hi) + slack, (
        f"{spec.name}: loss {got!r} != spec's -sum(A*J)/N = {float(per[0].sum())!r} (tolerance {slack:.3g})")


def _sides(batch_hp: Mapping, spec: MethodSpec):
    """Tokens just left and right of every breakpoint: ±1e-4 relative and ± a few ulps (in log r)."""
    rows = []
    for bp, at in spec.points(batch_hp):
        la = math.log(at)
        for tag, left, right in (("1e-4", la + math.log1p(-1e-4), la + math.log1p(1e-4)),
                                 ("ulps", _nudge(la, -4), _nudge(la, 4))):
            rows.append((bp, at, tag, left, right))
    return rows


def check_continuity(impl: Implementation, spec: MethodSpec, hp: Mapping) -> None:
    """At each breakpoint b, the implementation's V at b·(1 ± 1e-4) is the spec's, and its jump
    across b matches the spec's one-sided limits there: none where the spec proves V continuous
    (also at b ± a few ulps), the spec's jump where it does not."""
    rows = _sides(hp, spec)
    if not rows:
        return
    log_r = torch.tensor([[lft, rgt] for _, _, _, lft, rgt in rows], dtype=F64)
    adv = torch.tensor([[float(bp.sign)] * 2 for bp, *_ in rows], dtype=F64)
    old = -2.0 - torch.clamp(log_r, min=0.0)
    batch = Batch(dict(hp), old + log_r, old, adv, torch.ones_like(log_r, dtype=torch.bool))
    res = impl.run(batch)
    v_impl = -res.grad * _token_mean_n(batch) / adv
    hpt, rtol = _hp_tensors(spec, hp), TOLERANCE[F64]
    for k, (bp, at, tag, *_) in enumerate(rows):
        vl, vr = float(v_impl[k, 0]), float(v_impl[k, 1])
        lim_l, lim_r = (float(torch.as_tensor(spec.V[(side, bp.sign)](
            torch.tensor([at * (1 + d)], dtype=F64), old[k, :1], **hpt)).reshape(-1)[0])
            for side, d in ((bp.left, -1e-13), (bp.right, 1e-13)))
        scale = max(abs(lim_l), abs(lim_r), 1e-300)
        # the proofs' verdict holds on their domain; where these hparams leave it, trust the limits
        continuous = bp.continuous and abs(lim_l - lim_r) <= 1e-9 * scale
        where = (f"{spec.name} at breakpoint {bp.name}: r = {at!r}, A sign {bp.sign:+d}, "
                 f"{'±' + tag + ' relative' if tag == '1e-4' else '± 4 ulps in log r'}")
        if tag == "1e-4":
            sl, sr = (float(spec_v(spec, batch.log_r[k, i:i + 1], adv[k, i:i + 1], hp, old[k, i:i + 1]))
                      for i in (0, 1))
            if continuous:
                assert abs(vl - vr) <= 4 * abs(sr - sl) + rtol * scale, (
                    f"{where}: spec proves V continuous (limit {lim_l!r}), implementation jumps "
                    f"{vl!r} -> {vr!r}")
            else:
                assert abs((vr - vl) - (lim_r - lim_l)) <= 4 * abs(sr - sl - lim_r + lim_l) + rtol * scale, (
                    f"{where}: spec's jump is {lim_l!r} -> {lim_r!r}, implementation's {vl!r} -> {vr!r}")
            for side, got, want in (("left", vl, sl), ("right", vr, sr)):
                assert abs(got - want) <= rtol * abs(want) + 1e-12 * scale, (
                    f"{where}: V {side} of it is {got!r}, spec says {want!r}")
        elif continuous:
            for got in (vl, vr):
                assert abs(got - lim_l) <= 1e-6 * scale, (
                    f"{where}: spec proves V continuous with limit {lim_l!r}; implementation gives "
                    f"{vl!r} / {vr!r}")
        else:
            for got in (vl, vr):
                assert any(abs(got - s) <= 1e-6 * scale for s in (lim_l, lim_r)), (
                    f"{where}: V = {got!r} is neither one-sided limit ({lim_l!r}, {lim_r!r})")


def check_bounds(impl: Implementation, spec: MethodSpec, batch: Batch) -> None:
    """The per-token W = −grad·N/(A·p) lies within the spec's bounds (checked as V = p·W)."""
    res = impl.run(batch)
    adv, n = batch.advantages, _token_mean_n(batch)
    live = batch.mask & (adv != 0)
    safe_adv = torch.where(live, adv, torch.ones_like(adv))
    v_impl = torch.where(live, -res.grad * n / safe_adv, torch.zeros_like(adv))
    ratio, hpt = torch.exp(batch.log_r), _hp_tensors(spec, batch.hp)
    region = classify(ratio, adv, batch.hp)
    sign = torch.where(adv < 0, -1, 1)
    rtol = TOLERANCE[F64]
    for (name, s), bounds_fn in spec.bounds.items():
        sel = live & (region == REGIONS.index(name)) & (sign == s)
        if not bool(sel.any()):
            continue
        r = ratio[sel]
        lo, hi = (torch.broadcast_to(torch.as_tensor(x, dtype=F64), r.shape) for x in bounds_fn(r, **hpt))
        # near a breakpoint the region may be decided by rounding: use the looser neighbour bound
        v = v_impl[sel]
        ok = (v >= lo * (1 - rtol) - 1e-300) & (v <= hi * (1 + rtol) + 1e-300)
        near = _near_breakpoint(spec, batch.log_r, batch.hp)[sel]
        bad_idx = sel.nonzero()[~(ok | near)]
        assert len(bad_idx) == 0, _fail(
            f"{spec.name}: W outside the spec's bounds on {name} (A sign {s:+d})", batch, bad_idx,
            V_impl=v_impl, V_lower=_scatter(lo, sel), V_upper=_scatter(hi, sel))


def _scatter(values: torch.Tensor, sel: torch.Tensor) -> torch.Tensor:
    out = torch.full(sel.shape, math.nan, dtype=F64)
    out[sel] = values
    return out


def _near_breakpoint(spec: MethodSpec, log_r: torch.Tensor, hp: Mapping, width: float = AMBIGUOUS):
    near = torch.zeros_like(log_r, dtype=torch.bool)
    points = {math.log(1 - hp["eps_low"]), math.log(1 + hp["eps_high"])}
    points |= {math.log(at) for _, at in spec.points(hp)}
    for lp in points:
        near |= (log_r - lp).abs() <= width * (1 + abs(lp))
    return near


def check_regions(impl: Implementation, spec: MethodSpec, batch: Batch) -> None:
    """``region/<R>`` metrics (fractions of masked-in tokens) equal the spec's classification."""
    res = impl.run(batch)
    keys = [f"region/{r}" for r in REGIONS]
    missing = [k for k in keys if k not in res.metrics]
    if missing:
        _not_applicable(impl, f"the implementation reports no {', '.join(missing)} metrics")
    mask, adv, n = batch.mask, batch.advantages, _token_mean_n(batch)
    codes = torch.stack([classify(torch.exp(lr), adv, batch.hp)
                         for lr in (batch.log_r, batch.log_r - AMBIGUOUS, batch.log_r + AMBIGUOUS)])
    for code, key in enumerate(keys):
        hit = (codes == code) & mask
        certain, possible = float(hit.all(0).sum()) / n, float(hit.any(0).sum()) / n
        got = res.metrics[key]
        assert certain - 1e-9 <= got <= possible + 1e-9, (
            f"{spec.name}: metric {key} = {got!r}, spec's classification gives {certain!r}"
            + (f" (up to {possible!r} with tokens on a breakpoint)" if possible != certain else ""))


def _overflows(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return ~torch.isfinite(x) | (x.abs() > torch.finfo(dtype).max / 4)


def check_finiteness(impl: Implementation, spec: MethodSpec, batch: Batch, dtype=torch.float32) -> None:
    """In ``dtype``: no NaN gradient; ±inf only where the spec's |A|·V overflows ``dtype``; the
    loss is finite unless some |A·J| overflows; NaN/±inf padding at masked positions gets 0."""
    padded = _pad_masked(batch)
    for label, b in (("extreme grid", extreme_grid(batch.hp)), ("drawn batch", padded)):
        q = b.cast(dtype)
        res = impl.run(b, dtype)
        adv = torch.where(q.mask, q.advantages, torch.zeros_like(q.advantages))
        live = q.mask & (adv != 0)
        log_r = torch.where(q.mask, q.log_r, torch.zeros_like(q.log_r))
        log_p_old = torch.where(q.mask, q.old_log_prob, torch.zeros_like(log_r))
        v = spec_v(spec, log_r, adv, q.hp, log_p_old)
        av = torch.where(live, adv.abs() * torch.clamp(v, min=1.0), torch.zeros_like(v))
        allowed = live & _overflows(av, dtype)
        bad = (torch.isnan(res.grad) | (~torch.isfinite(res.grad) & ~allowed)).nonzero()
        assert len(bad) == 0, _fail(f"{spec.name}: NaN gradient, or ±inf where the spec's |A|*V "
                                    f"is finite in {dtype} ({label})", q, bad, got=res.grad, spec_V=v)
        off = (~q.mask & (res.grad != 0)).nonzero()
        assert len(off) == 0, _fail(f"{spec.name}: masked position gets a gradient ({label})", q, off,
                                    got=res.grad)
        j = spec_j(spec, log_r, adv, q.hp, log_p_old)
        aj = torch.where(live, (adv * j).abs(), torch.zeros_like(j))
        if not bool(_overflows(aj, dtype).any()):
            assert math.isfinite(float(res.loss)), f"{spec.name}: loss {float(res.loss)} with finite A*J ({label})"
        if "nonfinite_tokens" in res.metrics:
            count = int((q.mask & ~torch.isfinite(res.grad)).sum())
            assert res.metrics["nonfinite_tokens"] == count, (
                f"{spec.name}: metric nonfinite_tokens = {res.metrics['nonfinite_tokens']}, "
                f"gradient has {count} non-finite masked-in entries ({label})")


def _pad_masked(batch: Batch) -> Batch:
    """The batch with masked-out positions holding -inf / NaN / +inf log-probs and NaN advantages."""
    fill = torch.tensor([-math.inf, math.nan, math.inf], dtype=F64)
    idx = torch.arange(batch.mask.numel()).reshape(batch.mask.shape) % 3
    pad_lp, pad_old = fill[idx], fill[(idx + 1) % 3]
    keep = batch.mask
    return Batch(batch.hp, torch.where(keep, batch.log_prob, pad_lp),
                 torch.where(keep, batch.old_log_prob, pad_old),
                 torch.where(keep, batch.advantages, torch.full_like(batch.advantages, math.nan)), keep)


def _rows(batch: Batch, idx) -> Batch:
    return Batch(batch.hp, batch.log_prob[idx], batch.old_log_prob[idx], batch.advantages[idx], batch.mask[idx])


def _loss_scale(spec: MethodSpec, batch: Batch) -> float:
    """Σ|A·J|/N over the mask: the size of the terms a loss value sums (rounding scales with it)."""
    mask = batch.mask
    j = spec_j(spec, torch.where(mask, batch.log_r, 0.0), torch.where(mask, batch.advantages, 0.0), batch.hp,
               torch.where(mask, batch.old_log_prob, 0.0))
    terms = (batch.advantages * j).abs()[mask]
    return max(float(terms.sum()) / _token_mean_n(batch), 1e-300)


def check_aggregation(impl: Implementation, spec: MethodSpec, batch: Batch, cuts: Sequence[int]) -> None:
    """Micro-batches (row slices at ``cuts``) given the global token count as normalizer sum to
    the full batch: loss and per-token gradient."""
    full = impl.run(batch)
    n = _token_mean_n(batch)
    bounds = [0, *sorted(set(cuts)), batch.mask.shape[0]]
    parts = [impl.run(_rows(batch, slice(a, b)), normalizer=n) for a, b in zip(bounds[:-1], bounds[1:])]
    loss, grad = sum(float(p.loss) for p in parts), torch.cat([p.grad for p in parts])
    rtol = TOLERANCE[F64]
    atol = 1e-12 * _loss_scale(spec, batch)
    bad = (~_close(grad, full.grad, rtol, atol)).nonzero()
    assert len(bad) == 0, _fail(f"{spec.name}: micro-batch gradients (cuts {sorted(set(cuts))}, normalizer {n}) "
                                "differ from the full batch", batch, bad, micro=grad, full=full.grad)
    slack = rtol * (abs(float(full.loss)) + _loss_scale(spec, batch))  # float32 compute may re-order sums
    assert abs(loss - float(full.loss)) <= slack, (
        f"{spec.name}: sum of micro-batch losses {loss!r} != full-batch loss {float(full.loss)!r}")


def check_invariance(impl: Implementation, spec: MethodSpec, batch: Batch,
                     row_perm: Sequence[int], token_perm: Sequence[int]) -> None:
    """Permuting sequences, or the masked-in tokens among themselves (token-mean), permutes the
    gradient the same way and leaves the loss unchanged."""
    base = impl.run(batch)
    rtol = TOLERANCE[F64]
    slack = rtol * (abs(float(base.loss)) + _loss_scale(spec, batch))
    rows = _rows(batch, list(row_perm))
    res = impl.run(rows)
    bad = (~_close(res.grad, base.grad[list(row_perm)], rtol, 0.0)).nonzero()
    assert len(bad) == 0, _fail(f"{spec.name}: permuting sequences {list(row_perm)} changes the gradient",
                                rows, bad, got=res.grad, want=base.grad[list(row_perm)])
    assert abs(float(res.loss) - float(base.loss)) <= slack, (
        f"{spec.name}: permuting sequences {list(row_perm)} changes the loss "
        f"{float(base.loss)!r} -> {float(res.loss)!r}")
    pos = batch.mask.nonzero()
    src = pos[list(token_perm)]

    def move(x):
        y = x.clone()
        y[pos[:, 0], pos[:, 1]] = x[src[:, 0], src[:, 1]]
        return y

    moved = Batch(batch.hp, move(batch.log_prob), move(batch.old_log_prob), move(batch.advantages), batch.mask)
    res = impl.run(moved)
    want = move(base.grad)
    bad = (~_close(res.grad, want, rtol, 0.0)).nonzero()
    assert len(bad) == 0, _fail(f"{spec.name}: moving tokens between positions/sequences under token-mean "
                                "changes their gradient", moved, bad, got=res.grad, want=want)
    assert abs(float(res.loss) - float(base.loss)) <= slack, (
        f"{spec.name}: moving tokens under token-mean changes the loss {float(base.loss)!r} -> {float(res.loss)!r}")


def check_dtypes(impl: Implementation, spec: MethodSpec, batch: Batch) -> None:
    """float32 and bfloat16 inputs agree with float64 on the same (quantized) values, within
    per-dtype tolerances (tokens within rounding of a breakpoint excluded)."""
    for dtype in (torch.float32, torch.bfloat16):
        q = batch.cast(dtype)
        ref, low = impl.run(q, F64), impl.run(q, dtype)
        rtol = TOLERANCE[dtype]
        scale = max(float(ref.grad.abs().max()), 1e-300)
        near = _near_breakpoint(spec, q.log_r, q.hp, width=1e-5)
        bad = (~(_close(low.grad, ref.grad, rtol, 1e-6 * scale) | near)).nonzero()
        assert len(bad) == 0, _fail(f"{spec.name}: {dtype} gradient differs from float64 beyond rtol {rtol}",
                                    q, bad, got=low.grad, float64=ref.grad)
        slack = 3 * rtol * (_loss_scale(spec, q) + abs(float(ref.loss)))
        if not bool(near.any()):
            assert abs(float(low.loss) - float(ref.loss)) <= slack, (
                f"{spec.name}: {dtype} loss {float(low.loss)!r} vs float64 {float(ref.loss)!r}")


# ---------------------------------------------------------------------------------------------
# The properties, as the generated tests call them: draw inputs, then check
# ---------------------------------------------------------------------------------------------
def gradient(impl: Implementation, spec: MethodSpec, data) -> None:
    check_gradient(impl, spec, data.draw(batches(spec, impl.fixed, scale="wide"), label="batch"))


def value(impl: Implementation, spec: MethodSpec, data) -> None:
    check_value(impl, spec, data.draw(batches(spec, impl.fixed, scale="wide"), label="batch"))


def continuity(impl: Implementation, spec: MethodSpec, data) -> None:
    check_continuity(impl, spec, data.draw(hparam_strategy(spec, impl.fixed), label="hparams"))


def bounds(impl: Implementation, spec: MethodSpec, data) -> None:
    check_bounds(impl, spec, data.draw(batches(spec, impl.fixed, scale="wide"), label="batch"))


def regions(impl: Implementation, spec: MethodSpec, data) -> None:
    check_regions(impl, spec, data.draw(batches(spec, impl.fixed), label="batch"))


def finiteness(impl: Implementation, spec: MethodSpec, data) -> None:
    check_finiteness(impl, spec, data.draw(batches(spec, impl.fixed, scale="extreme"), label="batch"))


def aggregation(impl: Implementation, spec: MethodSpec, data) -> None:
    batch = data.draw(batches(spec, impl.fixed, min_rows=2), label="batch")
    rows = batch.mask.shape[0]
    cuts = data.draw(st.lists(st.integers(1, rows - 1), min_size=1, max_size=rows - 1), label="cuts")
    check_aggregation(impl, spec, batch, cuts)


def invariance(impl: Implementation, spec: MethodSpec, data) -> None:
    batch = data.draw(batches(spec, impl.fixed, min_rows=2), label="batch")
    row_perm = data.draw(st.permutations(range(batch.mask.shape[0])), label="sequence permutation")
    token_perm = data.draw(st.permutations(range(int(batch.mask.sum()))), label="token permutation")
    check_invariance(impl, spec, batch, row_perm, token_perm)


def dtypes(impl: Implementation, spec: MethodSpec, data) -> None:
    check_dtypes(impl, spec, data.draw(batches(spec, impl.fixed), label="batch"))


def _not_applicable(impl: Implementation, why: str) -> None:
    import pytest

    if impl.require_metrics:
        raise AssertionError(f"{impl.label}: {why}")
    pytest.skip(f"n/a: {why}")
