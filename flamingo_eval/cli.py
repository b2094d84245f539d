"""Argument parsing only: each subcommand hands its parsed arguments to the module that does the work."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from flamingo_eval.errors import UserError

SUBCOMMANDS = ("run", "ls", "score", "index", "leaderboard", "report", "regress", "demo", "data", "doctor",
               "controls")


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


def add_control_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--demo-images", choices=["none", "shuffle"],
                   help="control: demonstrations lose their images, or swap them among themselves")
    p.add_argument("--demo-answers", choices=["shuffle"], help="control: demonstrations swap their answers")
    p.add_argument("--order", choices=["similar-first"], help="control (RICES): the most similar demonstration first")


def cmd_ls(args: argparse.Namespace) -> int:
    if args.what == "tasks":
        from flamingo_eval.task import available_tasks, load_task, shown_path

        names = available_tasks()
        width = max(len(n) for n in names)
        for name in names:
            spec = load_task(name)
            print(f"{spec.name:<{width}} {spec.kind:<15} {spec.metric:<13} {spec.title}")
            for key in spec.files:
                print(f"    {key:<18} " + " or ".join(shown_path(p) for p in spec.candidates(key)))
            for variant in spec.variants:
                v = load_task(f"{name}:{variant}")
                print(f"  variant {v.name:<24} {v.title}")
                for key in (k for k in v.files if k not in spec.files):
                    print(f"    {key:<18} " + " or ".join(shown_path(p) for p in v.candidates(key)))
    else:
        from flamingo_eval.models import list_models

        models = list_models()
        width = max(len(m["name"]) for m in models)
        for m in models:
            print(f"{m['name']:<{width}} {m['family']:<13} {m.get('description', '')}")
            for key in ("model", "prompt_format", "processor", "lang_encoder", "cross_attn_every_n_layers", "checkpoint"):
                if key in m and m[key] != {}:
                    print(f"    {key:<26} {m[key]}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from flamingo_eval.runner import run

    run(run_config(args))
    return 0


def run_config(args: argparse.Namespace):
    """``run``'s (and ``controls``') arguments -> the runner's configuration; bad combinations are one line."""
    import os

    from flamingo_eval.runner import RunConfig

    if args.quiet:
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"

    if args.trials is not None and args.seeds is not None and args.trials != len(args.seeds):
        raise UserError(f"--trials {args.trials} disagrees with {len(args.seeds)} --seeds")
    seeds = args.seeds or [42 + i for i in range(args.trials or 1)]
    if any(s < 0 for s in args.shots):
        raise UserError("--shots must be non-negative")
    from flamingo_eval.demos.vlicl import with_description

    config = RunConfig(
        model=args.model, tasks=with_description(args.task, args.task_description), shots=args.shots, seeds=seeds,
        rices=args.rices,
        **_rices_encoder(args),
        num_samples=args.num_samples, batch_size=args.batch_size, device=args.device, precision=args.precision,
        device_map=args.device_map,
        data_root=args.data_root, overrides=parse_data_overrides(args.data), output_dir=args.output_dir,
        skip_bad_images=args.skip_bad_images, vqa_scorer=args.vqa_scorer, query_set_size=args.query_set_size,
        progress=not args.quiet, rices_by=args.rices_by, prompt_ensemble=args.prompt_ensemble,
        wait=not args.no_wait, **_control(args),
    )
    return config


def _control(args: argparse.Namespace) -> dict:
    from flamingo_eval.controls import parse

    return {"control": parse(args.demo_images, args.demo_answers, args.order)}


def cmd_controls(args: argparse.Namespace) -> int:
    """The plain run, then each control of it, on the same demonstrations, with the model loaded once."""
    from dataclasses import replace

    from flamingo_eval.controls import standard_controls
    from flamingo_eval.runner import Runner

    if args.demo_images or args.demo_answers or args.order:
        raise UserError("controls runs the plain run and every control itself: drop --demo-images, "
                        "--demo-answers and --order")
    config = run_config(args)
    model = None
    for control in standard_controls("rices" if args.rices else "random"):
        if "shuffle" in (control.demo_images, control.demo_answers) and 1 in config.shots:
            print(f"controls: skipping {control.suffix()[1:]}: 1 shot has nothing to shuffle", file=sys.stderr)
            continue
        runner = Runner(replace(config, control=control), model=model)
        model = runner.model
        runner.run()
    return 0


def _rices_encoder(args: argparse.Namespace) -> dict[str, str | None]:
    """``toy`` names of-toy's own ViT (the encoder the demo retrieves with), which has no pretrained tag."""
    if args.rices_encoder == "toy":
        from flamingo_eval.toy.demo import RICES_ENCODER

        return {"rices_encoder": RICES_ENCODER, "rices_pretrained": None}
    return {"rices_encoder": args.rices_encoder, "rices_pretrained": _none(args.rices_pretrained)}


def cmd_score(args: argparse.Namespace) -> int:
    from flamingo_eval.results import write_json_atomic
    from flamingo_eval.scoring import score_file
    from flamingo_eval.task import load_task

    task = load_task(args.task)
    out = score_file(task, args.predictions, args.data_root, parse_data_overrides(args.data), args.vqa_scorer)
    print(f"{out['task']} {out['metric']} {out['score']:.2f} (n={out['n']})")
    for group, score in out.get("groups", {}).items():
        print(f"  {group} {score:.2f}")
    if args.output:
        write_json_atomic(args.output, out)
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    import os

    from flamingo_eval.data_setup import check_command, fetch_command, unpack_command

    if args.action == "unpack":
        return unpack_command(args.task, args.source, args.data_root, args.split)
    if args.action == "fetch":
        if args.quiet:
            os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
        return fetch_command(args.task, args.data_root, source=args.source, images=args.images, force=args.force,
                             progress=not args.quiet)
    return check_command(args.task, args.data_root)


def cmd_doctor(args: argparse.Namespace) -> int:
    from flamingo_eval.doctor import doctor_command

    return doctor_command(args.task, args.model, args.data_root, args.precision, args.device)


def cmd_index(args: argparse.Namespace) -> int:
    from flamingo_eval.indexing import build_index

    for name in args.task:
        encoder = _rices_encoder(args)
        summary = build_index(name, args.data_root, parse_data_overrides(args.data), encoder["rices_encoder"],
                              encoder["rices_pretrained"], device=args.device, batch_size=args.batch_size,
                              num_workers=args.workers)
        for which, s in summary.items():
            print(f"{which:<5} {s['split']}: {s['samples']} samples, {s['images']} images, {s['dim']}-d -> {s['cache']}")
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from flamingo_eval.leaderboard import leaderboard

    rows = leaderboard(args.paths, args.out, args.markdown, args.plot, include_published=args.published)
    wrote = [str(p) for p in (args.out, args.markdown, args.plot) if p]
    print(f"{len(rows)} rows" + (f" -> {', '.join(wrote)}" if wrote else ""))
    if not wrote:
        from flamingo_eval.leaderboard import to_markdown

        print(to_markdown(rows), end="")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from flamingo_eval.report import build_report

    summary = build_report(args.runs, args.out, data_root=args.data_root, link_images=args.link_images,
                           progress=not args.quiet)
    for note in summary.notes:
        print(f"note: {note}", file=sys.stderr)
    images = summary.images
    made = (f"{images.images} images linked" if images.linked else
            f"{images.images} images ({images.made} thumbnails made, {images.reused} reused)")
    print(f"report: {summary.cells} cells, {summary.items} items, {made}, {images.missing} missing; "
          f"{summary.bytes / 1e6:.1f} MB in {summary.files} files, {summary.seconds:.1f} s")
    print(f"open {summary.index_html.resolve().as_uri()}")
    return 0


def cmd_regress(args: argparse.Namespace) -> int:
    from flamingo_eval.regress import regress

    return regress(args.baseline, args.current, args.tolerance)


def cmd_demo(args: argparse.Namespace) -> int:
    from flamingo_eval.toy.demo import run_demo

    run_demo(args.output_dir, args.data_root, num_samples=args.num_samples or None, seed=args.toy_seed,
             batch_size=args.batch_size, progress=not args.quiet, report=not args.no_report)
    return 0


def _none(value: str | None) -> str | None:
    return None if value in (None, "", "none", "None", "null") else value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flamingo-eval",
        description="Few-shot evaluation of Flamingo-style vision-language models.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ls", help="list tasks or models")
    p.add_argument("what", choices=["tasks", "models"])
    p.set_defaults(func=cmd_ls)

    p = sub.add_parser("run", help="evaluate a model (the default command)")
    p.add_argument("--model", required=True, help="a preset (flamingo-eval ls models) or a model spec YAML")
    p.add_argument("--task", nargs="+", required=True, help="task names (flamingo-eval ls tasks) or task YAMLs")
    p.add_argument("--shots", nargs="+", type=int, default=[0, 4, 8, 16, 32])
    p.add_argument("--trials", type=int, help="number of trials (seeds 42, 43, ...)")
    p.add_argument("--seeds", nargs="+", type=int, help="one trial per seed (default: 42)")
    p.add_argument("--rices", action="store_true", help="retrieve demonstrations by CLIP similarity (RICES)")
    p.add_argument("--rices-encoder", default="ViT-L-14",
                   help="open_clip model name, local-dir:DIR, or toy (of-toy's ViT, for the toy data)")
    p.add_argument("--rices-pretrained", default="openai", help="open_clip tag, weights file, or none")
    p.add_argument("--rices-by", default="image", choices=["image", "text", "image+text"],
                   help="RICES similarity of the images, of the questions' CLIP text features (VQA), or their sum")
    p.add_argument("--num-samples", type=int, help="evaluate a deterministic subsample of N items")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--device-map", choices=["auto"], default=None,
                   help="spread a model too large for one GPU over the visible GPUs (accelerate)")
    p.add_argument("--output-dir", default="results/runs")
    p.add_argument("--skip-bad-images", action="store_true", help="skip and count items whose image is bad")
    p.add_argument("--vqa-scorer", default="official", choices=["official", "openflamingo"])
    p.add_argument("--query-set-size", type=int, default=2048, help="random demonstrations come from this many")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--task-description", default="nothing", choices=["nothing", "concise", "detailed"],
                   help="VL-ICL tasks: the task description before the prompt (their :concise/:detailed variants)")
    p.add_argument("--prompt-ensemble", type=int, default=1, metavar="N",
                   help="classification: average the log-probabilities over up to N orderings of the demonstrations")
    p.add_argument("--no-wait", action="store_true",
                   help="when another run is computing a cell into the same folder, stop (exit 3) instead of waiting")
    add_data_args(p)
    add_control_args(p)
    p.set_defaults(func=cmd_run)

    # `controls` takes run's options (main() parses them with run's parser): listed here for the help
    sub.add_parser("controls", help="the plain run and each of its demonstration controls (images removed, "
                                    "images shuffled, answers shuffled; RICES: most similar first); run's options")

    p = sub.add_parser("score", help="re-score an official-format predictions file, no model needed")
    p.add_argument("--task", required=True)
    p.add_argument("--predictions", required=True, type=Path)
    p.add_argument("--output", type=Path)
    p.add_argument("--vqa-scorer", default="official", choices=["official", "openflamingo"])
    add_data_args(p)
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("data", help="set up a data root: fetch annotation files (and open images), unpack "
                                   "ImageNet's parquet shards, check it")
    dsub = p.add_subparsers(dest="action", required=True)
    q = dsub.add_parser("fetch", help="lay out the tasks' annotation files from openflamingo/eval_benchmark and "
                                      "say where each image folder comes from")
    q.add_argument("task", nargs="+", help="task names, variants (vqav2:test-dev) or 'all'")
    q.add_argument("--data-root", default="data", help="root of the data layout (default: ./data)")
    q.add_argument("--source", type=Path, help="a local copy of openflamingo/eval_benchmark (no network needed)")
    q.add_argument("--images", action="store_true",
                   help="also download and unpack the openly licensed images (COCO, VizWiz, TextVQA)")
    q.add_argument("--force", action="store_true", help="replace annotation files that are already present")
    q.add_argument("--quiet", action="store_true", help="no progress bars")
    q.set_defaults(func=cmd_data)
    q = dsub.add_parser("check", help="what each task reads that is present or missing, and how to fix it; "
                                      "exit 1 when anything is missing")
    q.add_argument("task", nargs="+", help="task names, variants (vqav2:test-dev) or 'all'")
    q.add_argument("--data-root", default="data", help="root of the data layout (default: ./data)")
    q.set_defaults(func=cmd_data)
    q = dsub.add_parser("unpack", help="ImageNet from the parquet shards of the Hugging Face dataset "
                                       "ILSVRC/imagenet-1k into the ImageFolder trees the task reads "
                                       "(class folders 0000-0999 by label); resumable")
    q.add_argument("task", help="imagenet (the only data set unpacked from parquet shards)")
    q.add_argument("--from", dest="source", type=Path, required=True, metavar="DIR",
                   help="the downloaded dataset folder (shards in DIR/data/ or DIR itself)")
    q.add_argument("--data-root", default="data", help="root of the data layout (default: ./data)")
    q.add_argument("--split", nargs="+", choices=["train", "val"], help="the splits to unpack (default: both)")
    q.set_defaults(func=cmd_data)

    p = sub.add_parser("doctor", help="check this machine, the data and a model before a run: one line per check "
                                      "with its fix; exit 1 when anything would stop a run")
    p.add_argument("--task", nargs="+", default=["all"], help="tasks to check (default: all)")
    p.add_argument("--model", help="a preset or model spec: are its weights here, does it fit")
    p.add_argument("--data-root", default="data", help="root of the data layout (default: ./data)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--device", help="the run's device (default: cuda where a GPU is visible, else cpu)")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("index", help="compute RICES features and the FAISS index ahead of time")
    p.add_argument("--task", nargs="+", required=True)
    p.add_argument("--rices-encoder", default="ViT-L-14",
                   help="open_clip model name, local-dir:DIR, or toy (of-toy's ViT, for the toy data)")
    p.add_argument("--rices-pretrained", default="openai", help="open_clip tag, weights file, or none")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=4, help="image decoding threads")
    add_data_args(p)
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("leaderboard", help="one row per (model, task, shots, selection) from result files")
    p.add_argument("paths", nargs="*", help="result files or directories (default: results/runs)")
    p.add_argument("--out", type=Path, help="CSV file")
    p.add_argument("--markdown", type=Path)
    p.add_argument("--plot", type=Path, help="PNG: score against shots per task")
    p.add_argument("--published", action="store_true",
                   help="also list the published figures (results/reference/) on the same tasks with no measured row")
    p.set_defaults(func=cmd_leaderboard)

    p = sub.add_parser("report", help="a static site (open index.html from disk): leaderboard, score against "
                                      "shots, every item's demonstrations, output and score, comparisons")
    p.add_argument("runs", nargs="+", help="run folders or result files (e.g. results/runs/of-9b)")
    p.add_argument("--out", required=True, type=Path, help="folder to write (new, empty, or an earlier report)")
    p.add_argument("--data-root", help="where the images now live, if not where the runs read them")
    p.add_argument("--link-images", action="store_true",
                   help="point at the original images instead of copying thumbnails (the report is not portable)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("regress", help="compare results with a baseline; exit 1 on a drop (for CI)")
    p.add_argument("--baseline", nargs="+", required=True)
    p.add_argument("--current", nargs="+", required=True)
    p.add_argument("--tolerance", type=float, default=0.5, help="allowed absolute drop (default 0.5)")
    p.set_defaults(func=cmd_regress)

    p = sub.add_parser("demo", help="of-toy on generated toy data: all tasks, 0/4 shots, random and RICES, leaderboard")
    p.add_argument("--data-root", help="toy data root (default: generated on first use in the cache)")
    p.add_argument("--toy-seed", type=int, default=0, help="seed of the generated toy data")
    p.add_argument("--num-samples", type=int, default=0,
                   help="a deterministic subsample of N items per task (default 0: all 100, about a minute on 2 CPU cores)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--output-dir", default="results/runs/demo")
    p.add_argument("--no-report", action="store_true", help="skip the report (OUTPUT_DIR/report/index.html)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_demo)
    return parser


def _quiet_libraries() -> None:
    """Hub retries and library warnings would bury the one line that says what is wrong."""
    import logging
    import os

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    logging.getLogger().setLevel(logging.CRITICAL)
    for name in ("huggingface_hub", "transformers", "open_clip", "datasets"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv.insert(0, "run")  # the bare form: flamingo-eval --model ... --task ...
    controls = bool(argv) and argv[0] == "controls"
    if controls:
        argv[0] = "run"
    parser = build_parser()
    args = parser.parse_args(argv)
    if controls:
        args.func = cmd_controls
    _quiet_libraries()
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"flamingo-eval: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("flamingo-eval: interrupted; finished items are kept", file=sys.stderr)
        return 130
