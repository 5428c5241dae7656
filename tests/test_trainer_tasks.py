"""Tasks: disjoint seeded arithmetic splits, file loading, errors naming file and line; Pass@k."""

import json
import math

import pytest

from trainer.config import build_config, validate
from trainer.evaluation import pass_at_k
from trainer.rewards import number_reward
from trainer.tasks import GENERATORS, TaskError, build_task, load_file, prompt_probe


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_generated_splits_are_disjoint_seeded_and_correct(name):
    cfg = build_config("default", [f"task={name}", "eval_size=256", "test_size=300", "seed=3"])
    task = build_task(cfg)
    train = [task.train_problem(i) for i in range(2000)]
    val, test = ({p.prompt for p in task.splits[s]} for s in ("val", "test"))
    assert list(task.splits) == ["val", "test"] and (len(val), len(test)) == (256, 300)
    assert not val & test and not {p.prompt for p in train} & (val | test)
    # held-out splits do not depend on the seed: runs with other seeds are scored on the same problems
    other_seed = build_task(build_config("default", [f"task={name}", "eval_size=256", "test_size=300", "seed=9"]))
    assert other_seed.splits == task.splits
    assert [p.prompt for p in train[:50]] == [build_task(cfg).train_problem(i).prompt for i in range(50)]
    other = build_task(build_config("default", [f"task={name}", "seed=4"]))
    assert [p.prompt for p in train[:20]] != [other.train_problem(i).prompt for i in range(20)]
    for p in train[:200]:  # the answer is what the question asks for
        assert p.answer == SOLVE[name](p.prompt), p
        assert number_reward(p.answer, p.answer) == 1.0


def _arithmetic(prompt: str) -> str:
    a, op, b = prompt.removeprefix("What is ").split("?")[0].split(" ")
    return str({"+": int.__add__, "-": int.__sub__, "*": int.__mul__}[op](int(a), int(b)))


SOLVE = {"add2": _arithmetic, "arith-mixed": _arithmetic, "copy-digit": lambda prompt: prompt.rsplit(": ", 1)[1]}
"""Generator -> an independent solver of its questions."""


def _write(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_jsonl_task_with_configurable_fields(tmp_path):
    rows = [{"question": f"q{i}", "solution": f"so \\boxed{{{i}}}"} for i in range(20)]
    path = _write(tmp_path / "t.jsonl", rows)
    probs = load_file(str(path), "question", "solution")
    assert [p.answer for p in probs[:3]] == ["0", "1", "2"]
    cfg = build_config("default", [f"task={path}", "prompt_field=question", "answer_field=solution", "eval_size=4",
                                   "test_size=3"])
    task = build_task(cfg)
    assert (len(task.splits["val"]), len(task.splits["test"]), len(task.rows)) == (4, 3, 13)
    held = {p.prompt for s in task.splits.values() for p in s}
    assert len(held) == 7 and not held & {p.prompt for p in task.rows}
    gsm = _write(tmp_path / "g.jsonl", [{"question": "q", "answer": "steps\n#### 1,234"}])
    assert load_file(str(gsm), "question", "answer")[0].answer == "1234"


def test_parquet_task_with_chat_prompts_and_nested_answer(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"prompt": [{"role": "user", "content": f"What is {i} + 1?"}], "reward_model": {"ground_truth": str(i + 1)}}
            for i in range(10)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "dapo.parquet")
    probs = load_file(str(tmp_path / "dapo.parquet"), "prompt", "reward_model.ground_truth", " Box it.")
    assert probs[3].prompt == "What is 3 + 1? Box it." and probs[3].answer == "4"
    rows[7] = {"prompt": [{"role": "user", "content": "q"}], "reward_model": {"other": "1"}}
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "bad.parquet")
    with pytest.raises(TaskError, match=r"bad\.parquet:8: .*'reward_model.ground_truth'"):  # Parquet fills the missing key with null
        load_file(str(tmp_path / "bad.parquet"), "prompt", "reward_model.ground_truth")


@pytest.mark.parametrize("bad, message", [
    ('{"prompt": "q"}', "no field 'answer'"),
    ("not json", "not valid JSON"),
    ('{"prompt": "q", "answer": ""}', "non-empty"),
    ('[1, 2]', "JSON object"),
])
def test_malformed_row_names_file_and_line(tmp_path, bad, message):
    path = _write(tmp_path / "bad.jsonl", [{"prompt": "a", "answer": "1"}, {"prompt": "b", "answer": "2"}, bad])
    with pytest.raises(TaskError, match=rf"bad\.jsonl:3: .*{message}"):
        load_file(str(path), "prompt", "answer")


def test_prompt_probe_covers_every_row_of_a_file_task(tmp_path):
    # the engine's max_model_len comes from the probe: a long row anywhere must be in it
    rows = [{"prompt": f"{i:03d}" + "q" * (500 if i == 13 else 5), "answer": "1"} for i in range(40)]
    task = build_task(build_config("default", [f"task={_write(tmp_path / 'p.jsonl', rows)}", "eval_size=4"]))
    assert max(len(p.prompt) for p in prompt_probe(task)) == 503
    generated = build_task(build_config("default", ["eval_size=8", "test_size=8"]))
    assert set(p.prompt for s in generated.splits.values() for p in s) <= set(p.prompt for p in prompt_probe(generated))


def test_old_vllm_is_refused_before_anything_loads(monkeypatch):
    from trainer import rollout

    monkeypatch.setattr(rollout, "vllm_available", lambda: True)
    monkeypatch.setattr(rollout, "vllm_version", lambda: (0, 12))
    for name in ("vllm", "auto"):
        with pytest.raises(ValueError, match=r"needs vLLM >= 0\.16 .*found 0\.12"):
            rollout.choose_backend(name)
    monkeypatch.setattr(rollout, "vllm_version", lambda: (0, 32))
    assert rollout.choose_backend("auto") == "vllm"


def test_unknown_task_and_missing_file():
    with pytest.raises(TaskError, match="unknown task"):
        build_task(build_config("default", ["task=nope"]))
    with pytest.raises(TaskError, match="no such task file"):
        build_task(build_config("default", ["task=/no/such.jsonl"]))


@pytest.mark.parametrize("sets, message", [
    (["loss=nope"], "unknown loss"),
    (["backend=tpu"], "unknown backend"),
    (["prompts_per_step=3", "group_size=3", "mini_batches=2"], "divisible by mini_batches"),
    (["lr=0"], "lr must be a finite number > 0"),
    (["group_size=1"], "group_size"),
    (["loss_hparams={\"n\": 0}"], "loss_hparams"),
    (["loss=grpo", "loss_hparams={\"m\": 2}"], "unknown hyper-parameter"),
])
def test_bad_config_is_rejected_with_the_field_name(sets, message):
    with pytest.raises(ValueError, match=message):
        validate(build_config("default", sets))


def test_set_parses_types_and_rejects_unknown_keys():
    cfg = build_config("smoke", ["lr=2e-5", "progress=false", "loss_hparams={\"n\": 2}", "adam_betas=[0.9, 0.95]"])
    assert cfg.lr == 2e-5 and cfg.progress is False and cfg.loss_hparams == {"n": 2} and cfg.adam_betas == (0.9, 0.95)
    with pytest.raises(ValueError, match="config fields"):
        build_config("default", ["nope=1"])
    with pytest.raises(ValueError, match="expected an integer"):
        build_config("default", ["steps=two"])


def test_pass_at_k_is_the_unbiased_estimator():
    assert pass_at_k(10, 0, 5) == 0.0 and pass_at_k(10, 10, 1) == 1.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(10, 3, 5) == pytest.approx(1 - math.comb(7, 5) / math.comb(10, 5))
    assert pass_at_k(4, 1, 4) == 1.0
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)
