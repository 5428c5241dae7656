"""What the completions cut at the length limit are: loops, or answers that needed more tokens.

    python -m bench.cut_answers SHORT_DIR [LONG_DIR] [--out docs/results/mathematics_cut_answers.json]

SHORT_DIR and LONG_DIR hold the per-problem files of two ``dgpo eval --save-problems`` runs of the
same model on the same problems (``<split>_step000000.jsonl``), with a short and a long
``max_new_tokens``. Per split: how many short completions were cut, how many of those end in an
exact loop (:func:`loop_period`), and, paired problem by problem, how many of them finish within the
long limit and how many are right there (without LONG_DIR, the short run's counts only).
Completions are text only: nothing is evaluated.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

#: a loop: the completion's last MIN_RUN or more characters repeat with a period of at most
#: MAX_PERIOD characters, over at least two periods
MIN_RUN, MAX_PERIOD = 30, 80


def loop_period(text: str, min_run: int = MIN_RUN, max_period: int = MAX_PERIOD) -> int | None:
    """The shortest period p <= max_period with which ``text``'s tail repeats over >= max(2p, min_run)
    characters (text[i] == text[i - p] for each of them); None if there is none."""
    s = text.rstrip()
    for p in range(1, max_period + 1):
        n, i = 0, len(s) - 1
        while i - p >= 0 and s[i] == s[i - p]:
            n, i = n + 1, i - 1
        if n >= max(2 * p, min_run):
            return p
    return None


def _read(path: Path) -> dict[int, dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {r["id"]: r for r in rows}


def split_stats(short: dict[int, dict], long: dict[int, dict] | None = None) -> dict:
    """The counts for one split, over the problems both runs have (greedy: one completion each)."""
    ids = sorted(set(short) & set(long)) if long is not None else sorted(short)
    cut = [i for i in ids if not short[i]["finished"][0]]
    loops = [i for i in cut if loop_period(short[i]["completions"][0])]
    counts = {
        "problems": len(ids),
        "cut_short": len(cut),
        "cut_short_loops": len(loops),
        "cut_short_right_in_cut_text": int(sum(short[i]["rewards"][0] for i in cut)),
        "right_short": int(sum(short[i]["rewards"][0] for i in ids)),
    }
    if long is None:
        return counts
    return {
        **counts,
        "cut_short_finished_long": sum(bool(long[i]["finished"][0]) for i in cut),
        "cut_short_right_long": int(sum(long[i]["rewards"][0] for i in cut)),
        "cut_short_loops_finished_long": sum(bool(long[i]["finished"][0]) for i in loops),
        "right_long": int(sum(long[i]["rewards"][0] for i in ids)),
        "cut_long": sum(not long[i]["finished"][0] for i in ids),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.cut_answers", description=__doc__.split("\n\n")[0])
    ap.add_argument("short", type=Path)
    ap.add_argument("long", type=Path, nargs="?", default=None)
    ap.add_argument("--out", type=Path, default=None, help="write the counts here as JSON")
    args = ap.parse_args(argv)
    result = {"loop": {"min_run": MIN_RUN, "max_period": MAX_PERIOD}, "short": str(args.short),
              "long": None if args.long is None else str(args.long), "splits": {}}
    for f in sorted(args.short.glob("*_step000000.jsonl")):
        other = None if args.long is None else args.long / f.name
        if other is not None and not other.is_file():
            print(f"cut_answers: {other} is missing", file=sys.stderr)
            return 2
        result["splits"][f.name.rsplit("_step", 1)[0]] = split_stats(_read(f), None if other is None else _read(other))
    if not result["splits"]:
        print(f"cut_answers: no <split>_step000000.jsonl in {args.short}", file=sys.stderr)
        return 2
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
