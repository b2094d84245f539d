"""Argument parsing only: each subcommand hands its parsed arguments to the module that does the work."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from flamingo_eval.errors import UserError

SUBCOMMANDS = ("run", "ls", "score", "index", "leaderboard", "regress")


def parse_data_overrides(items: Sequence[str] | None) -> dict[str, str]:
    """``--data KEY=PATH`` pairs -> dict."""
    out: dict[str, str] = {}
    for item in items or ():
        key, sep, path = item.partition("=")
        if not sep or not key or not path:
            raise UserError(f"--data expects KEY=PATH, got {item!r}")
        out[key] = path
    return out


def add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", default="data", help="root of the data layout (default: ./data)")
    p.add_argument("--data", action="append", metavar="KEY=PATH", help="override one data file of the task")


def cmd_ls(args: argparse.Namespace) -> int:
    if args.what == "tasks":
        from flamingo_eval.task import available_tasks, load_task

        for name in available_tasks():
            spec = load_task(name)
            print(f"{spec.name:<14} {spec.kind:<15} {spec.metric:<13} {spec.title}")
            for key, path in spec.files.items():
                print(f"    {key:<18} <data-root>/{path}")
    else:
        from flamingo_eval.models import list_models

        for m in list_models():
            print(f"{m['name']:<16} {m.get('description', '')}")
            for key in ("lang_encoder", "cross_attn_every_n_layers", "checkpoint"):
                if key in m:
                    print(f"    {key:<26} {m[key]}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flamingo-eval",
        description="Few-shot evaluation of Flamingo-style vision-language models.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ls", help="list tasks or models")
    p.add_argument("what", choices=["tasks", "models"])
    p.set_defaults(func=cmd_ls)

    for register in _extra_commands():
        register(sub)
    return parser


def _extra_commands() -> list[Callable[[argparse._SubParsersAction], None]]:
    """Subcommands defined next to the code they drive."""
    return []


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv.insert(0, "run")  # the bare form: flamingo-eval --model ... --task ...
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"flamingo-eval: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("flamingo-eval: interrupted; finished items are kept", file=sys.stderr)
        return 130
