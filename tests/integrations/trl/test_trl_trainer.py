"""DGPOTrainer (TRL 1.16.x) on CPU with a tiny random Llama and a toy reward.

- Two optimizer steps with the dgpo loss and several updates per generation batch (so the ratio
  leaves 1); at every call the trainer's loss and its gradient on the per-token log-probs equal
  ``dgpo_ref.policy_loss`` on the same tensors with TRL's normalization.
- With ``loss_name="grpo"`` (dgpo_ref's PPO clip, TRL's own per-token formula) DGPOTrainer's loss
  equals GRPOTrainer's on the same inputs, for every normalization, with the KL term, TRL's vLLM
  importance-sampling correction, the entropy mask and the off-policy mask switched on: the
  trainer keeps everything of TRL's but the per-token loss. TRL's ``clip_ratio/*`` metrics are
  logged with TRL's values.
- ``loss_type="cispo"`` is TRL's cispo (absolute cap epsilon_high, no floor), mapped onto dgpo_ref's
  cispo: loss and gradients equal GRPOTrainer's cispo; dgpo_ref's cispo with the same epsilons differs.
"""

import warnings

import pytest
import torch
from datasets import Dataset
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

warnings.filterwarnings("ignore", message="TRL currently supports vLLM")
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

from dgpo_ref import policy_loss  # noqa: E402
from dgpo_ref.integrations.trl import DGPOConfig, DGPOTrainer, check_trl_version  # noqa: E402

WORDS = ["<pad>", "<eos>", "<unk>", "a", "b", "c", "d", "say", "letters", "now"]


def _tokenizer():
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")


def _model(seed=0):
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(WORDS), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
                      pad_token_id=0, eos_token_id=1, bos_token_id=1)
    return LlamaForCausalLM(cfg)


def count_a(completions, **kwargs):
    """Toy verifiable reward: the fraction of words that are 'a'."""
    return [c.split().count("a") / max(len(c.split()), 1) for c in completions]


def _settings(tmp_path, **overrides):
    settings = dict(
        output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to="none", save_strategy="no",
        per_device_train_batch_size=4, num_generations=4, steps_per_generation=2, num_iterations=2,
        max_completion_length=6, max_steps=2, learning_rate=5e-2, logging_steps=1, seed=0,
        temperature=1.0, epsilon=0.1, epsilon_high=0.1, loss_name="dgpo", n=2, m=2,
        dataloader_num_workers=0,
    )
    settings.update(overrides)
    return settings


def _config(tmp_path, **overrides):
    return DGPOConfig(**_settings(tmp_path, **overrides))


def _dataset():
    return Dataset.from_dict({"prompt": ["say letters now", "say a now", "say b c", "letters d now"] * 4})


class RecordingTrainer(DGPOTrainer):
    """Keeps, for every loss call, the tensors the loss saw and the gradient on the log-probs."""

    calls: list

    def _get_per_token_logps_and_entropies(self, *args, **kwargs):
        out = super()._get_per_token_logps_and_entropies(*args, **kwargs)
        self._logps = out[0]
        return out

    def _compute_loss(self, model, inputs):
        loss = super()._compute_loss(model, inputs)
        (grad,) = torch.autograd.grad(loss, self._logps, retain_graph=True)
        self.calls.append({"inputs": dict(inputs), "logps": self._logps.detach(), "loss": loss.detach(),
                           "grad": grad, "ga": self.current_gradient_accumulation_steps})
        return loss


def test_two_training_steps_use_dgpo_refs_loss(tmp_path):
    args = _config(tmp_path)
    model = _model()
    before = [p.detach().clone() for p in model.parameters()]
    trainer = RecordingTrainer(model=model, reward_funcs=count_a, args=args, train_dataset=_dataset(),
                               processing_class=_tokenizer())
    trainer.calls = []
    trainer.train()
    assert trainer.state.global_step == 2
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
    assert len(trainer.calls) == 2 * args.gradient_accumulation_steps  # one loss call per micro-batch
    moved = 0
    for call in trainer.calls:
        inp = call["inputs"]
        old = inp.get("old_per_token_logps")
        old = call["logps"] if old is None else old
        mask = inp["completion_mask"]
        moved += int(((call["logps"] - old).abs() * mask).sum() > 0)
        # TRL's dapo normalization: the generation batch's token count, per accumulation window
        normalizer = inp["num_items_in_batch"].clamp(min=1.0) * call["ga"] / args.steps_per_generation
        log_prob = call["logps"].clone().requires_grad_()
        want, metrics = policy_loss("dgpo", log_prob=log_prob, old_log_prob=old,
                                    advantages=inp["advantages"], response_mask=mask, normalizer=normalizer,
                                    eps_low=0.1, eps_high=0.1, n=2, m=2)
        (want_grad,) = torch.autograd.grad(want, log_prob)
        torch.testing.assert_close(call["loss"], want.detach(), rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(call["grad"], want_grad, rtol=1e-5, atol=1e-9)
    assert moved >= 1, "the ratio never left 1: the test would not see DGPO's boundaries"
    logged = {k for row in trainer.state.log_history for k in row}
    assert {"region/IN", "region/LN", "region/HP", "entropy", *TRL_CLIP_METRICS} <= logged


TRL_CLIP_METRICS = ("clip_ratio/low_mean", "clip_ratio/high_mean", "clip_ratio/region_mean",
                    "clip_ratio/low_min", "clip_ratio/high_max")


def _inputs(trainer, seed=0, rows=4, length=5):
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(rows, length, dtype=torch.long)
    mask[1, 3:] = 0
    mask[2, 1:] = 0
    completion_ids = torch.randint(3, len(WORDS), (rows, length), generator=g)
    with torch.no_grad():
        ids = torch.cat([torch.full((rows, 2), 7), completion_ids], dim=1)
        logits = trainer.model(input_ids=ids).logits[:, 1:-1]
        logps = torch.log_softmax(logits, -1).gather(-1, completion_ids[..., None])[..., 0]
    noise = lambda s: torch.randn(rows, length, generator=g) * s  # noqa: E731
    return {
        "prompt_ids": torch.full((rows, 2), 7), "prompt_mask": torch.ones(rows, 2, dtype=torch.long),
        "completion_ids": completion_ids, "completion_mask": mask,
        "advantages": torch.tensor([1.0, -0.5, 0.8, -1.2]),
        "old_per_token_logps": logps + noise(0.4),
        "ref_per_token_logps": logps + noise(0.3),
        "sampling_per_token_logps": logps + noise(0.3),
        "importance_sampling_ratio": torch.rand(rows, length, generator=g) + 0.5,
        "num_items_in_batch": mask.sum() * 2,
    }


@pytest.mark.parametrize("loss_type", ["grpo", "bnpo", "dr_grpo", "dapo"])
def test_keeps_trls_masks_is_correction_kl_and_normalization(tmp_path, loss_type):
    path = str(tmp_path / "tiny")  # from a folder: with beta > 0 TRL loads the reference model from it
    _model(1).save_pretrained(path)
    _tokenizer().save_pretrained(path)
    common = dict(loss_type=loss_type, beta=0.05, top_entropy_quantile=0.5, off_policy_mask_threshold=0.05,
                  epsilon=0.2, epsilon_high=0.28, max_steps=1)
    ours = DGPOTrainer(model=path, reward_funcs=count_a, args=_config(tmp_path, loss_name="grpo", n=None,
                                                                      m=None, **common),
                       train_dataset=_dataset())
    base_args = {k: v for k, v in _settings(tmp_path, **common).items() if k not in ("loss_name", "n", "m")}
    theirs = GRPOTrainer(model=path, reward_funcs=count_a, args=GRPOConfig(**base_args), train_dataset=_dataset())
    for trainer in (ours, theirs):  # as when vLLM generated the batch: TRL's IS correction is applied
        trainer.use_vllm, trainer.vllm_importance_sampling_correction = True, True
        trainer.current_gradient_accumulation_steps = 2  # set by the training loop; 2 exercises the scaling
        trainer.model.train()
    inputs = _inputs(ours)
    got = ours._compute_loss(ours.model, inputs)
    want = theirs._compute_loss(theirs.model, inputs)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
    clipped = 0.0
    for key in TRL_CLIP_METRICS:  # TRL's dashboard names, with TRL's values
        assert ours._metrics["train"][key] == pytest.approx(theirs._metrics["train"][key], abs=1e-6), key
        clipped += theirs._metrics["train"][key][0]
    assert clipped > 0, "no token was clipped: the metric comparison would be vacuous"
    ours.vllm_importance_sampling_correction = False  # control: the comparison does see the IS factor
    assert not torch.allclose(ours._compute_loss(ours.model, inputs), want)
    got.backward()
    want.backward()
    for p, q in zip(ours.model.parameters(), theirs.model.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-7)


def _trainers(tmp_path, ours_overrides, theirs_overrides):
    common = dict(beta=0.0, max_steps=1, epsilon=0.2)
    ours = DGPOTrainer(model=_model(2), reward_funcs=count_a, train_dataset=_dataset(), processing_class=_tokenizer(),
                       args=_config(tmp_path, **{"n": None, "m": None, "loss_name": None, **common, **ours_overrides}))
    base_args = {k: v for k, v in _settings(tmp_path, **common, **theirs_overrides).items()
                 if k not in ("loss_name", "n", "m")}
    theirs = GRPOTrainer(model=_model(2), reward_funcs=count_a, args=GRPOConfig(**base_args), processing_class=_tokenizer(),
                         train_dataset=_dataset())
    for trainer in (ours, theirs):
        trainer.current_gradient_accumulation_steps = 2
        trainer.model.train()
    inputs = _inputs(ours)
    g = torch.Generator().manual_seed(5)  # ratios far from 1 on both sides: above the cap 5, below 1 - 0.2
    inputs["old_per_token_logps"] = (inputs["old_per_token_logps"] + torch.randn(4, 5, generator=g) * 2.5).clamp(max=-1e-4)
    return ours, theirs, inputs


def _loss_and_grads(trainer, inputs):
    trainer.model.zero_grad()
    loss = trainer._compute_loss(trainer.model, inputs)
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in trainer.model.parameters()]


def test_trl_cispo_is_mapped_to_trls_semantics(tmp_path):
    ours, theirs, inputs = _trainers(tmp_path, {"loss_type": "cispo", "epsilon_high": 5.0},
                                     {"loss_type": "cispo", "epsilon_high": 5.0})
    assert ours.args.loss_name == "cispo" and ours.loss_hparams["eps_high"] == 4.0
    ratio = torch.exp(ours._get_per_token_logps_and_entropies(
        ours.model, torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], 1),
        torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], 1), 5)[0] - inputs["old_per_token_logps"])
    assert bool((ratio > 5).any()) and bool((ratio < 0.8).any()), "the cap and the (absent) floor must both be hit"
    got, got_grads = _loss_and_grads(ours, inputs)
    want, want_grads = _loss_and_grads(theirs, inputs)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
    for p, q in zip(got_grads, want_grads):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-7)
    assert ours._metrics["train"]["cispo_clip_ratio"] == pytest.approx(theirs._metrics["train"]["cispo_clip_ratio"])
    assert theirs._metrics["train"]["cispo_clip_ratio"][0] > 0


def test_dgpo_refs_cispo_with_trls_epsilons_is_another_loss(tmp_path):
    # the difference the mapping exists for: a floor at 1 - epsilon and a cap at 1 + epsilon_high
    ours, theirs, inputs = _trainers(tmp_path, {"loss_type": "dapo", "loss_name": "cispo", "epsilon_high": 5.0},
                                     {"loss_type": "cispo", "epsilon_high": 5.0})
    got, got_grads = _loss_and_grads(ours, inputs)
    want, want_grads = _loss_and_grads(theirs, inputs)
    diff = max(((p - q).norm() / q.norm()).item() for p, q in zip(got_grads, want_grads))
    print(f"dgpo_ref cispo vs TRL cispo with epsilon_high=5.0: relative gradient difference {diff:.3f}")
    assert diff > 1e-2


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"loss_type": "cispo", "loss_name": "dgpo"}, "selects TRL's cispo loss"),
        ({"loss_type": "cispo", "loss_name": None, "n": None, "m": None, "epsilon_high": 0.28},
         r"epsilon_high=0.28 must be > 1 with loss_type='cispo'"),
        ({"loss_type": "sapo"}, "loss_type"),
        ({"importance_sampling_level": "sequence"}, "importance_sampling_level"),
        ({"delta": 2.0}, "delta"),
        ({"entropy_coef": 0.01}, "entropy_coef"),
        ({"loss_name": "ppo"}, "loss_name"),
        ({"n": 0}, "n=0"),
        ({"loss_name": "gppo"}, "unknown hyper-parameter"),  # n, m from _config are not GPPO's
    ],
)
def test_bad_config_fails_when_built(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        _config(tmp_path, **overrides)


def test_supported_trl_range_is_enforced():
    check_trl_version("1.16.0")
    check_trl_version("1.16.9")
    for version in ("1.15.0", "1.17.0", "2.0.0"):
        with pytest.raises(ImportError, match=r"trl>=1\.16\.0,<1\.17\.0"):
            check_trl_version(version)


def test_config_has_a_field_for_every_spec_hyper_parameter():
    """EXTRA_HPARAMS comes from the spec records; a new method's hyper-parameter needs a DGPOConfig field."""
    from dataclasses import fields

    from dgpo_ref import LOSSES
    from dgpo_ref.integrations.trl import EXTRA_HPARAMS

    assert set(EXTRA_HPARAMS) == {k for row in LOSSES.values() for k in row.defaults} - {"eps_low", "eps_high"}
    missing = set(EXTRA_HPARAMS) - {f.name for f in fields(DGPOConfig)}
    assert not missing, f"DGPOConfig lacks fields {sorted(missing)}"
