"""vLLM's GPU sleep mode, simulated on the CPU through the real loop and the real VLLMRollout methods.

On a GPU the engine sleeps (level 1: weights offloaded, restored as they were on wake-up) through the
update phase. The trap: a wake-up *after* a weight push restores the stale weights. This drives
``trainer.loop.train`` with a stand-in for ``vllm.LLM`` that behaves that way, and checks that the
engine never samples while asleep, never takes a push while asleep, and ends with the trained weights.
"""

import copy

import torch

from trainer import loop
from trainer.config import build_config
from trainer.models import load_policy, resolve_model
from trainer.rewards import REWARDS
from trainer.rollout import HFRollout, VLLMRollout


def _initial_state(cfg):
    model, _ = load_policy(resolve_model(cfg.model), cfg.dtype)
    return model.state_dict()


class FakeSleepingLLM:
    """Stands in for ``vllm.LLM(enable_sleep_mode=True)``: its own copy of the weights, sampling by HF."""

    def __init__(self, model, tok):
        self.model = copy.deepcopy(model)
        self.sampler = HFRollout(self.model, tok)
        self.asleep, self.saved, self.calls = False, None, []

    def sleep(self, level):
        assert level == 1 and not self.asleep
        self.saved = {k: v.clone() for k, v in self.model.state_dict().items()}
        self.asleep = True
        self.calls.append("sleep")

    def wake_up(self):
        assert self.asleep
        self.model.load_state_dict(self.saved)  # level 1 restores the weights saved at sleep time
        self.asleep = False
        self.calls.append("wake")

    def collective_rpc(self, method, kwargs):
        assert method == "reload_weights"
        if self.asleep:
            raise RuntimeError("weights pushed into a sleeping engine")
        self.model.load_state_dict(dict(kwargs["weights_iterator"]))
        self.calls.append("push")

    def reset_prefix_cache(self):
        self.calls.append("reset")


class SleepingRollout(VLLMRollout):
    """The real sleep / wake / push_weights of VLLMRollout, over the stand-in engine."""

    def __init__(self, model, tok):
        self.llm = FakeSleepingLLM(model, tok)
        self.sleep_mode, self.asleep, self.dtype = True, False, torch.float32

    def generate(self, prompts, n, **kw):
        if self.llm.asleep:
            raise RuntimeError("sampling from a sleeping engine")
        self.llm.calls.append("generate")
        return self.llm.sampler.generate(prompts, n, **kw)


def test_sleep_mode_never_samples_asleep_and_ends_with_the_trained_weights(tmp_path, monkeypatch):
    monkeypatch.setitem(REWARDS, "parity", lambda completion, answer: float(len(completion) % 2))
    engines = []

    def build(backend, model, tok, path, cfg, max_len):
        engines.append(SleepingRollout(model, tok))
        engines[-1].push_weights(model)
        return engines[-1]

    monkeypatch.setattr(loop, "build_rollout", build)
    cfg = build_config("smoke", ["steps=3", "reward=parity", "eval_every=2", "save_every=0", "progress=false",
                                 "prompts_per_step=2", "group_size=4", "max_new_tokens=4", "temperature=1.0"])
    initial = {k: v.clone() for k, v in _initial_state(cfg).items()}
    loop.train(cfg, tmp_path / "run")
    (engine,) = engines
    calls = engine.llm.calls
    assert calls.count("sleep") == cfg.steps  # one sleep per iteration, through the update
    for i, c in enumerate(calls):
        if c == "sleep":  # ... and the next thing is wake-up, then the push, then the cache reset
            assert calls[i + 1 : i + 4] == ["wake", "push", "reset"], calls
    assert not engine.asleep
    trained, _ = load_policy(tmp_path / "run" / "checkpoint", "float32")
    final = trained.state_dict()
    served = engine.llm.model.state_dict()
    for k, v in final.items():
        torch.testing.assert_close(served[k], v, atol=0, rtol=0)
    assert any(not torch.equal(initial[k], final[k]) for k in final)  # training really moved the weights
