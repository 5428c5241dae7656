"""Dress rehearsal of the ``r1-distill-1.5b`` preset on CPU, through the CLI as a user runs it.

Every field stays as the preset sets it except *size*: the model (a tiny random Qwen2 with the
DeepSeek-R1-Distill tokenizer layout and chat template, saved in bfloat16 like the real checkpoint),
the data (a Parquet file in DAPO-Math-17k's schema), the generation length, the batch and the number
of steps. One iteration, a checkpoint, then a resume for the second: the path a GPU run takes.
"""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from trainer.config import PRESETS, build_config
from trainer.loop import lr_factor

PRESET = "r1-distill-1.5b"
TEMPLATE = (Path(__file__).parent / "fixtures" / "r1_distill_chat_template.jinja").read_text(encoding="utf-8").rstrip("\n")
BOS, EOS = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"
SPECIAL = [BOS, EOS, "<｜User｜>", "<｜Assistant｜>"]
ADDED = ["<think>", "</think>"]  # ordinary added tokens in R1-Distill: they stay in decoded text
DAPO_PROMPT = ("Solve the following math problem step by step. The last line of your response should be of the form "
               "Answer: $Answer (without quotes) where $Answer is the answer to the problem.\n\n{}\n\n"
               "Remember to put your answer on its own line after \"Answer:\".")
SIZE = {  # the only departures from the preset (model and task are set per test folder)
    "max_new_tokens": 24, "prompts_per_step": 2, "group_size": 4, "eval_size": 2, "steps": 1,
}


def _tokenizer(folder: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = [DAPO_PROMPT.format(f"What is {a} + {b}? Find x if {a}x = {b}. Answer: {a + b}") for a in range(40) for b in range(5)]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIAL,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.add_tokens(ADDED)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=EOS)
    fast.chat_template = TEMPLATE
    fast.save_pretrained(folder)
    return fast


def _tiny_r1_distill(folder: Path) -> Path:
    """A 2-layer random Qwen2ForCausalLM shaped like DeepSeek-R1-Distill-Qwen-1.5B's config (untied
    embeddings, bfloat16 weights, its generation_config)."""
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    tok = _tokenizer(folder)
    config = Qwen2Config(vocab_size=len(tok), hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,
                         tie_word_embeddings=False, rope_theta=10000.0, use_sliding_window=False,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    Qwen2ForCausalLM(config).to(torch.bfloat16).save_pretrained(folder, safe_serialization=True)
    GenerationConfig(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, do_sample=True,
                     temperature=0.6, top_p=0.95).save_pretrained(folder)
    return folder


def _dapo_parquet(path: Path) -> Path:
    """Rows in DAPO-Math-17k's schema: data_source, prompt (a chat list), ability, reward_model
    {ground_truth, style}, extra_info {index}; integer answers as strings."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"data_source": "math_dapo",
             "prompt": [{"content": DAPO_PROMPT.format(f"What is {a} + {2 * a}?"), "role": "user"}],
             "ability": "MATH", "reward_model": {"ground_truth": str(3 * a), "style": "rule-lax"},
             "extra_info": {"index": f"{a:08x}-0000-4000-8000-000000000000"}} for a in range(12)]
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def _dgpo(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "dgpo_cli", "train", *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("r1")
    model, data, out = _tiny_r1_distill(tmp / "model"), _dapo_parquet(tmp / "dapo-math-17k.parquet"), tmp / "run"
    sets = {**SIZE, "model": str(model), "task": str(data), "progress": False}
    _dgpo("--preset", PRESET, "--output", str(out), *(f"--set={k}={v}" for k, v in sets.items()))
    first = _lines(out / "metrics.jsonl")
    _dgpo("--resume", "--output", str(out), "--set", "steps=2")
    return {"out": out, "sets": sets, "first": first}


def test_every_preset_field_runs_as_set(rehearsal):
    saved = json.loads((rehearsal["out"] / "config.json").read_text())
    expected = build_config(PRESET, [f"{k}={v}" for k, v in rehearsal["sets"].items()] + ["steps=2"]).to_dict()
    for key, value in PRESETS[PRESET].items():
        if key not in rehearsal["sets"]:
            assert saved[key] == value == expected[key], key
    assert saved["resolved_backend"] == "vllm" and saved["backend"] == "vllm"
    assert saved["dtype"] == "bfloat16" and saved["mixed_precision"] is True and saved["micro_batch_size"] == 1


def test_two_iterations_with_a_checkpoint_and_a_resume(rehearsal):
    out, cfg = rehearsal["out"], build_config(PRESET, [f"{k}={v}" for k, v in rehearsal["sets"].items()])
    rows = _lines(out / "metrics.jsonl")
    per_iter = cfg.mini_batches * cfg.epochs
    assert [r["step"] for r in rows] == list(range(1, 2 * per_iter + 1))
    assert rows[:per_iter] == rehearsal["first"]  # the resume kept the first iteration's lines
    assert [r["iteration"] for r in rows] == [1] * per_iter + [2] * per_iter
    for s, r in enumerate(rows):
        assert all(math.isfinite(r[k]) for k in ("loss", "grad_norm", "entropy", "kl"))
        assert r["lr"] == pytest.approx(cfg.lr * lr_factor(cfg, s), rel=1e-9)  # warm-up 10 of lr 1e-6
        assert r["response_length/mean"] <= cfg.max_new_tokens
    evals = _lines(out / "eval.jsonl")
    # 0, the first run's final evaluation (kept on resume), and the resumed run's final one
    assert [e["iteration"] for e in evals] == [0, 1, 2] and f"val/pass@{cfg.eval_k}" in evals[-1]
    state = torch.load(out / "checkpoint" / "trainer_state.pt", weights_only=False)["state"]
    assert state == {"step": 2, "opt_step": 2 * per_iter, "position": 2 * cfg.prompts_per_step}


def test_checkpoint_is_a_qwen2_folder_with_the_r1_template(rehearsal):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ckpt = rehearsal["out"] / "checkpoint"
    model = AutoModelForCausalLM.from_pretrained(ckpt)
    assert type(model).__name__ == "Qwen2ForCausalLM" and model.dtype == torch.float32  # float32 masters
    tok = AutoTokenizer.from_pretrained(ckpt)
    text = tok.apply_chat_template([{"role": "user", "content": "q"}], tokenize=False, add_generation_prompt=True)
    assert text == f"{BOS}<｜User｜>q<｜Assistant｜><think>\n"
    assert tok(text, add_special_tokens=False).input_ids.count(tok.bos_token_id) == 1  # no second BOS

