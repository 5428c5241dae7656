"""The step-0 evaluation cache (``eval_cache``): what its key depends on, and that a run with a cache
hit logs exactly what a run without one computes."""

import dataclasses
import json
import subprocess
import sys

from trainer.config import build_config
from trainer.evaluation import initial_eval_key
from trainer.tasks import build_task


def _key(model_dir, **changes):
    cfg = dataclasses.replace(build_config("smoke"), **{"eval_k": 1, **changes})  # greedy unless changed
    return initial_eval_key(cfg, build_task(cfg).splits, backend="hf", device="cpu", model_path=model_dir)


def test_key_ignores_training_settings_and_tracks_evaluation_ones(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    base = _key(tmp_path)
    # greedy evaluation of the untrained model: loss, learning rate, seed and staleness do not matter
    assert _key(tmp_path, loss="grpo", lr=3e-3, seed=7, staleness=3) == base
    for change in ({"max_new_tokens": 5}, {"eval_size": 5}, {"test_size": 7}, {"task": "add2"},
                   {"chat_template": True}, {"dtype": "float32"}, {"reward": "math"}):
        assert _key(tmp_path, **change) != base, change
    # sampled evaluation (k > 1) depends on the seed
    assert _key(tmp_path, eval_k=2, seed=1) != _key(tmp_path, eval_k=2, seed=2)
    # another model file: another key
    (tmp_path / "model.safetensors").write_bytes(b"other weights!")
    assert _key(tmp_path) != base


def _train(out, cache, seed):
    return subprocess.run([sys.executable, "-m", "dgpo_cli", "train", "--preset", "smoke", "--output", str(out),
                           "--set", "progress=false", "--set", "steps=1", "--set", "eval_k=1", "--set", f"seed={seed}",
                           "--set", f"eval_cache={cache}"], capture_output=True, text=True, timeout=300)


def test_a_cache_hit_logs_what_the_evaluation_computes(tmp_path):
    cache = tmp_path / "cache"
    first = _train(tmp_path / "a", cache, seed=0)
    assert first.returncode == 0, first.stderr[-2000:]
    assert len(list(cache.glob("step0_*.json"))) == 1
    second = _train(tmp_path / "b", cache, seed=1)
    assert second.returncode == 0, second.stderr[-2000:]
    ev = {d: [json.loads(x) for x in (tmp_path / d / "eval.jsonl").read_text().splitlines()] for d in ("a", "b")}
    a0, b0 = ev["a"][0], ev["b"][0]
    assert "eval_cached" not in a0 and b0["eval_cached"] is True
    metrics = [k for k in a0 if k.startswith(("val/", "test/"))]
    assert metrics and all(a0[k] == b0[k] for k in metrics)
    for f in (tmp_path / "a" / "eval_problems").glob("*_step000000.jsonl"):
        assert (tmp_path / "b" / "eval_problems" / f.name).read_text() == f.read_text()
    # the later evaluation (after an update) is computed, not cached
    assert len(ev["b"]) == 2 and "eval_cached" not in ev["b"][1]


def test_a_file_as_eval_cache_is_one_line_before_any_work(tmp_path):
    (tmp_path / "f").write_text("x")
    proc = subprocess.run([sys.executable, "-m", "dgpo_cli", "train", "--preset", "smoke", "--output",
                           str(tmp_path / "run"), "--set", f"eval_cache={tmp_path / 'f'}"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "eval_cache must be a folder" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


def test_a_corrupt_cache_file_is_recomputed_with_a_warning(tmp_path):
    cache = tmp_path / "cache"
    assert _train(tmp_path / "a", cache, seed=0).returncode == 0
    (f,) = cache.glob("step0_*.json")
    good = f.read_text()
    f.write_text(good[: len(good) // 2])  # torn
    proc = _train(tmp_path / "b", cache, seed=0)
    assert proc.returncode == 0 and "is unreadable" in proc.stderr
    b0 = json.loads((tmp_path / "b" / "eval.jsonl").read_text().splitlines()[0])
    assert "eval_cached" not in b0 and f.read_text() == good  # evaluated again and rewritten whole
