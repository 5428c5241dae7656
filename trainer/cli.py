"""``dgpo train`` and ``dgpo eval``: argument parsing only; the work is in ``trainer.loop``."""

from __future__ import annotations

import json
import time
from pathlib import Path

from clikit import ArgumentParser, CliError

from .config import PRESETS, TrainConfig, build_config, config_from_dict, validate


def _train_parser() -> ArgumentParser:
    ap = ArgumentParser(prog="dgpo train", description="RLVR training with a verified loss (default: dgpo). "
                        "Fields of the config (trainer/config.py) are set with --set key=value.")
    ap.add_argument("--preset", default=None, choices=list(PRESETS), help="start from a preset (default: default)")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config field (repeatable), e.g. --set loss=grpo --set lr=1e-5")
    ap.add_argument("--output", default=None,
                    help="run folder (default: runs/<preset>-<UTC time>, a new folder every time)")
    ap.add_argument("--resume", action="store_true", help="continue the run in --output from its checkpoint")
    ap.add_argument("--overwrite", action="store_true", help="replace a run already in --output")
    ap.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    return ap


def _resolve(args) -> TrainConfig:
    run_dir = Path(args.output)
    if args.resume:
        if args.preset is not None:
            raise CliError("--resume continues the saved config; use --set to change fields, not --preset")
        saved = run_dir / "config.json"
        if not saved.is_file():
            raise CliError(f"--resume: {saved} does not exist")
        cfg = config_from_dict(json.loads(saved.read_text()))
        return build_config("default", [f"{k}={_as_text(v)}" for k, v in cfg.to_dict().items()] + args.sets)
    return build_config(args.preset or "default", args.sets)


def _as_text(v) -> str:
    return json.dumps(v) if isinstance(v, (dict, list, tuple)) else str(v)


def train_main(argv: list[str]) -> int:
    args = _train_parser().parse_args(argv)
    if args.resume and args.overwrite:
        raise CliError("--resume and --overwrite exclude each other")
    if args.output is None:
        if args.resume:
            raise CliError("--resume needs --output DIR (the run to continue)")
        args.output = f"runs/{args.preset or 'default'}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
    try:
        cfg = _resolve(args)
        validate(cfg)
        if args.print_config:
            print(json.dumps(cfg.to_dict(), indent=2))
            return 0
        from .loop import train

        result = train(cfg, Path(args.output), resume=args.resume, overwrite=args.overwrite)
    except (ValueError, FileNotFoundError) as exc:
        raise CliError(str(exc)) from None
    from .summary import text

    print(text(cfg, Path(args.output), result))
    return 0


def eval_main(argv: list[str]) -> int:
    ap = ArgumentParser(prog="dgpo eval", description="Evaluate a model (Avg@k, Pass@k) on a task's held-out set.")
    ap.add_argument("--model", required=True, help="a model folder (e.g. RUN/checkpoint) or a registry name")
    ap.add_argument("--task", default=None, help="task (default: the config default)")
    ap.add_argument("--k", type=int, default=1, help="samples per problem; 1 = greedy (default 1)")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="any other config field, e.g. eval_size=512, test_size=1000, backend=vllm")
    ap.add_argument("--save-problems", default=None, metavar="DIR",
                    help="write per-problem results (completions, rewards, finished) to DIR/<split>_step000000.jsonl")
    args = ap.parse_args(argv)
    sets = [f"model={args.model}", f"eval_k={args.k}"] + ([f"task={args.task}"] if args.task else []) + args.sets
    try:
        cfg = build_config("default", sets)
        from .config import resolve_device
        from .evaluation import evaluate_splits
        from .loop import make_encoder
        from .models import load_policy, resolve_model
        from .rollout import build_rollout, choose_backend
        from .tasks import build_task, heldout_problems

        validate(cfg)
        task = build_task(cfg)
        backend = choose_backend(cfg.backend)
        path = resolve_model(cfg.model)
        model, tok = load_policy(path, cfg.dtype, resolve_device(cfg.device))
        encode = make_encoder(tok, cfg.chat_template, cfg.system_prompt)
        max_prompt = max(len(encode(p.prompt)) for p in heldout_problems(task))
        engine = build_rollout(backend, model, tok, path, cfg, max_prompt + 8)
        result = evaluate_splits(engine, encode, task.splits, cfg,
                                 decode=lambda ids: tok.decode(ids, skip_special_tokens=True),
                                 out_dir=Path(args.save_problems) if args.save_problems else None)
    except (ValueError, FileNotFoundError) as exc:
        raise CliError(str(exc)) from None
    print(json.dumps({"model": args.model, "task": cfg.task,
                      "problems": {k: len(v) for k, v in task.splits.items()}, **result}))
    return 0
