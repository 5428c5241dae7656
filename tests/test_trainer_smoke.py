"""`dgpo train` end to end on a tiny random Llama: the smoke preset, resume, run-folder rules."""

import json
import math
import subprocess
import sys
import time
import types

import pytest
import torch

import dgpo_cli
from trainer import loop
from trainer.config import build_config
from trainer.rewards import REWARDS

REQUIRED_KEYS = {
    "step", "reward/mean", "accuracy", "response_length/mean", "loss", "grad_norm", "entropy", "kl",
    "time/rollout", "time/old_logprob", "time/update", "time/push", "tokens_per_s", "lr",
    *(f"region/{r}" for r in ("IN", "LN", "HP", "LP", "HN")), *(f"v_mean/{r}" for r in ("IN", "LN", "HP", "LP", "HN")),
}


def _lines(path):
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_smoke_preset_through_the_cli(tmp_path):
    out = tmp_path / "run"
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "dgpo_cli", "train", "--preset", "smoke", "--output", str(out),
                           "--set", "progress=false"], capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - t
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert elapsed < 120
    cfg = build_config("smoke")
    rows = _lines(out / "metrics.jsonl")
    assert [r["step"] for r in rows] == list(range(1, cfg.steps * cfg.mini_batches + 1))
    for r in rows:
        assert REQUIRED_KEYS <= set(r), REQUIRED_KEYS - set(r)
        assert all(isinstance(r[k], (int, float)) for k in REQUIRED_KEYS)
        assert abs(sum(r[f"region/{x}"] for x in ("IN", "LN", "HP", "LP", "HN")) - 1.0) < 1e-6
    evals = _lines(out / "eval.jsonl")
    assert [e["iteration"] for e in evals] == [0, 2, 4] and "val/pass@2" in evals[0] and "test/pass@2" in evals[0]
    saved = json.loads((out / "config.json").read_text())
    assert saved["model"] == "tiny-llama" and saved["steps"] == cfg.steps and saved["resolved_backend"] == "hf"
    assert (out / "checkpoint" / "model.safetensors").is_file() and (out / "checkpoint" / "trainer_state.pt").is_file()
    # it learns: the weights move, and the training reward and the held-out accuracy go up
    from safetensors.torch import load_file

    from trainer.models import tiny_llama

    before, after = load_file(tiny_llama() / "model.safetensors"), load_file(out / "checkpoint" / "model.safetensors")
    assert before.keys() == after.keys() and any(not torch.equal(before[k], after[k]) for k in before)
    reward = [r["reward/mean"] for r in rows if r["minibatch"] == 0]  # one per iteration
    assert any(r["grad_norm"] > 0 for r in rows)
    assert reward[-1] >= reward[0] + 0.25 and max(reward) > min(reward)
    assert evals[-1]["val/avg@2"] >= evals[0]["val/avg@2"] + 0.2, evals
    assert dgpo_cli.main(["plot", "run", str(out)]) == 0 and (out / "metrics.png").stat().st_size > 10_000
    # the folder now holds a run: refused without --resume / --overwrite, before any model loads
    assert dgpo_cli.main(["train", "--preset", "smoke", "--output", str(out)]) == 2
    assert dgpo_cli.main(["eval", "--model", str(out / "checkpoint"), "--set", "task=add2", "--set", "eval_size=4",
                          "--set", "max_new_tokens=4", "--set", "chat_template=false", "--set", "backend=hf"]) == 0


def _run(out, steps, resume=False):
    sets = [f"steps={steps}", "reward=parity", "eval_every=0", "save_every=0", "progress=false",
            "prompts_per_step=2", "group_size=4", "max_new_tokens=4", "temperature=1.0"]
    loop.train(build_config("smoke", sets), out, resume=resume)
    return _lines(out / "metrics.jsonl")


def test_two_steps_resume_two_steps_equals_four_steps(tmp_path, monkeypatch):
    # a reward a random model can earn, so advantages (and gradients) are not all zero
    monkeypatch.setitem(REWARDS, "parity", lambda completion, answer: float(len(completion) % 2))
    straight = _run(tmp_path / "a", 4)
    _run(tmp_path / "b", 2)
    resumed = _run(tmp_path / "b", 4, resume=True)
    assert len(straight) == len(resumed) == 8
    assert any(r["grad_norm"] > 0 for r in straight)
    for a, b in zip(straight, resumed):
        assert a["step"] == b["step"]
        for key in ("loss", "grad_norm", "reward/mean", "entropy", "region/IN"):
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), (a["step"], key)
    wa = torch.load(tmp_path / "a" / "checkpoint" / "trainer_state.pt", weights_only=False)["state"]
    wb = torch.load(tmp_path / "b" / "checkpoint" / "trainer_state.pt", weights_only=False)["state"]
    assert wa == wb


def test_mixed_precision_autocasts_over_float32_weights(tmp_path, monkeypatch):
    from safetensors.torch import load_file

    from trainer import rollout, update

    monkeypatch.setitem(REWARDS, "parity", lambda completion, answer: float(len(completion) % 2))
    seen = {"update": [], "sample": []}
    real_logprobs, real_sample = update.sequence_logprobs, rollout.HFRollout._sample

    def logprobs(model, *a, **kw):
        seen["update"].append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu"), model.dtype))
        return real_logprobs(model, *a, **kw)

    def sample(self, *a, **kw):
        seen["sample"].append(torch.is_autocast_enabled("cpu"))
        return real_sample(self, *a, **kw)

    monkeypatch.setattr(update, "sequence_logprobs", logprobs)
    monkeypatch.setattr(rollout.HFRollout, "_sample", sample)
    out = tmp_path / "run"
    loop.train(build_config("smoke", ["steps=2", "reward=parity", "eval_every=0", "save_every=0", "progress=false",
                                      "prompts_per_step=2", "group_size=4", "max_new_tokens=4", "temperature=1.0", "dtype=bfloat16",
                                      "mixed_precision=true"]), out)
    assert seen["update"] and all(s == (True, torch.bfloat16, torch.float32) for s in seen["update"])
    assert seen["sample"] and all(seen["sample"])
    rows = _lines(out / "metrics.jsonl")
    assert len(rows) == 4 and all(math.isfinite(r["loss"]) and math.isfinite(r["grad_norm"]) for r in rows)
    assert any(r["grad_norm"] > 0 for r in rows)
    weights = load_file(out / "checkpoint" / "model.safetensors")
    assert {w.dtype for w in weights.values()} == {torch.float32}


@pytest.mark.parametrize("args, message", [
    (["--set", "model=/no/such/model"], "neither a known name"),
    (["--set", "loss=nope"], "unknown loss"),
    (["--set", "backend=tpu"], "unknown backend"),
    (["--set", "device=tpu"], "device must be 'auto', 'cpu', 'cuda' or 'cuda:N'"),
    (["--set", "device=cuda:99"], "device 'cuda:99'"),
    (["--set", "mini_batches=3"], "divisible"),
    (["--set", "task=/no/such.jsonl"], "no such task file"),
    (["--resume"], "does not exist"),
])
def test_bad_input_fails_fast_with_a_clear_message(tmp_path, capsys, args, message):
    t = time.perf_counter()
    preset = [] if "--resume" in args else ["--preset", "smoke"]
    rc = dgpo_cli.main(["train", "--output", str(tmp_path / "r"), *preset, *args])
    assert rc == 2
    assert message in capsys.readouterr().err
    assert time.perf_counter() - t < 10
    assert not (tmp_path / "r" / "checkpoint").exists()


def test_dataset_without_the_named_field_fails_before_training(tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    data.write_text('{"question": "1+1", "answer": "2"}\n' * 3)
    rc = dgpo_cli.main(["train", "--preset", "smoke", "--output", str(tmp_path / "r"), "--set", f"task={data}"])
    assert rc == 2
    assert "d.jsonl:1: row has no field 'prompt'" in capsys.readouterr().err


def test_max_minutes_past_during_an_evaluation_stops_there(tmp_path):
    # the limit passes during the step-0 evaluation: no iteration starts after it (it used to run one
    # more iteration and a second evaluation), and the run still ends with a checkpoint
    out = tmp_path / "run"
    loop.train(build_config("smoke", ["steps=3", "eval_every=1", "max_minutes=1e-5", "progress=false"]), out)
    evals = _lines(out / "eval.jsonl")
    assert [e["iteration"] for e in evals] == [0]
    assert not (out / "metrics.jsonl").exists()
    state = torch.load(out / "checkpoint" / "trainer_state.pt", weights_only=False)["state"]
    assert state["step"] == 0


def test_max_minutes_past_during_an_iteration_ends_with_an_evaluation(tmp_path, monkeypatch):
    out = tmp_path / "run"
    ticks = iter(range(0, 100_000, 10))  # the loop's clock: every reading is 10 s after the last
    monkeypatch.setattr(loop, "time", types.SimpleNamespace(time=lambda: float(next(ticks)),
                                                            perf_counter=time.perf_counter))
    loop.train(build_config("smoke", ["steps=50", "eval_every=100", "max_minutes=2", "progress=false"]), out)
    rows = _lines(out / "metrics.jsonl")
    state = torch.load(out / "checkpoint" / "trainer_state.pt", weights_only=False)["state"]
    assert 1 <= state["step"] < 50 and rows[-1]["iteration"] == state["step"]
    # the step-0 evaluation, then the one that ends the run after the iteration that passed the limit
    assert [e["iteration"] for e in _lines(out / "eval.jsonl")] == [0, state["step"]]
