"""Score saved evaluation completions again with another reward (no model needed).

``dgpo eval --save-problems DIR`` and a run's ``eval_problems/`` keep every completion with its gold
answer and the reward it got. This reads those files and scores each completion with ``--reward``
(``math-final`` by default), so a change of reward is measured on exactly the same text:

    python -m bench.rescore DIR [DIR ...] [--reward math-final] [--out FILE.json]

Per file: problems, right as saved, right under ``--reward``, and up to five completions that were
right as saved and are not now.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from clikit import ArgumentParser, CliError


def rescore_file(path: Path, reward) -> dict:
    saved = now = 0
    lost: list[dict] = []
    n = 0
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        for completion, r in zip(row["completions"], row["rewards"]):
            n += 1
            new = reward(completion, row["answer"])
            saved += r >= 1
            now += new >= 1
            if r >= 1 and new < 1 and len(lost) < 5:
                lost.append({"id": row["id"], "answer": row["answer"], "completion": completion[:160]})
    return {"completions": n, "right_as_saved": saved, "right_now": now, "examples_no_longer_right": lost}


def main(argv: list[str] | None = None) -> int:
    ap = ArgumentParser(prog="python -m bench.rescore", description="Score saved completions with another reward.")
    ap.add_argument("dirs", nargs="+", help="folders of <split>_step<N>.jsonl files")
    ap.add_argument("--reward", default="math-final")
    ap.add_argument("--out", default=None, help="write the JSON here too")
    args = ap.parse_args(argv)
    from trainer.rewards import REWARDS

    if args.reward not in REWARDS:
        raise CliError(f"--reward {args.reward!r}: not a reward; choose from {', '.join(sorted(REWARDS))}")
    files = []
    for d in args.dirs:
        if not Path(d).is_dir():
            raise CliError(f"{d}: not a folder")
        files += sorted(Path(d).glob("*.jsonl"))
    if not files:
        raise CliError("no .jsonl files in " + ", ".join(args.dirs))
    out = {"reward": args.reward, "files": {str(f): rescore_file(f, REWARDS[args.reward]) for f in files}}
    text = json.dumps(out, indent=1)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
