"""``dgpo plot run DIR``: draw a run folder's metrics.jsonl (and eval.jsonl) as one PNG."""

from __future__ import annotations

import sys
from pathlib import Path

from clikit import ArgumentParser, CliError

from .runlog import read_lines, warn_torn

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
    """The records of a log; a torn line (a write cut short) is skipped with one warning line."""
    rows, torn = read_lines(path)
    warn_torn(path, torn, "skipped")
    return rows


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


def refresh(run_dir: Path) -> Path | None:
    """Redraw ``RUN/metrics.png`` during training (at each evaluation and checkpoint), once there are
    metrics. A failure to draw costs the picture, never the run: it is one warning line."""
    out = run_dir / "metrics.png"
    try:
        return draw(run_dir, out) if (run_dir / "metrics.jsonl").is_file() else None
    except Exception as exc:  # noqa: BLE001
        print(f"warning: {out} not drawn ({type(exc).__name__}: {exc})", file=sys.stderr)
        return None


def main(argv: list[str]) -> int:
    ap = ArgumentParser(prog="dgpo plot run", description="Draw a run folder's metrics as PNG.")
    ap.add_argument("run_dir", help="a run folder holding metrics.jsonl")
    ap.add_argument("--out", default=None, help="PNG path (default: RUN_DIR/metrics.png)")
    args = ap.parse_args(argv)
    run_dir = Path(args.run_dir)
    out = Path(args.out) if args.out else run_dir / "metrics.png"
    if out.is_dir():
        raise CliError(f"--out {out}: is a folder; name a .png file")
    out = draw(run_dir, out)
    print(out)
    return 0
