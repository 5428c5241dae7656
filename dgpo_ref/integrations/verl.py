"""``dgpo verl-check``: import verl the way a Ray worker does and prove the dgpo losses are there.

verl loads ``verl.plugins`` entry points inside ``import verl`` and swallows their import errors
(logged at DEBUG level), so a missing or broken install only shows up much later as verl's
"Unsupported loss mode". This command imports verl (and nothing of the plugin first), checks that
every loss in ``METHODS`` is registered by ``dgpo_ref.integrations.verl_plugin``, says why when one
is not, and runs each registered function once against ``dgpo_ref.policy_loss``.

Given the run's configuration (Hydra overrides, as passed to ``verl.trainer.main_ppo``, and
optionally ``--config FILE`` in place of verl's ``ppo_trainer.yaml``) it also composes it the way
``main_ppo`` does and fails, one line each, on settings under which verl would train another loss
than the one asked for (``CONFIG_CHECKS``).

This module imports verl only inside :func:`check_main`; the plugin itself is ``verl_plugin``.
"""

from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points

from dgpo_ref.hparams import DEFAULTS, NAMES

METHODS = ("dgpo", "gppo", "ce_gppo", "aspo")
"""The losses the plugin registers: the dgpo_ref methods verl 0.9.1 does not have."""

#: hyper-parameters verl's actor config carries itself (clip_ratio_low/clip_ratio_high/clip_ratio_c)
ACTOR_HPARAMS = ("eps_low", "eps_high", "dual_clip")

EXTRA_HPARAMS = tuple(k for k in NAMES if k not in ACTOR_HPARAMS and any(k in DEFAULTS[m] for m in METHODS))
"""dgpo_ref hyper-parameters carried by ``DGPOPolicyLossConfig`` (eps and the dual clip come from the
actor's clip_ratio_low/clip_ratio_high/clip_ratio_c): every other one of the registered methods,
from their spec records. The config class must have a field for each (tests/integrations/verl)."""

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


POLICY_LOSS = "actor_rollout_ref.actor.policy_loss"
CONFIG_CLASS = "dgpo_ref.integrations.verl_plugin.DGPOPolicyLossConfig"


def _bypass_mode(cfg, registry) -> str | None:
    """verl 0.9.1's rollout_corr_helper.apply_bypass_mode overwrites loss_mode with 'bypass_mode'."""
    from omegaconf import OmegaConf

    if OmegaConf.select(cfg, "algorithm.rollout_correction.bypass_mode", default=False):
        mode = OmegaConf.select(cfg, f"{POLICY_LOSS}.loss_mode")
        return (f"algorithm.rollout_correction.bypass_mode=True makes verl replace {POLICY_LOSS}.loss_mode="
                f"{mode} by 'bypass_mode' (verl/trainer/ppo/rollout_corr_helper.py): set it to False")
    return None


def _registered(cfg, registry) -> str | None:
    """verl looks loss_mode up in its registry only when the first update runs, hours in."""
    from omegaconf import OmegaConf

    mode = OmegaConf.select(cfg, f"{POLICY_LOSS}.loss_mode")
    if mode not in registry:
        return f"{POLICY_LOSS}.loss_mode={mode} is not a registered verl policy loss; choose one of {', '.join(sorted(registry))}"
    return None


def _carries_hparams(cfg, registry) -> str | None:
    """Build the policy-loss config as verl's workers do; a method with n, m, beta needs our class."""
    from omegaconf import OmegaConf
    from verl.utils.config import omega_conf_to_dataclass

    from dgpo_ref import LOSSES

    node = OmegaConf.select(cfg, POLICY_LOSS)
    mode, target = node.get("loss_mode"), node.get("_target_")
    try:
        built = omega_conf_to_dataclass(node)
    except Exception as exc:  # noqa: BLE001 (hydra wraps the dataclass's own error; one line for the user)
        reason = " ".join(str(exc).split())
        return f"{POLICY_LOSS} (_target_={target}) cannot be built: {reason[:300]}"
    needs = [k for k in EXTRA_HPARAMS if mode in METHODS and k in LOSSES[mode].defaults]
    if needs and not any(c.__module__ + "." + c.__qualname__ == CONFIG_CLASS for c in type(built).__mro__):
        return (f"{POLICY_LOSS}._target_={target} cannot carry {', '.join(needs)} of loss_mode={mode} (they "
                f"would silently take their defaults): set {POLICY_LOSS}._target_={CONFIG_CLASS}")
    return None


CONFIG_CHECKS = (_bypass_mode, _registered, _carries_hparams)
"""Each takes (composed verl config, POLICY_LOSS_REGISTRY) and returns None or the one-line reason."""


def compose(config_file: str | None, overrides: list[str]):
    """The config ``verl.trainer.main_ppo`` would run with these arguments (Hydra compose).

    Without ``config_file``: verl's own ``ppo_trainer.yaml``; with it: that file as the primary
    config (like main_ppo's ``--config-path DIR --config-name NAME``), verl's config directory on
    Hydra's search path so that its ``defaults`` may name verl's configs.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    verl_dir = os.path.join(os.path.dirname(importlib.import_module("verl").__file__), "trainer", "config")
    if config_file is None:
        config_dir, name, extra = verl_dir, "ppo_trainer", []
    else:
        path = os.path.abspath(config_file)
        config_dir, name = os.path.dirname(path), os.path.splitext(os.path.basename(path))[0]
        extra = [f"hydra.searchpath=[file://{verl_dir}]"]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        return hydra_compose(config_name=name, overrides=[*extra, *overrides])


def check_config(config_file: str | None, overrides: list[str], registry) -> list[str]:
    """The reasons (possibly none) why verl would not train the configured loss as asked."""
    from clikit import CliError

    if config_file is not None and not os.path.isfile(config_file):
        raise CliError(f"--config {config_file}: no such file")
    try:
        cfg = compose(config_file, overrides)
    except Exception as exc:  # noqa: BLE001 (Hydra's own message names the bad override or file)
        raise CliError(f"the verl config does not compose: {' '.join(str(exc).split())[:300]}") from exc
    return [reason for check in CONFIG_CHECKS if (reason := check(cfg, registry))]


def check_main(argv: list[str]) -> int:
    from clikit import ArgumentParser, CliError

    parser = ArgumentParser(prog="dgpo verl-check", description=__doc__.splitlines()[0])
    parser.add_argument("--config", metavar="FILE", help="a verl YAML config used instead of verl's ppo_trainer.yaml")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="Hydra overrides as given to verl.trainer.main_ppo (e.g. the launch scripts')")
    args = parser.parse_args(argv)
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
    if args.config is None and not args.overrides:
        return 0
    reasons = check_config(args.config, args.overrides, POLICY_LOSS_REGISTRY)
    if reasons:
        raise CliError("; ".join(reasons))
    print("config: verl will train the configured policy loss")
    return 0
