"""DGPOPolicyLossConfig through verl's config machinery, and the launch scripts in examples/verl/.

The launch scripts are run with a stand-in interpreter that records its arguments (and runs
``-m dgpo_cli``, the check, with the real one); those overrides are then composed with verl's own
ppo_trainer config (hydra, as verl's main_ppo does), the actor config is built the way verl's
workers build it, and the loss is called with it.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import verl
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from verl.trainer.ppo.core_algos import get_policy_loss_fn
from verl.utils.config import omega_conf_to_dataclass
from verl.workers.config import PolicyLossConfig

from dgpo_ref import policy_loss
from dgpo_ref.integrations.verl_plugin import DGPOPolicyLossConfig

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples" / "verl"
TARGET = "dgpo_ref.integrations.verl_plugin.DGPOPolicyLossConfig"


def test_round_trip_through_omega_conf_to_dataclass():
    node = OmegaConf.create({"_target_": TARGET, "loss_mode": "dgpo", "n": 2, "m": 3})
    built = omega_conf_to_dataclass(node)  # hydra instantiate, as verl does for `_target_` configs
    assert type(built) is DGPOPolicyLossConfig and isinstance(built, PolicyLossConfig)
    assert (built.loss_mode, built.n, built.m, built.beta1) == ("dgpo", 2, 3, None)
    again = omega_conf_to_dataclass(OmegaConf.structured(built), DGPOPolicyLossConfig)
    assert again == built


def test_verls_own_policy_loss_config_rejects_the_extra_keys():
    # why the subclass exists: without `_target_` pointing at it, verl refuses n and m
    node = OmegaConf.create({"_target_": "verl.workers.config.PolicyLossConfig", "loss_mode": "dgpo", "n": 2})
    with pytest.raises(Exception, match="n"):
        omega_conf_to_dataclass(node)


def _launch(tmp_path, script, env=None, args=()):
    record, calls = tmp_path / "argv.txt", tmp_path / "calls.txt"
    stub = tmp_path / "python-stub"
    stub.write_text(f'#!/bin/sh\necho "$1 $2" >> "{calls}"\n'
                    f'if [ "$2" = dgpo_cli ]; then exec "{sys.executable}" "$@"; fi\n'
                    f'printf "%s\\n" "$@" > "{record}"\n')
    stub.chmod(0o755)
    base = {k: v for k, v in os.environ.items() if k not in ("NNODES", "DGPO_N")}
    env = {**base, "VERL_PYTHON": str(stub), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           **(env or {})}
    out = subprocess.run(["bash", str(EXAMPLES / script), *args], capture_output=True, text=True, env=env,
                         timeout=120)
    argv = record.read_text().splitlines() if record.exists() else None
    if argv is not None:  # verl launched: the check ran first, with the interpreter that trains
        assert calls.read_text().splitlines() == ["-m dgpo_cli", "-m verl.trainer.main_ppo"]
    return out, argv


def _compose(overrides):
    config_dir = os.path.join(os.path.dirname(verl.__file__), "trainer", "config")
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        return compose(config_name="ppo_trainer", overrides=list(overrides))


def test_single_node_script_builds_the_papers_setting(tmp_path):
    out, argv = _launch(tmp_path, "train_r1_distill_1.5b.sh", args=["trainer.total_epochs=1"])
    assert out.returncode == 0, out.stderr
    assert "policy losses registered" in out.stdout  # dgpo verl-check ran first ...
    assert "config: verl will train the configured policy loss" in out.stdout  # ... on these overrides
    assert argv[:2] == ["-m", "verl.trainer.main_ppo"]
    cfg = _compose(argv[2:])
    assert cfg.algorithm.adv_estimator == "grpo" and not cfg.algorithm.use_kl_in_reward
    assert cfg.actor_rollout_ref.rollout.name == "vllm" and cfg.trainer.nnodes == 1
    assert cfg.trainer.total_epochs == 1  # extra arguments reach verl
    assert cfg.data.train_batch_size // cfg.actor_rollout_ref.actor.ppo_mini_batch_size == 4

    actor = omega_conf_to_dataclass(cfg.actor_rollout_ref.actor)  # as verl's engine workers do
    assert not actor.use_kl_loss and actor.loss_agg_mode == "token-mean"
    assert isinstance(actor.policy_loss, DGPOPolicyLossConfig)
    assert (actor.policy_loss.loss_mode, actor.policy_loss.n, actor.policy_loss.m) == ("dgpo", 2, 2)

    # the loss verl will call, with this actor config and verl's global batch info
    g = torch.Generator().manual_seed(0)
    old = -torch.rand(4, 5, generator=g) * 3
    new = (old + torch.randn(4, 5, generator=g)).clamp(max=0)
    adv, mask = torch.tensor([1.0, -1.0, 0.5, -2.0])[:, None].expand(4, 5), torch.ones(4, 5, dtype=torch.bool)
    actor.global_batch_info.update(dp_size=1, batch_num_tokens=20, global_batch_size=4, loss_scale_factor=None)
    got, _ = get_policy_loss_fn("dgpo")(old, new, adv, mask, "token-mean", actor)
    want, _ = policy_loss("dgpo", log_prob=new, old_log_prob=old, advantages=adv, response_mask=mask,
                          eps_low=0.2, eps_high=0.2, n=2, m=2)
    torch.testing.assert_close(got, want)


def test_multinode_script_joins_a_ray_cluster(tmp_path):
    out, argv = _launch(tmp_path, "train_r1_distill_1.5b_multinode.sh", env={"NNODES": "4", "DGPO_N": "1"})
    assert out.returncode == 0, out.stderr
    cfg = _compose(argv[2:])
    assert cfg.trainer.nnodes == 4 and cfg.trainer.n_gpus_per_node == 8
    assert omega_conf_to_dataclass(cfg.actor_rollout_ref.actor).policy_loss.n == 1


@pytest.mark.parametrize("nnodes", [None, "1"])
def test_multinode_script_refuses_without_several_nodes(tmp_path, nnodes):
    out, argv = _launch(tmp_path, "train_r1_distill_1.5b_multinode.sh", env={"NNODES": nnodes} if nnodes else {})
    assert out.returncode != 0 and argv is None
    assert "NNODES" in out.stderr


@pytest.mark.parametrize("override, reason", [
    ("algorithm.rollout_correction.bypass_mode=True", "bypass_mode=True makes verl replace"),
    ("actor_rollout_ref.actor.policy_loss.loss_mode=dgpo_typo", "is not a registered verl policy loss"),
])
def test_launch_script_stops_before_verl_on_a_config_that_changes_the_loss(tmp_path, override, reason):
    out, argv = _launch(tmp_path, "train_r1_distill_1.5b.sh", args=[override])
    assert out.returncode == 2 and argv is None, out.stderr
    assert reason in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_the_override_lines_in_docs_scale_md_build_the_config():
    text = (ROOT / "docs" / "scale.md").read_text()
    block = text.split("The exact override lines:", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    lines = [ln.strip() for ln in block.splitlines() if ln.strip()]
    assert len(lines) == 6
    cfg = _compose([*lines, "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=2", "actor_rollout_ref.rollout.n=5"])
    actor = omega_conf_to_dataclass(cfg.actor_rollout_ref.actor)
    assert isinstance(actor.policy_loss, DGPOPolicyLossConfig)
    assert (actor.policy_loss.loss_mode, actor.policy_loss.n, actor.policy_loss.m) == ("dgpo", 2, 2)
    assert (actor.clip_ratio_low, actor.clip_ratio_high) == (0.2, 0.2)
