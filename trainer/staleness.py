"""A sampler that runs behind the learner (``staleness`` k), as asynchronous RL pipelines do.

The learner's weights at the start of each of the last k + 1 steps are kept (CPU copies of its
parameters); step t samples with the oldest, i.e. the weights of step t − k (fewer steps back while
the run is younger than k). The copies are swapped into the training model's parameters for the
rollout (``tensor.data`` swaps, no copy), pushed to a vLLM engine from there, and swapped back, so
one code path serves both backends. They are saved with the checkpoint, so a resumed run samples
from exactly the weights it would have used.
"""

from __future__ import annotations

from collections import deque
from contextlib import contextmanager
from pathlib import Path

import torch

FILE = "stale_weights.pt"


class StaleWeights:
    def __init__(self, lag: int):
        self.lag = lag
        self.queue: deque[dict[str, torch.Tensor]] = deque(maxlen=lag + 1)

    def record(self, model) -> None:
        """Keep the learner's weights as they are now (call once per step, before its rollout)."""
        if self.lag:
            self.queue.append({k: p.detach().to("cpu", copy=True) for k, p in model.named_parameters()})

    @contextmanager
    def sampling(self, model):
        """Inside: ``model`` holds the stale weights (the current ones when ``lag`` is 0)."""
        if not self.lag or len(self.queue) < 2:
            yield
            return
        params, old = dict(model.named_parameters()), self.queue[0]
        live = {k: p.data for k, p in params.items()}
        try:
            for k, p in params.items():
                p.data = old[k].to(p.device)
            yield
        finally:
            for k, p in params.items():
                p.data = live[k]

    def save(self, folder: Path) -> None:
        if self.lag:
            torch.save(list(self.queue), folder / FILE)

    def load(self, folder: Path) -> None:
        if self.lag and (folder / FILE).is_file():
            self.queue.extend(torch.load(folder / FILE, weights_only=True)[-(self.lag + 1):])
