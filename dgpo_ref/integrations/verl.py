"""``dgpo verl-check``: import verl the way a Ray worker does and prove the dgpo losses are there.

verl loads ``verl.plugins`` entry points inside ``import verl`` and swallows their import errors
(logged at DEBUG level), so a missing or broken install only shows up much later as verl's
"Unsupported loss mode". This command imports verl (and nothing of the plugin first), checks that
every loss in ``METHODS`` is registered by ``dgpo_ref.integrations.verl_plugin``, says why when one
is not, and runs each registered function once against ``dgpo_ref.policy_loss``.

This module imports verl only inside :func:`check_main`; the plugin itself is ``verl_plugin``.
"""

from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points

METHODS = ("dgpo", "gppo", "ce_gppo", "aspo")
"""The losses the plugin registers: the dgpo_ref methods verl 0.9.1 does not have."""

EXTRA_HPARAMS = ("n", "m", "beta1", "beta2")
"""dgpo_ref hyper-parameters carried by ``DGPOPolicyLossConfig`` (eps and the dual clip come from the
actor's clip_ratio_low/clip_ratio_high/clip_ratio_c)."""

PLUGIN_MODULE = "dgpo_ref.integrations.verl_plugin"
ENTRY_POINT = "dgpo"


def _why_missing() -> str:
    """The most likely reason the plugin did not register, found without trusting verl's silence."""
    policy = os.getenv("VERL_USE_EXTERNAL_PLUGINS", "auto").strip().lower()
    if policy == "none":
        return "VERL_USE_EXTERNAL_PLUGINS=none disables verl's plugin discovery; unset it"
    if policy != "auto" and ENTRY_POINT not in {p.strip() for p in policy.split(",")}:
        return f"VERL_USE_EXTERNAL_PLUGINS={policy!r} does not list {ENTRY_POINT!r}; add it"
    found = [ep for ep in entry_points(group="verl.plugins") if ep.name == ENTRY_POINT]
    if not found:
        return ("no 'verl.plugins' entry point named 'dgpo' in this environment: install this package "
                "here (pip install 'dgpo[verl]', or pip install -e . from a checkout)")
    try:
        importlib.import_module(found[0].value.split(":")[0])
    except Exception as exc:  # noqa: BLE001 (the point is to show what verl swallowed)
        return f"the plugin module {found[0].value} fails to import: {type(exc).__name__}: {exc}"
    return f"entry point {found[0].value} imports cleanly but did not register the losses"


def _smoke(name: str, fn) -> float:
    """Run the registered ``fn`` once; return |loss − dgpo_ref's loss|, raising on any error."""
    import torch
    from omegaconf import OmegaConf

    from dgpo_ref import policy_loss

    gen = torch.Generator().manual_seed(0)
    shape = (4, 6)
    old = -torch.rand(shape, generator=gen) * 3
    new = (old + torch.randn(shape, generator=gen) * 0.5).clamp(max=0).requires_grad_()
    adv = torch.randn(shape[0], generator=gen)
    mask = torch.ones(shape)
    config = OmegaConf.create({"clip_ratio": 0.2, "clip_ratio_low": 0.2, "clip_ratio_high": 0.28,
                               "policy_loss": {"loss_mode": name}, "global_batch_info": {}})
    got, _ = fn(old_log_prob=old, log_prob=new, advantages=adv[:, None].expand(shape), response_mask=mask,
                loss_agg_mode="token-mean", config=config)
    want, _ = policy_loss(name, log_prob=new, old_log_prob=old, advantages=adv, response_mask=mask,
                          eps_low=0.2, eps_high=0.28)
    return abs(got.item() - want.item())


def check_main(argv: list[str]) -> int:
    from dgpo_cli import ArgumentParser, CliError

    parser = ArgumentParser(prog="dgpo verl-check", description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    try:
        import verl
        from verl.trainer.ppo.core_algos import POLICY_LOSS_REGISTRY
    except ImportError as exc:
        raise CliError(f"verl is not importable here ({exc}); install dgpo[verl] (docs/scale.md)") from exc
    missing = [n for n in METHODS if getattr(POLICY_LOSS_REGISTRY.get(n), "__module__", None) != PLUGIN_MODULE]
    if missing:
        raise CliError(f"after `import verl` the losses {', '.join(missing)} are not registered: {_why_missing()}")
    print(f"verl {verl.__version__}: policy losses registered by {PLUGIN_MODULE}")
    for name in METHODS:
        err = _smoke(name, POLICY_LOSS_REGISTRY[name])
        if not err <= 1e-6:
            raise CliError(f"verl loss {name!r} differs from dgpo_ref.policy_loss by {err:.3g}")
        print(f"  {name:8s} ok  (|loss - dgpo_ref| = {err:.1e})")
    return 0
