"""``dgpo plot weights [--out FILE.png]``: W(p) on ∇π for every method, from the spec's own formulas.

Two panels, A > 0 (LP | IN | HP) and A < 0 (LN | IN | HN), p_old = 0.5, eps_low = eps_high = 0.2 for
every method (other hyper-parameters at their defaults); the breakpoints p = (1 ∓ eps)·p_old are
marked. Every curve is lambdified from ``spec.METHODS`` (no formula is typed here).
"""

from __future__ import annotations

from pathlib import Path

from clikit import ArgumentParser, CliError
from spec.core import LEFT, RIGHT
from spec.methods import METHODS
from spec.numeric import lambdified
from spec.symbols import eps_high, eps_low

P_OLD = 0.5
#: one trust region for every panel: DGPO's defaults (its record), so that all methods share the breakpoints
EPS = {k: METHODS["dgpo"].defaults()[k] for k in ("eps_low", "eps_high")}
#: (panel title, sign of A, region below, region above the trust region)
PANELS = (("A > 0", 1, "LP", "HP"), ("A < 0", -1, "LN", "HN"))
Y_MAX = 6.0


def region_of(p: float, below: str, above: str) -> str:
    r = p / P_OLD
    left, right = (float(b.subs({eps_low: EPS["eps_low"], eps_high: EPS["eps_high"]})) for b in (LEFT, RIGHT))
    return below if r < left else above if r > right else "IN"


def curve(name: str, sign: int, below: str, above: str, ps: list[float]) -> list[float]:
    """W(p) for one method across the three regions a sign of A meets."""
    spec = METHODS[name]
    fns = {reg: lambdified(spec, reg, sign, kind="W") for reg in (below, "IN", above)}
    hp = {k: v for k, v in EPS.items() if k in spec.hparam_names}
    return [fns[region_of(p, below, above)](p, P_OLD, **hp) for p in ps]


def break_jumps(ps: list[float], ys: list[float], below: str, above: str) -> list[float]:
    """A NaN at the first point of each new region, so that jumps are not drawn as lines."""
    regions = [region_of(p, below, above) for p in ps]
    return [float("nan") if i and regions[i] != regions[i - 1] else y for i, y in enumerate(ys)]


def draw(out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ps = [i / 1000 for i in range(2, 1001)]
    fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharey=True)
    for ax, (title, sign, below, above) in zip(axes, PANELS):
        for name in METHODS:
            style = dict(color="crimson", lw=3, zorder=5) if name == "dgpo" else dict(
                lw=1.5, ls="--" if name in ("pg", "grpo", "dapo") else "-.")
            ys = break_jumps(ps, curve(name, sign, below, above, ps), below, above)
            ax.plot(ps, ys, label=name, **style)
        for x, label in ((P_OLD * (1 - EPS["eps_low"]), "1-eps_low"), (P_OLD * (1 + EPS["eps_high"]), "1+eps_high")):
            ax.axvline(x, color="k", lw=0.8, ls=":")
            ax.text(x, Y_MAX * 0.97, f" r={label}", fontsize=8, va="top")
        ax.text(0.15, Y_MAX * 0.85, below, fontsize=11, ha="center")
        ax.text(0.5, Y_MAX * 0.85, "IN", fontsize=11, ha="center")
        ax.text(0.85, Y_MAX * 0.85, above, fontsize=11, ha="center")
        ax.set(title=f"weight W on grad pi, {title}", xlabel="p = pi_theta(token)", xlim=(0, 1), ylim=(-0.1, Y_MAX))
    axes[0].set_ylabel(f"W (p_old = {P_OLD}, policy gradient: 1/p_old = {1 / P_OLD:g})")
    axes[1].legend(loc="center right", fontsize=9)
    dgpo = ", ".join(f"{k}={v}" for k, v in METHODS["dgpo"].defaults().items() if k not in EPS)
    fig.suptitle(f"per-token weight on grad pi (dgpo: {dgpo}; every method: "
                 f"{', '.join(f'{k} = {v}' for k, v in EPS.items())})")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main(argv: list[str]) -> int:
    ap = ArgumentParser(prog="dgpo plot weights", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="weights.png", help="PNG file to write (default weights.png)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise CliError(f"--out must end in .png, got {args.out!r}")
    if not out.parent.exists():
        raise CliError(f"--out: folder {str(out.parent)!r} does not exist")
    if out.is_dir():
        raise CliError(f"--out {out}: is a folder; name a .png file")
    draw(out)
    print(f"wrote {out}")
    return 0
