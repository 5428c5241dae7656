"""The training forwards' attention kernel: ``attention=auto`` picks eager for short sequences on a
CPU and sdpa otherwise; both give the same log-probs and gradients; the model is left as loaded."""

import dataclasses

import pytest
import torch

from trainer import update as U
from trainer.config import build_config, config_from_dict, validate
from trainer.models import load_policy, tiny_llama


@pytest.fixture(scope="module")
def policy():
    return load_policy(tiny_llama(), "float32")


def _batch(prompt_len, completion_len, n=4):
    prompts = [[1 + i % 50] * prompt_len for i in range(n)]
    comps = [[7] * completion_len for _ in range(n)]
    return U.Batch.build(prompts, comps, [[-1.0] * completion_len] * n, torch.zeros(n))


def test_auto_picks_eager_only_for_short_sequences_on_a_cpu(policy):
    model, _ = policy
    cfg = build_config("smoke", ["micro_batch_size=4"])
    assert cfg.attention == "auto"
    assert U.choose_attention(model, cfg, _batch(30, 16)) == "eager"
    assert U.choose_attention(model, cfg, _batch(30, U.EAGER_MAX_LEN - 30)) == "eager"
    assert U.choose_attention(model, cfg, _batch(30, U.EAGER_MAX_LEN - 29)) == "sdpa"
    # the memory cap: the same lengths with a micro-batch whose scores would pass EAGER_MAX_BYTES
    c = model.config
    per_seq = U.SAVED_BYTES_PER_SCORE * c.num_attention_heads * 300 * 330 * c.num_hidden_layers
    big = dataclasses.replace(cfg, micro_batch_size=U.EAGER_MAX_BYTES // per_seq + 1)
    assert U.choose_attention(model, big, _batch(30, 300, n=big.micro_batch_size)) == "sdpa"
    assert U.choose_attention(model, big, _batch(30, 300, n=2)) == "eager"  # the micro-batch is the batch
    for forced in ("eager", "sdpa"):
        assert U.choose_attention(model, dataclasses.replace(cfg, attention=forced), _batch(30, 999)) == forced


def test_auto_keeps_sdpa_off_the_cpu(policy, monkeypatch):
    model, _ = policy
    monkeypatch.setattr(type(model), "device", property(lambda self: torch.device("cuda")))
    assert U.choose_attention(model, build_config("smoke"), _batch(30, 16)) == "sdpa"


def test_bad_attention_is_one_line_and_old_runs_resume_with_sdpa():
    with pytest.raises(Exception, match="attention"):
        validate(build_config(sets=["attention=flash"]))
    assert config_from_dict({"model": "tiny-llama"}).attention == "sdpa"  # saved before the field existed


def test_eager_and_sdpa_give_the_same_logprobs_and_gradients(policy):
    model, tok = policy
    p1, p2 = tok("What is 1 + 2?").input_ids, tok("Add 40 and 2, then tell me").input_ids
    prompts, completions = [p1, p1, p2, p2], [[100, 200, 300], [5], [7, 8, 9, 10, 11], [42, 43]]
    out = {}
    for impl in ("sdpa", "eager"):
        model.zero_grad(set_to_none=True)
        with U.attention(model, impl):
            assert model.config._attn_implementation == impl
            lp, _ = U.sequence_logprobs(model, prompts, completions, 1.0, 7, tok.pad_token_id)
            lp.sum().backward()
        out[impl] = lp.detach(), model.model.layers[0].self_attn.q_proj.weight.grad.clone()
    assert model.config._attn_implementation == "sdpa"  # put back as loaded
    torch.testing.assert_close(out["eager"][0], out["sdpa"][0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out["eager"][1], out["sdpa"][1], atol=1e-5, rtol=1e-4)
    assert out["sdpa"][1].abs().sum() > 0
