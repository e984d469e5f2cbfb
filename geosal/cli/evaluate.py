"""``geosal evaluate``: the command line of the faithfulness evaluation.

    geosal evaluate                                   # the reduced default (see docs/evaluation.md)
    geosal evaluate --protocol kar-roar --epochs 15   # one protocol, other settings
    geosal evaluate --protocol layers                 # the optional per-layer protocol (Table 1)
    geosal evaluate --estimate                        # measure costs, print the projected time, run nothing
    python -m workflows.evaluate ...                  # the same

Reruns resume: finished cells are skipped.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from geosal.errors import GeosalError
from geosal.evaluation.config import DEFAULT_PROTOCOLS, PROTOCOLS, EvaluationConfig, default_paths, portable, project_root

D = EvaluationConfig(data=Path("."))


def _fractions(text: str) -> tuple[float, ...]:
    values = [float(v) for v in text.split(",") if v.strip()]
    return tuple(round(v / 100 if v > 1 else v, 6) for v in values)


def _fraction(text: str) -> float:
    value = float(text)
    return round(value / 100 if value > 1 else value, 6)


def _names(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def _per_class(text: str) -> int | None:
    value = int(text)
    return None if value <= 0 else value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    paths = default_paths(project_root())
    io = parser.add_argument_group("data and outputs")
    io.add_argument("--data", type=Path, default=paths["data"], help="folder-per-class collection (default ../shared/data/ucmerced)")
    io.add_argument("--results", type=Path, default=paths["results"], help="results folder (default results/ucmerced)")
    io.add_argument("--cache", type=Path, default=paths["cache"], help="saliency cache, large (default runs/evaluate-cache)")
    io.add_argument("--model", help="model to explain (default: the shipped ucmerced-resnet18; or a checkpoint)")
    io.add_argument("--protocol", nargs="+", choices=[*PROTOCOLS, "all"], default=list(DEFAULT_PROTOCOLS),
                    help=f"protocols to run (default: {' '.join(DEFAULT_PROTOCOLS)}; 'all' adds layers)")
    io.add_argument("--estimate", action="store_true", help="measure the costs with tiny runs, print the projected time, run nothing")
    io.add_argument("--list-methods", action="store_true", help="print the method registry and exit")
    retrain = parser.add_argument_group("KAR / ROAR retraining")
    retrain.add_argument("--methods", type=_names, default=D.methods, help="comma list of methods, or 'all' / 'default'")
    retrain.add_argument("--percentages", type=_fractions, default=D.percentages, help="comma list, e.g. 10,30,50,70,90")
    retrain.add_argument("--image-size", type=int, default=D.image_size, help="retraining image side in px")
    retrain.add_argument("--saliency-size", type=int, default=D.saliency_size,
                         help="image side the model computes the retraining protocols' saliency at (0: the model's size)")
    retrain.add_argument("--epochs", type=int, default=D.epochs)
    retrain.add_argument("--batch-size", type=int, default=D.batch_size)
    retrain.add_argument("--lr", type=float, default=D.lr)
    retrain.add_argument("--warmup-epochs", type=int, default=D.warmup_epochs)
    retrain.add_argument("--crop", type=int, help="training crop side (default 7/8 of --image-size)")
    retrain.add_argument("--train-per-class", type=_per_class, default=D.train_per_class, help="first N training images per class (0: all)")
    retrain.add_argument("--val-per-class", type=_per_class, default=D.val_per_class, help="first N validation images per class (0: all)")
    retrain.add_argument("--no-share-random", action="store_true", help="retrain random ROAR(p) instead of reusing KAR(1-p)")
    retrain.add_argument("--no-reference", action="store_true", help="skip the retraining on unmasked images")
    layers = parser.add_argument_group("per-layer protocol (layers)")
    layers.add_argument("--layer-statistics", type=_names, default=D.layer_statistics, help="comma list of Table 1 statistics")
    layers.add_argument("--layer-kar", type=_fraction, default=D.layer_kar, help="KAR kept percentage (default 2.5)")
    layers.add_argument("--layer-roar", type=_fraction, default=D.layer_roar, help="ROAR removed percentage (default 10)")
    evaluation = parser.add_argument_group("ROAD and deletion / insertion")
    evaluation.add_argument("--eval-methods", type=_names, default=D.eval_methods, help="comma list (default: all)")
    evaluation.add_argument("--eval-size", type=int, default=0, help="image side (0: the model's size, 192)")
    evaluation.add_argument("--eval-per-class", type=_per_class, default=D.eval_per_class,
                            help=f"validation images per class (default {D.eval_per_class}; 0: all 16)")
    evaluation.add_argument("--road-noise", type=float, default=D.road_noise)
    evaluation.add_argument("--deletion-steps", type=int, default=D.deletion_steps)
    evaluation.add_argument("--deletion-substrate", choices=["mean", "blur"], default=D.deletion_substrate)
    methods = parser.add_argument_group("method options")
    methods.add_argument("--seed", type=int, default=D.seed)
    methods.add_argument("--nt-samples", type=int, default=D.nt_samples, help="SmoothGrad samples (paper: 15)")
    methods.add_argument("--noise-level", type=float, default=D.noise_level, help="SmoothGrad noise, fraction of the input range")
    methods.add_argument("--ig-steps", type=int, default=D.ig_steps, help="Integrated Gradients steps")
    methods.add_argument("--channel-reduce", choices=["sum", "max"], default=D.channel_reduce)
    methods.add_argument("--saliency-batch", type=int, default=D.saliency_batch)
    methods.add_argument("--timing-images", type=int, default=D.timing_images)
    compute = parser.add_argument_group("compute")
    compute.add_argument("--threads", type=int, help="torch CPU threads")
    compute.add_argument("--no-bf16", action="store_true", help="float32 instead of bfloat16 autocast")


def config_from_args(args: argparse.Namespace) -> EvaluationConfig:
    protocols = tuple(dict.fromkeys(p for name in args.protocol for p in (PROTOCOLS if name == "all" else [name])))
    return EvaluationConfig(
        data=args.data, results=args.results, cache=args.cache, model=args.model, protocols=protocols,
        methods=args.methods, percentages=args.percentages, image_size=args.image_size,
        saliency_size=args.saliency_size or None, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        warmup_epochs=args.warmup_epochs, crop=args.crop, train_per_class=args.train_per_class,
        val_per_class=args.val_per_class, share_random=not args.no_share_random, reference=not args.no_reference,
        layer_statistics=args.layer_statistics, layer_kar=args.layer_kar, layer_roar=args.layer_roar,
        eval_methods=args.eval_methods, eval_size=args.eval_size or None, eval_per_class=args.eval_per_class,
        road_noise=args.road_noise, deletion_steps=args.deletion_steps, deletion_substrate=args.deletion_substrate,
        seed=args.seed, nt_samples=args.nt_samples, noise_level=args.noise_level, ig_steps=args.ig_steps,
        channel_reduce=args.channel_reduce, saliency_batch=args.saliency_batch, timing_images=args.timing_images,
        bf16=not args.no_bf16, threads=args.threads,
    )


def command(args: argparse.Namespace) -> int:
    from geosal.evaluation.methods import METHODS

    if getattr(args, "list_methods", False):
        for name, method in METHODS.items():
            print(f"{name:34s} {method.family:10s} {method.label}")
        return 0
    from geosal.evaluation.runner import run_evaluation

    try:
        config = config_from_args(args)
        if args.estimate:
            from geosal.evaluation.estimate import estimate

            estimate(config)
            return 0
        folder = run_evaluation(config, command=command_line(config, getattr(args, "prog_name", "geosal evaluate")))
    except (GeosalError, FileNotFoundError) as error:
        print(f"geosal: error: {error}", file=sys.stderr)
        return 2
    print(f"geosal: evaluation results in {portable(folder)}/ (README.md)")
    if "road" not in config.protocols or "deletion" not in config.protocols:
        print("  ROAD and deletion / insertion (no retraining): geosal evaluate --protocol road deletion")
    return 0


FLAGS = {
    "data": "--data", "results": "--results", "cache": "--cache", "model": "--model", "protocols": "--protocol",
    "methods": "--methods", "percentages": "--percentages", "image_size": "--image-size", "saliency_size": "--saliency-size",
    "epochs": "--epochs", "batch_size": "--batch-size", "lr": "--lr", "warmup_epochs": "--warmup-epochs", "crop": "--crop",
    "train_per_class": "--train-per-class", "val_per_class": "--val-per-class", "layer_statistics": "--layer-statistics",
    "layer_kar": "--layer-kar", "layer_roar": "--layer-roar", "eval_methods": "--eval-methods", "eval_size": "--eval-size",
    "eval_per_class": "--eval-per-class", "road_noise": "--road-noise", "deletion_steps": "--deletion-steps",
    "deletion_substrate": "--deletion-substrate", "seed": "--seed", "nt_samples": "--nt-samples",
    "noise_level": "--noise-level", "ig_steps": "--ig-steps", "channel_reduce": "--channel-reduce",
    "saliency_batch": "--saliency-batch", "timing_images": "--timing-images", "threads": "--threads",
}


def command_line(config: EvaluationConfig, prog: str = "geosal evaluate") -> str:
    """The command that reproduces ``config``: ``prog`` plus every option that
    differs from its default (paths relative to the project)."""
    defaults = EvaluationConfig(data=Path("."), **{k: Path(v) for k, v in default_paths(project_root()).items() if k != "data"})
    default_data = default_paths(project_root())["data"]
    words = [prog]
    for name, flag in FLAGS.items():
        value, default = getattr(config, name), getattr(defaults, name)
        if name == "data":
            default = default_data
        if value == default or (isinstance(value, Path) and portable(value) == portable(default)):
            continue
        if name == "protocols":
            words += [flag, *value]
            continue
        if name in ("percentages",):
            text = ",".join(f"{100 * v:g}" for v in value)
        elif name in ("layer_kar", "layer_roar"):
            text = f"{100 * value:g}"
        elif isinstance(value, tuple):
            text = ",".join(value)
        elif value is None:
            text = "0"
        elif isinstance(value, Path):
            text = portable(value)
        else:
            text = str(value)
        words += [flag, text]
    if not config.share_random:
        words.append("--no-share-random")
    if not config.reference:
        words.append("--no-reference")
    if not config.bf16:
        words.append("--no-bf16")
    return " ".join(shlex.quote(w) if i else w for i, w in enumerate(words))


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``evaluate`` to ``geosal``'s argparse sub-commands; returns its parser."""
    parser = subparsers.add_parser(
        "evaluate", help="faithfulness of saliency methods (KAR/ROAR, ROAD, deletion/insertion) on UC Merced",
        description="Compare SMOE Scale with the popular saliency methods on UC Merced: KAR / ROAR with retraining, "
                    "ROAD and deletion / insertion with the shipped model, per-layer scores (optional). Resumable.",
    )
    add_arguments(parser)
    parser.set_defaults(handler=command)
    return parser


def main(argv: list[str] | None = None, prog: str = "python -m workflows.evaluate") -> int:
    """Stand-alone entry point (``workflows/evaluate.py``): the same options and code as ``geosal evaluate``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    args.prog_name, args.argv = prog, argv
    return command(args)
