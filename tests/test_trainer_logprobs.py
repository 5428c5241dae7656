"""The trainer's log-probs: shared-prompt forward equals one plain forward, values and gradients;
the hf sampler's log-probs equal the training model's."""

import pytest
import torch

from trainer.models import load_policy, tiny_llama
from trainer.rollout import HFRollout
from trainer.update import sequence_logprobs


@pytest.fixture(scope="module")
def policy():
    model, tok = load_policy(tiny_llama(), "float32")
    return model, tok


def _plain(model, prompts, completions, temperature):
    """Reference: each sequence alone, full logits, torch's log_softmax."""
    rows = []
    for p, c in zip(prompts, completions):
        logits = model(input_ids=torch.tensor([p + c])).logits[0].float() / temperature
        lp = torch.log_softmax(logits, -1)[len(p) - 1 : len(p) + len(c) - 1]
        rows.append(lp.gather(-1, torch.tensor(c)[:, None])[:, 0])
    return rows


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_shared_prompt_forward_equals_plain_forward(policy, temperature):
    model, tok = policy
    p1, p2 = tok("What is 1 + 2?").input_ids, tok("Add 40 and 2, then tell me").input_ids
    prompts = [p1, p1, p2, p1, p2]
    completions = [[100, 200, 300], [5], [7, 8, 9, 10, 11], [42, 43], [1000]]
    lp, ent = sequence_logprobs(model, prompts, completions, temperature, 7, tok.pad_token_id)
    ref = _plain(model, prompts, completions, temperature)
    for i, r in enumerate(ref):
        torch.testing.assert_close(lp[i, : len(r)], r, atol=1e-4, rtol=1e-4)
        assert torch.all(lp[i, len(r):] == 0) and torch.all(ent[i, len(r):] == 0)
    assert torch.all(ent[lp != 0] > 0)
    weights = torch.randn(lp.shape)
    g = torch.autograd.grad((lp * weights).sum(), list(model.parameters()))
    g_ref = torch.autograd.grad(sum((r * weights[i, : len(r)]).sum() for i, r in enumerate(ref)), list(model.parameters()))
    for a, b in zip(g, g_ref):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-3)


def test_hf_sampler_logprobs_match_training_model(policy):
    model, tok = policy
    engine = HFRollout(model, tok)
    prompts = [tok("What is 3 + 4?").input_ids, tok("Hi").input_ids]
    outs = engine.generate(prompts, 3, temperature=0.8, top_p=1.0, max_new_tokens=6, seed=0)
    assert len(outs) == 6
    again = engine.generate(prompts, 3, temperature=0.8, top_p=1.0, max_new_tokens=6, seed=0)
    assert [o.token_ids for o in outs] == [o.token_ids for o in again]  # seeded
    with torch.no_grad():
        lp, _ = sequence_logprobs(model, [p for p in prompts for _ in range(3)], [o.token_ids for o in outs], 0.8, 64,
                                  tok.pad_token_id, entropy=False)
    for i, o in enumerate(outs):
        torch.testing.assert_close(torch.tensor(o.logprobs), lp[i, : len(o.token_ids)], atol=1e-4, rtol=1e-4)
    greedy = engine.generate(prompts, 1, temperature=0.0, max_new_tokens=5)
    ref = model.generate(input_ids=torch.tensor([prompts[0]]), do_sample=False, max_new_tokens=5,
                         pad_token_id=tok.pad_token_id)[0, len(prompts[0]):].tolist()
    assert greedy[0].token_ids == ref[: len(greedy[0].token_ids)]


def test_top_p_keeps_the_smallest_set_reaching_p():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    lp = HFRollout._processed_logprobs(logits, 1.0, 0.75)
    torch.testing.assert_close(lp.exp(), torch.tensor([[0.625, 0.375, 0.0, 0.0]]))
