"""``policy_loss``: any registered method's loss, its exact gradient and its metrics.

How the loss is built (docs/api.md has the user's view):

1. validate, then work on detached copies in the compute dtype (float64 for float64 inputs,
   float32 otherwise) with masked-out positions replaced by 0, so padding (±inf, NaN) never
   enters any arithmetic;
2. the method's ``terms`` give log V and log |J| per token, all in log space;
3. the gradient coefficient on ``log_prob`` is −A·V·w (w the aggregation weight), set to 0
   where A = 0 or the token is masked out; it is ±inf only where V·w·|A| overflows;
4. the loss value is Σ −A·J·w, summed directly, or in log space (signed log-sum-exp) when the
   direct sum is not finite, so that +inf and −inf per-token values never produce NaN;
5. a small autograd Function returns that value and, on backward, exactly the coefficients:
   no ``torch.where`` branch is ever differentiated, so no 0·inf can reach a gradient.
"""

from __future__ import annotations

import torch

from . import checks
from .aggregate import token_weights
from .hparams import DEFAULTS
from .method import Terms, Tokens
from .metrics import loss_metrics
from .registry import get_spec


class _Surrogate(torch.autograd.Function):
    """Forward: the precomputed loss value. Backward: grad_output · coefficient per token."""

    @staticmethod
    def forward(ctx, log_prob, value, coef):  # noqa: ARG004 (log_prob only carries the graph)
        ctx.save_for_backward(coef)
        return value.clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output):
        (coef,) = ctx.saved_tensors
        return grad_output * coef, None, None


def _signed_log_sum(log_mag: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
    """Σ sign·exp(log_mag) without NaN: ±inf only if the true sum overflows, 0 if it cancels exactly."""
    neg_inf = torch.full_like(log_mag, -torch.inf)
    pos = torch.logsumexp(torch.where(sign > 0, log_mag, neg_inf).flatten(), 0)
    neg = torch.logsumexp(torch.where(sign < 0, log_mag, neg_inf).flatten(), 0)
    hi, lo = torch.maximum(pos, neg), torch.minimum(pos, neg)
    gap = torch.where(torch.isinf(hi), torch.zeros_like(hi), lo - hi)  # hi = -inf: both sums empty
    magnitude = torch.exp(hi + torch.log(-torch.expm1(gap)))  # = exp(hi) - exp(lo), exp(-inf) = 0
    return torch.where(pos >= neg, magnitude, -magnitude)


def _direct_sum(terms: Terms, adv: torch.Tensor, w: torch.Tensor, live: torch.Tensor) -> torch.Tensor:
    """Σ −A·J·w over live tokens summed directly: the value wherever it is finite."""
    j = terms.sign_j * torch.exp(terms.log_j)
    return torch.where(live, -adv * j * w, torch.zeros_like(w)).sum()


def _loss_value(terms: Terms, adv: torch.Tensor, w: torch.Tensor, live: torch.Tensor) -> torch.Tensor:
    """Σ −A·J·w over live tokens (masked-in, A ≠ 0), never NaN."""
    direct = _direct_sum(terms, adv, w, live)
    sign = -torch.sign(adv) * terms.sign_j
    log_mag = torch.where(live, torch.log(adv.abs()) + terms.log_j + torch.log(w), torch.full_like(w, -torch.inf))
    return torch.where(torch.isfinite(direct), direct, _signed_log_sum(log_mag, sign))


def _direct_coefficients(v: torch.Tensor, adv: torch.Tensor, w: torch.Tensor, live: torch.Tensor) -> torch.Tensor:
    """−A·V·w per live token from V = exp(log V) (0 elsewhere): exact wherever V is finite."""
    return torch.where(live, -adv * (v * w), torch.zeros_like(w))


def _coefficients(terms: Terms, adv: torch.Tensor, w: torch.Tensor, live: torch.Tensor) -> torch.Tensor:
    """d loss / d log_prob per token: −A·V·w, exactly 0 where the token is not live.

    Where V itself overflows, the product is formed in log space instead, so the entry is ±inf
    only where |A|·V·w does not fit the compute dtype.
    """
    v = torch.exp(terms.log_v)
    via_log = -torch.sign(adv) * torch.exp(torch.log(adv.abs()) + terms.log_v + torch.log(w))
    return torch.where(torch.isinf(v) & live, via_log, _direct_coefficients(v, adv, w, live))


def validate(log_prob, old_log_prob, advantages, response_mask, normalizer, loss_scale_factor, read_tensors):
    """The checks that need no pass over the values; (advantages as (batch, len), compute dtype)."""
    adv_in = checks.check_shapes(log_prob, old_log_prob, advantages, response_mask)
    checks.check_mask_dtype(response_mask)
    checks.check_positive("normalizer", normalizer, read_tensors=read_tensors)
    checks.check_positive("loss_scale_factor", loss_scale_factor)
    return adv_in, checks.compute_dtype(log_prob, old_log_prob)


def prepare(log_prob, old_log_prob, advantages, response_mask, loss_agg_mode, normalizer,
            loss_scale_factor, check_inputs):
    """Validate the inputs; return (advantages as (batch, len), bool mask, compute dtype, token weights w)."""
    adv_in, dtype = validate(log_prob, old_log_prob, advantages, response_mask, normalizer, loss_scale_factor,
                             read_tensors=check_inputs)
    mask = response_mask.detach() != 0
    if check_inputs:
        checks.check_values(log_prob, old_log_prob, adv_in, mask, response_mask)
    w = token_weights(loss_agg_mode, mask.to(dtype), normalizer, loss_scale_factor)
    return adv_in, mask, dtype, w


def policy_loss(
    name: str,
    *,
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    loss_agg_mode: str = "token-mean",
    normalizer: float | torch.Tensor | None = None,
    loss_scale_factor: float | None = None,
    check_inputs: bool = True,
    metrics: bool = True,
    **hparams,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of method ``name`` (a key of ``LOSSES``) and its metrics; see docs/api.md.

    Tensors have shape (batch, response_len); ``advantages`` may also be (batch,). The gradient
    reaches ``log_prob`` only and equals −A·V·w per token (w = 1/N for ``token-mean``).
    ``normalizer`` is the global count (tokens for ``token-mean``, sequences for ``seq-mean-*``)
    when a batch is split into micro-batches or ranks. Returns the loss in ``log_prob``'s dtype
    and a dict of plain floats (``{}`` with ``metrics=False``, which also skips their device
    synchronization).

    Large batches take the compiled fast path (:mod:`dgpo_ref.fast`: the same terms in one fused
    pass; ``DGPO_COMPILE`` = ``auto`` | ``always`` | ``never``), others :func:`reference_policy_loss`.
    """
    kwargs = dict(log_prob=log_prob, old_log_prob=old_log_prob, advantages=advantages,
                  response_mask=response_mask, loss_agg_mode=loss_agg_mode, normalizer=normalizer,
                  loss_scale_factor=loss_scale_factor, check_inputs=check_inputs, metrics=metrics, **hparams)
    from . import fast  # noqa: PLC0415 (fast imports this module)

    if fast.wanted(name, log_prob):
        out = fast.compiled_policy_loss(name, **kwargs)
        if out is not None:
            return out
    return reference_policy_loss(name, **kwargs)


def reference_policy_loss(
    name: str,
    *,
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    loss_agg_mode: str = "token-mean",
    normalizer: float | torch.Tensor | None = None,
    loss_scale_factor: float | None = None,
    check_inputs: bool = True,
    metrics: bool = True,
    **hparams,
) -> tuple[torch.Tensor, dict[str, float]]:
    """:func:`policy_loss` evaluated eagerly, op by op: the oracle the compiled path is tested against."""
    value, coef, stats, dtype = reference_parts(
        name, log_prob=log_prob, old_log_prob=old_log_prob, advantages=advantages, response_mask=response_mask,
        loss_agg_mode=loss_agg_mode, normalizer=normalizer, loss_scale_factor=loss_scale_factor,
        check_inputs=check_inputs, metrics=metrics, **hparams)
    loss = _Surrogate.apply(log_prob.to(dtype), value, coef)
    return loss.to(log_prob.dtype), stats


def reference_parts(name: str, *, log_prob, old_log_prob, advantages, response_mask, loss_agg_mode="token-mean",
                    normalizer=None, loss_scale_factor=None, check_inputs=True, metrics=True, **hparams):
    """The reference's value, per-token coefficients (d loss / d log_prob, compute dtype), metrics
    and compute dtype, without autograd (the fast path takes them where its own overflowed)."""
    spec = get_spec(name)
    hp = spec.resolve(hparams)
    adv_in, mask, dtype, w = prepare(log_prob, old_log_prob, advantages, response_mask, loss_agg_mode,
                                     normalizer, loss_scale_factor, check_inputs)

    def clean(x):  # detached, compute dtype, masked-out positions -> 0
        return torch.where(mask, x.detach().to(dtype), torch.zeros((), dtype=dtype, device=x.device))

    adv = clean(adv_in)
    tokens = Tokens.build(clean(log_prob), clean(old_log_prob), adv, hp["eps_low"], hp["eps_high"])
    with torch.no_grad():
        terms = spec.terms(tokens, **hp)
        live = mask & (adv != 0)
        value, coef = _loss_value(terms, adv, w, live), _coefficients(terms, adv, w, live)
        stats = loss_metrics(tokens, terms, coef.to(log_prob.dtype), mask, value) if metrics else {}
    return value, coef, stats, dtype


def dgpo_loss(
    *,
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    loss_agg_mode: str = "token-mean",
    eps_low: float = DEFAULTS["dgpo"]["eps_low"],
    eps_high: float = DEFAULTS["dgpo"]["eps_high"],
    n: int = DEFAULTS["dgpo"]["n"],
    m: int = DEFAULTS["dgpo"]["m"],
    **kwargs,
) -> tuple[torch.Tensor, dict[str, float]]:
    """``policy_loss("dgpo", ...)`` (defaults: spec/methods/dgpo.py); ``kwargs`` are ``normalizer``, ``loss_scale_factor``, ``check_inputs``."""
    return policy_loss(
        "dgpo", log_prob=log_prob, old_log_prob=old_log_prob, advantages=advantages,
        response_mask=response_mask, loss_agg_mode=loss_agg_mode,
        eps_low=eps_low, eps_high=eps_high, n=n, m=m, **kwargs,
    )


def _as_float_tensor(name: str, x) -> torch.Tensor:
    t = torch.as_tensor(x)
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64)):
        raise ValueError(f"{name} must be real numbers, got dtype {t.dtype}")
    return t


def token_weight(name: str, p, p_old, advantages, **hparams) -> torch.Tensor:
    """The numeric weight W = V/p on ∇π per token (p, p_old probabilities in (0, 1], broadcast together).

    Computed in float64 when any input is float64, float32 otherwise; in log space.
    """
    spec = get_spec(name)
    hp = spec.resolve(hparams)
    p, p_old, adv = (_as_float_tensor(k, v) for k, v in (("p", p), ("p_old", p_old), ("advantages", advantages)))
    dtype = checks.compute_dtype(p, p_old, adv)
    p, p_old, adv = torch.broadcast_tensors(p.to(dtype), p_old.to(dtype), adv.to(dtype))
    for label, x in (("p", p), ("p_old", p_old)):
        if not bool(((x > 0) & (x <= 1)).all()):
            raise ValueError(f"{label} must lie in (0, 1]")
    if not bool(torch.isfinite(adv).all()):
        raise ValueError("advantages must be finite")
    log_p = torch.log(p)
    tokens = Tokens.build(log_p, torch.log(p_old), adv, hp["eps_low"], hp["eps_high"])
    return torch.exp(spec.terms(tokens, **hp).log_v - log_p)
