"""Optional metric sinks (``log_to``): W&B mirrors every metrics.jsonl line; a missing package is a
clear error before any model loads."""

import importlib.machinery
import json
import sys
import types

import pytest

import dgpo_cli
from trainer import loop
from trainer.config import build_config

SETS = ["steps=1", "eval_every=0", "save_every=0", "progress=false", "prompts_per_step=2", "group_size=4",
        "max_new_tokens=4"]


def test_wandb_sink_gets_every_metrics_line(tmp_path, monkeypatch):
    logged, inits = [], []

    class FakeRun:
        def log(self, scalars, step):
            logged.append((step, scalars))

    fake = types.ModuleType("wandb")
    fake.__spec__ = importlib.machinery.ModuleSpec("wandb", None)
    fake.init = lambda **kw: inits.append(kw) or FakeRun()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    out = tmp_path / "run"
    loop.train(build_config("smoke", ["log_to=wandb", *SETS]), out)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [s for s, _ in logged] == [r["step"] for r in rows] == [1, 2]
    for (_, scalars), row in zip(logged, rows):
        assert scalars["loss"] == row["loss"] and scalars["region/IN"] == row["region/IN"]
    assert inits[0]["project"] == "dgpo" and inits[0]["config"]["log_to"] == "wandb"


@pytest.mark.parametrize("sink, package", [("tensorboard", "tensorboard"), ("wandb", "wandb")])
def test_missing_sink_package_fails_before_training(tmp_path, monkeypatch, capsys, sink, package):
    monkeypatch.setitem(sys.modules, package, None)  # find_spec -> None: "not installed"
    rc = dgpo_cli.main(["train", "--preset", "smoke", "--output", str(tmp_path / "r"), "--set", f"log_to={sink}"])
    assert rc == 2
    assert f"log_to={sink!r} needs the package {package!r}" in capsys.readouterr().err
    assert not (tmp_path / "r" / "metrics.jsonl").exists()
