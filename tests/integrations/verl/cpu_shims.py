"""What verl 0.9.1's actor needs to run on a CPU with gloo: each shim names the verl limitation it
works around. None of them concerns the dgpo plugin; they only let the real actor path
(TrainingWorker → FSDPEngineWithLMHead → verl's ppo_loss → the registered policy loss) run here.

Call :func:`install` first thing in a worker process, before anything imports verl's engine.
"""

from __future__ import annotations

import contextlib
import os
from types import SimpleNamespace


def _cpu_device_module():
    """verl calls ``get_torch_device().<fn>`` for memory stats, caches and seeds, which torch.cpu
    lacks: the missing ones are no-ops (or 0) on a CPU."""
    import torch

    zero = lambda *a, **k: 0  # noqa: E731
    none = lambda *a, **k: None  # noqa: E731
    return SimpleNamespace(
        is_available=lambda: True, device_count=lambda: 1, current_device=lambda: "cpu",
        set_device=none, synchronize=none, empty_cache=none, manual_seed=torch.manual_seed,
        manual_seed_all=torch.manual_seed, max_memory_allocated=zero, max_memory_reserved=zero,
        memory_allocated=zero, memory_reserved=zero, reset_peak_memory_stats=none,
        mem_get_info=lambda *a, **k: (0, 0), get_device_name=lambda *a, **k: "cpu",
        Stream=contextlib.nullcontext, stream=lambda *a, **k: contextlib.nullcontext(),
        current_stream=none, Event=SimpleNamespace,
    )


def _cpu_platform():
    """verl 0.9.1 registers only accelerator platforms (nvidia, npu, rocm) and falls back to nvidia
    when none is found, so every tensor would go to 'cuda'. This one says 'cpu' and gloo."""
    from verl.plugin.platform import PlatformBase

    module = _cpu_device_module()
    none = lambda *a, **k: None  # noqa: E731

    class PlatformCPU(PlatformBase):
        device_name = "cpu"
        vendor_name = "cpu"
        device_module = module

        def is_available(self):
            return True

        def current_device(self):
            return "cpu"  # verl does `.to(get_device_id())`: an int would mean cuda:<n>

        def device_count(self):
            return 1

        set_device = synchronize = manual_seed = manual_seed_all = set_allocator_settings = none
        empty_cache = profiler_start = profiler_stop = cudart = none

        def get_device_capability(self, device_index=0):
            return None, None

        def communication_backend_name(self):
            return "gloo"  # verl's process groups and FSDP collectives: no NCCL on a CPU

        def visible_devices_envvar(self):
            return "CUDA_VISIBLE_DEVICES"

        def ray_resource_name(self):
            return "CPU"

        def ray_noset_envvars(self):
            return []

        def is_ipc_supported(self):
            return False

        @contextlib.contextmanager
        def nvtx_range(self, msg):
            yield

    return PlatformCPU()


def install(rank: int, world_size: int, port: int) -> None:
    """Make this process rank ``rank`` of a gloo group, with verl seeing a CPU platform."""
    import torch.distributed as dist

    # verl's Worker reads its rank and the rendezvous from these (Ray sets them in a real run).
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK="0", LOCAL_WORLD_SIZE="1",
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), CUDA_VISIBLE_DEVICES="")
    # EngineRegistry registers FSDPEngineWithLMHead for device 'cuda' only: look it up under that
    # name while the platform (and so every tensor placement) says 'cpu'.
    os.environ["VERL_ENGINE_DEVICE"] = "cuda"
    from verl.plugin.platform import set_platform

    set_platform(_cpu_platform())
    # TrainingWorker calls initialize_global_process_group_ray, which opens an NCCL group unless one
    # exists: create the gloo group first.
    if not dist.is_initialized():
        dist.init_process_group("gloo", rank=rank, world_size=world_size)
