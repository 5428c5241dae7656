"""Dynamic sampling (``filter_groups``): the batch holds only groups whose rewards differ, sampling
goes on for more rounds until it has ``prompts_per_step`` of them, a batch still short after
``max_sample_rounds`` is filled with equal-reward groups, and without the flag nothing changes."""

import dataclasses

import pytest
import torch

from trainer import loop
from trainer.config import build_config
from trainer.rewards import REWARDS
from trainer.rollout import Completion
from trainer.tasks import Problem

G = 4


class Engine:
    """Completion j of prompt "p<i>" is the text "<i>:<j>"; the fake reward decides which are right."""

    def __init__(self):
        self.seeds = []

    def generate(self, prompts, n, *, temperature, top_p, max_new_tokens, seed):
        self.seeds.append(seed)
        return [Completion([int(p[1:]), j], [-0.5, -0.5], True) for p in prompts for j in range(n)]


class Task:
    def train_problem(self, i):
        return Problem(f"q{i}", str(i))


@pytest.fixture(autouse=True)
def reward(monkeypatch):
    # problem i: all G completions right when i % 3 == 0, all wrong when i % 3 == 1, mixed when i % 3 == 2
    def fn(text, answer):
        i, j = map(int, text.split(":"))
        return float(i % 3 == 0 or (i % 3 == 2 and j % 2 == 0))

    monkeypatch.setitem(REWARDS, "fake", fn)


def _rollout(pps, **changes):
    cfg = dataclasses.replace(build_config("smoke"), reward="fake", prompts_per_step=pps, group_size=G, **changes)
    state, engine = {"position": 0}, Engine()
    batch, stats = loop.rollout_batch(engine, lambda s: "p" + s[1:], lambda ids: f"{ids[0]}:{ids[1]}", Task(), state,
                                      cfg, seed=5)
    problems = [int(batch.prompts[k * G][1:]) for k in range(pps)]
    return batch, stats, state, engine, problems


def test_without_the_flag_one_round_and_every_group():
    batch, stats, state, engine, problems = _rollout(3)
    assert problems == [0, 1, 2] and state["position"] == 3 and engine.seeds == [5]
    assert "groups/mixed_frac" not in stats
    assert torch.equal(batch.advantages[: 2 * G], torch.zeros(2 * G))  # equal-reward groups: advantage 0


def test_filtering_samples_more_rounds_and_keeps_only_mixed_groups():
    batch, stats, state, engine, problems = _rollout(3, filter_groups=True, max_sample_rounds=4)
    # mixed problems are 2, 5, 8: three rounds of three prompts
    assert problems == [2, 5, 8] and state["position"] == 9 and engine.seeds == [5, 5 + 1_000_000_007,
                                                                              5 + 2 * 1_000_000_007]
    assert len(batch.advantages) == 3 * G and all(batch.advantages[k * G : (k + 1) * G].abs().sum() > 0
                                                  for k in range(3))
    assert stats["groups/sampled"] == 9 and stats["groups/mixed_frac"] == pytest.approx(3 / 9)
    assert stats["groups/filled"] == 0 and stats["sample_rounds"] == 3
    assert stats["reward/mean"] == pytest.approx((3 * 1.0 + 3 * 0.5) / 9)  # over everything sampled


def test_a_short_batch_is_filled_with_equal_reward_groups():
    batch, stats, state, engine, problems = _rollout(3, filter_groups=True, max_sample_rounds=2)
    # two rounds (problems 0-5) give the mixed 2 and 5; the third slot takes the first equal-reward group, 0
    assert problems == [2, 5, 0] and state["position"] == 6
    assert stats["groups/filled"] == 1 and stats["sample_rounds"] == 2
    assert torch.equal(batch.advantages[2 * G :], torch.zeros(G))
