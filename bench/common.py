"""Shared benchmark helpers: side-by-side timing, peak memory, machine details.

Timing is always relative: the candidates of one comparison run round-robin in the same process
(A, B, A, B, ...), so a noisy neighbour slows them alike, and the report gives the median of each
and their ratio. Absolute times are printed for orientation only.

Peak memory: ``tracemalloc`` does not see torch's allocations. On a GPU we read the caching
allocator's ``max_memory_allocated``; on a CPU we run each measurement in a fresh child process and
read its peak resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) before and after
the work, so one measurement's freed memory cannot hide another's peak.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_side_by_side(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 1,
                      device: str = "cpu") -> dict[str, float]:
    """Median seconds per call of each function, run interleaved (round-robin) ``repeats`` times."""
    return {name: statistics.median(s) for name, s in sample_side_by_side(fns, repeats, warmup, device).items()}


def round_ratios(samples: dict[str, list[float]], base: str) -> dict[str, list[float]]:
    """t[name] / t[base] within each round, per candidate."""
    return {name: [a / b for a, b in zip(s, samples[base])] for name, s in samples.items()}


def paired_ratios(samples: dict[str, list[float]], base: str) -> dict[str, float]:
    """Median over rounds of t[name] / t[base] within the same round (robust to load drifting)."""
    return {name: statistics.median(r) for name, r in round_ratios(samples, base).items()}


def sample_side_by_side(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 1,
                        device: str = "cpu") -> dict[str, list[float]]:
    """Seconds of every call, the functions run interleaved (round-robin) ``repeats`` times."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    sync(device)
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            samples[name].append(time.perf_counter() - t0)
    return samples


def peak_rss_bytes() -> int:
    """This process's peak resident set size so far (Linux: VmHWM, which ru_maxrss also reports)."""
    status = _proc_status()
    if "VmHWM" in status:
        return status["VmHWM"]
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def reset_peak_rss() -> int:
    """Reset the peak RSS to the current RSS where Linux allows it; return the new baseline.

    Importing torch and building inputs can leave a transient high-water mark above the current
    RSS; without a reset that earlier peak would hide (part of) the measured work's peak. Writing
    5 to /proc/self/clear_refs resets VmHWM (Linux >= 4.0). Where that fails we fall back to the
    old peak as the baseline, which can only under-state both paths alike.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return peak_rss_bytes()
    return peak_rss_bytes()


def _proc_status() -> dict[str, int]:
    try:
        with open("/proc/self/status") as f:
            return {k: int(v.split()[0]) * 1024 for k, v in (line.split(":", 1) for line in f)
                    if k in ("VmHWM", "VmRSS")}
    except OSError:
        return {}


def run_child(module: str, args: dict) -> dict:
    """Run ``python -m module --child JSON`` in a fresh process; return the JSON it prints last."""
    cmd = [sys.executable, "-m", module, "--child", json.dumps(args)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if out.returncode != 0:
        raise RuntimeError(f"benchmark child {module} {args} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine() -> dict:
    """What the numbers were measured on."""
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "memory_gib": _mem_gib(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_average_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }
    return info


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_gib() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
        return round(kib / 2**20, 1)
    except (OSError, ValueError, IndexError):
        return None


def mib(n: float) -> float:
    return round(n / 2**20, 1)
