"""verl 0.9.1's real actor update with ``loss_mode=dgpo`` equals a plain forward + ``dgpo_ref``.

actor_worker.py runs, in 1 and in 2 gloo processes (cpu_shims.py), what verl runs for
``update_actor``: TrainingWorker.train_mini_batch → FSDPEngineWithLMHead (FSDP, micro-batches,
gradient accumulation) → verl's ppo_loss → the plugin's dgpo loss, configured with the override
lines of docs/scale.md. 8 sequences, 2 mini-batches of 4 (one optimizer step each, so the second
mini-batch sees weights the first one moved), 2 micro-batches per mini-batch and rank;
use_remove_padding on and off; FSDP compute in float32 and in bf16. Before each optimizer step the
worker records the full weights and gradients; here the same weights run a plain HF forward on
the same mini-batch and ``dgpo_ref.policy_loss`` (token-mean over the whole mini-batch), and the
gradients must agree (per tensor, |g - g_ref| / |g_ref|): to 1e-5 in float32, to the rounding of
bf16 compute (6e-2; dgpo vs PPO's clip differ by ~0.8 here) in bf16.
"""

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

from dgpo_ref import policy_loss

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
ROWS, PROMPT, RESPONSE, MINI, MICRO = 8, 4, 6, 4, 2  # MICRO: micro-batches per mini-batch and rank
VOCAB = 32
CASES = [{"name": f"rmpad{int(rmpad)}_{dtype}", "rmpad": rmpad, "dtype": dtype,
          "overrides": [f"actor_rollout_ref.model.use_remove_padding={rmpad}",
                        f"+actor_rollout_ref.actor.fsdp_config.mixed_precision={{param_dtype:{dtype},"
                        f"reduce_dtype:fp32,buffer_dtype:fp32}}"]}
         for rmpad in (True, False) for dtype in ("fp32", "bf16")]
TOLERANCE = {"fp32": 1e-5, "bf16": 6e-2}  # max over tensors of |g - g_ref| / |g_ref| (norms)
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def _doc_lines() -> list[str]:
    text = (ROOT / "docs" / "scale.md").read_text()
    block = text.split("The exact override lines:", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [ln.strip() for ln in block.splitlines() if ln.strip()]


def _tiny_model(path: Path) -> None:
    from tokenizers import Tokenizer, models

    torch.manual_seed(0)
    cfg = Qwen2Config(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                      tie_word_embeddings=False, pad_token_id=0, eos_token_id=1, bos_token_id=1)
    Qwen2ForCausalLM(cfg).save_pretrained(path)
    tok = Tokenizer(models.WordLevel({f"w{i}": i for i in range(VOCAB)}, unk_token="w2"))
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="w0", eos_token="w1", unk_token="w2").save_pretrained(path)


def _tiny_batch(model_path: Path) -> dict[str, torch.Tensor]:
    """A rollout batch as verl's trainer holds it: left-padded prompts, right-padded responses."""
    g = torch.Generator().manual_seed(1)
    prompt_len = torch.tensor([4, 2, 3, 4, 1, 4, 2, 3])
    response_len = torch.tensor([6, 3, 5, 1, 6, 4, 2, 6])
    prompts = torch.randint(3, VOCAB, (ROWS, PROMPT), generator=g)
    responses = torch.randint(3, VOCAB, (ROWS, RESPONSE), generator=g)
    pos = torch.arange(PROMPT)
    prompt_mask = (pos[None] >= PROMPT - prompt_len[:, None]).long()
    response_mask = (torch.arange(RESPONSE)[None] < response_len[:, None]).long()
    prompts, responses = prompts * prompt_mask, responses * response_mask
    attention_mask = torch.cat([prompt_mask, response_mask], 1)
    input_ids = torch.cat([prompts, responses], 1)
    position_ids = (attention_mask.cumsum(1) - 1).clamp(min=0)
    model = AutoModelForCausalLM.from_pretrained(model_path, torch_dtype=torch.float32)
    with torch.no_grad():
        log_prob = _response_log_prob(model, input_ids, attention_mask, position_ids, responses)
    # the sampler's log-probs differ from the trainer's: ratios leave 1 already in mini-batch 1
    old = log_prob + torch.randn(ROWS, RESPONSE, generator=g) * 0.4
    adv = torch.tensor([1.0, -1.0, 0.5, -0.7, 1.3, -0.4, 0.8, -1.5])[:, None].expand(ROWS, RESPONSE)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "position_ids": position_ids,
            "prompts": prompts, "responses": responses, "response_mask": response_mask,
            "old_log_probs": old * response_mask, "advantages": adv * response_mask}


def _response_log_prob(model, input_ids, attention_mask, position_ids, responses):
    logits = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids).logits
    logits = logits[:, PROMPT - 1:-1].float()
    return torch.log_softmax(logits, -1).gather(-1, responses[..., None])[..., 0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Run the actor update with 1 and with 2 ranks (all cases each); {world: out_dir}."""
    base = tmp_path_factory.mktemp("verl_actor")
    model_path = base / "tiny"
    _tiny_model(model_path)
    torch.save(_tiny_batch(model_path), base / "batch.pt")
    procs, outs = [], {}
    for world in (1, 2):
        out = base / f"world{world}"
        out.mkdir()
        overrides = [*_doc_lines(),
                     f"actor_rollout_ref.model.path={model_path}",
                     f"actor_rollout_ref.actor.ppo_mini_batch_size={MINI}",
                     f"actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu={MINI // world // MICRO}",
                     "actor_rollout_ref.actor.use_dynamic_bsz=False",
                     "actor_rollout_ref.actor.loss_agg_mode=token-mean",
                     "actor_rollout_ref.actor.optim.lr=0.05",
                     "actor_rollout_ref.actor.grad_clip=1e9",
                     # FSDP1 (sync_module_states) needs a GPU; FSDP2 shards on a CPU with gloo
                     "actor_rollout_ref.actor.strategy=fsdp2",
                     # no flash-attn on a CPU: torch SDPA (packed sequences masked from position_ids)
                     "+actor_rollout_ref.model.override_config.attn_implementation=sdpa",
                     "actor_rollout_ref.actor.entropy_coeff=0",
                     "actor_rollout_ref.actor.use_kl_loss=False",
                     "actor_rollout_ref.rollout.n=1",
                     "trainer.n_gpus_per_node=1"]
        spec = {"overrides": overrides, "cases": CASES, "batch": str(base / "batch.pt"),
                "mini_batch_size": MINI, "out": str(out)}
        spec_path = out / "spec.json"
        spec_path.write_text(json.dumps(spec))
        port = _free_port()
        env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
        for rank in range(world):
            procs.append(subprocess.Popen(
                [sys.executable, str(HERE / "actor_worker.py"), str(rank), str(world), str(port), str(spec_path)],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env))
        outs[world] = out
    logs = []
    for p in procs:
        try:
            logs.append(p.communicate(timeout=900)[0])
        except subprocess.TimeoutExpired:
            p.kill()
            logs.append(p.communicate()[0])
    for p, log in zip(procs, logs):
        assert p.returncode == 0, log[-6000:]
    return {"outs": outs, "batch": torch.load(base / "batch.pt"), "model": model_path}


def _reference_grads(model_path, weights, batch, rows, dtype="fp32", loss="dgpo"):
    """A plain HF forward with ``weights`` (cast to the FSDP compute dtype) on ``rows`` and dgpo_ref's
    dgpo with the docs' n, m, eps; the loss itself in float32."""
    model = AutoModelForCausalLM.from_pretrained(model_path, torch_dtype=torch.float32)
    model.load_state_dict(weights)
    model.to(DTYPES[dtype])
    b = {k: v[rows] for k, v in batch.items()}
    log_prob = _response_log_prob(model, b["input_ids"], b["attention_mask"], b["position_ids"], b["responses"])
    hp = {"eps_low": 0.2, "eps_high": 0.2, **({"n": 2, "m": 2} if loss == "dgpo" else {})}
    value, _ = policy_loss(loss, log_prob=log_prob, old_log_prob=b["old_log_probs"], advantages=b["advantages"],
                           response_mask=b["response_mask"], **hp)
    value.backward()
    return {n: p.grad.float() for n, p in model.named_parameters()}


def _mini_batch_rows(world: int, k: int) -> list[int]:
    """Rows of global mini-batch k: each rank's contiguous chunk, split into mini-batches of MINI/world."""
    per_rank, per_mini = ROWS // world, MINI // world
    return [r * per_rank + k * per_mini + j for r in range(world) for j in range(per_mini)]


@pytest.mark.parametrize("world", [1, 2])
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_actor_gradient_equals_dgpo_ref(runs, world, case):
    steps = torch.load(runs["outs"][world] / f"{case['name']}.pt")
    assert len(steps) == ROWS // MINI  # one optimizer step per mini-batch
    assert not all(torch.equal(steps[0]["params"][n], steps[1]["params"][n]) for n in steps[0]["params"])
    worst, control = 0.0, math.inf
    for k, step in enumerate(steps):
        rows = _mini_batch_rows(world, k)
        want = _reference_grads(runs["model"], step["params"], runs["batch"], rows, case["dtype"])
        assert set(want) == set(step["grads"])
        worst = max(worst, _relative(step["grads"], want))
        # control: the comparison tells dgpo from PPO's clip on the same tokens (ratios left 1)
        ppo = _reference_grads(runs["model"], step["params"], runs["batch"], rows, case["dtype"], loss="grpo")
        control = min(control, _relative(step["grads"], ppo))
    print(f"verl actor vs dgpo_ref, {world} rank(s), {case['name']}: max relative gradient difference "
          f"{worst:.2e} (vs grpo: {control:.2e})")
    assert worst <= TOLERANCE[case["dtype"]]
    assert control > 5 * TOLERANCE[case["dtype"]]


def _relative(got: dict, want: dict) -> float:
    return max(((got[n] - g).norm() / g.norm()).item() for n, g in want.items())
