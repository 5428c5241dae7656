"""``dgpo plot run DIR``: draw a run folder's metrics.jsonl (and eval.jsonl) as one PNG."""

from __future__ import annotations

import json
from pathlib import Path

from dgpo_cli import ArgumentParser, CliError

REGIONS = ("IN", "LN", "HP", "LP", "HN")
# panel title -> metric keys drawn in it (x axis: optimizer step)
PANELS: dict[str, tuple[str, ...]] = {
    "reward / accuracy (train)": ("reward/mean", "accuracy"),
    "loss": ("loss",),
    "grad norm": ("grad_norm",),
    "entropy": ("entropy",),
    "region fraction": tuple(f"region/{r}" for r in REGIONS),
    "gradient share (log-prob space)": tuple(f"grad_share/{r}" for r in REGIONS) + ("grad_cos/dgpo_grpo",),
    "mean V per region": tuple(f"v_mean/{r}" for r in REGIONS),
    "KL (k3) to old policy": ("kl",),
    "response length": ("response_length/mean",),
    "time per step (s)": ("time/rollout", "time/old_logprob", "time/update", "time/push"),
}


def read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def draw(run_dir: Path, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, evals = read_jsonl(run_dir / "metrics.jsonl"), read_jsonl(run_dir / "eval.jsonl")
    if not rows:
        raise CliError(f"{run_dir / 'metrics.jsonl'} is missing or empty")
    fig, axes = plt.subplots(3, 4, figsize=(18, 11))
    for ax, (title, keys) in zip(axes.flat, PANELS.items()):
        for key in keys:
            pts = [(r["step"], r[key]) for r in rows if key in r]
            if pts:
                ax.plot(*zip(*pts), label=key, lw=1)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=6)
    for spare in axes.flat[len(PANELS) + 1 :]:
        spare.axis("off")
    ax = axes.flat[len(PANELS)]
    for key in sorted({k for e in evals for k in e if "/" in k and k.split("/")[1].startswith(("avg@", "pass@"))}):
        ax.plot([e["elapsed_s"] / 60 for e in evals], [e[key] for e in evals], marker="o", label=key)
    ax.set_title("held-out evaluation", fontsize=9)
    ax.set_xlabel("minutes")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def main(argv: list[str]) -> int:
    ap = ArgumentParser(prog="dgpo plot run", description="Draw a run folder's metrics as PNG.")
    ap.add_argument("run_dir", help="a run folder holding metrics.jsonl")
    ap.add_argument("--out", default=None, help="PNG path (default: RUN_DIR/metrics.png)")
    args = ap.parse_args(argv)
    run_dir = Path(args.run_dir)
    out = draw(run_dir, Path(args.out) if args.out else run_dir / "metrics.png")
    print(out)
    return 0
