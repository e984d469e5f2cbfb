"""``geosal evaluate``: the command line of the faithfulness evaluation.

    geosal evaluate                                   # the reduced default (see docs/evaluation.md)
    geosal evaluate --protocol kar-roar --epochs 15   # one protocol, other settings
    geosal evaluate --protocol layers                 # the optional per-layer protocol (Table 1)
    geosal evaluate --estimate                        # measure costs, print the projected time, run nothing
    python -m workflows.evaluate ...                  # the same

Reruns resume: finished cells are skipped. Every option is a field of
:class:`~geosal.evaluation.config.EvaluationConfig`; the options, the config
they make and the command that reproduces a config are generated from the
fields' metadata (:mod:`geosal.evaluation.options`).
"""

from __future__ import annotations

import argparse
import shlex

from geosal.evaluation.config import EvaluationConfig
from geosal.evaluation.options import command_line_settings
from geosal.evaluation.paths import portable

SETTINGS = command_line_settings(EvaluationConfig)
"""Every option of ``geosal evaluate`` that sets a field of the config, in field order."""

DESCRIPTION = (
    "Compare SMOE Scale with the popular saliency methods on UC Merced: KAR / ROAR with retraining, ROAD and deletion / "
    "insertion with the shipped model, per-layer scores (optional). Resumable."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--estimate``, ``--list-methods`` and one option per setting (by argument group) to ``parser``.

    Settings not given stay out of the namespace (``argparse.SUPPRESS``), so the config's defaults apply.
    """
    parser.add_argument("--estimate", action="store_true", help="measure the costs with tiny runs, print the projected time, run nothing")
    parser.add_argument("--list-methods", action="store_true", help="print the method registry and exit")
    groups: dict[str, argparse._ArgumentGroup] = {}
    for setting in SETTINGS:
        if setting.option.group not in groups:
            groups[setting.option.group] = parser.add_argument_group(setting.option.group)
        group, codec = groups[setting.option.group], setting.option.codec
        common = {"dest": setting.name, "default": argparse.SUPPRESS, "help": setting.help}
        if codec.switch:
            group.add_argument(setting.flag, action="store_const", const=not setting.default, **common)
        else:
            group.add_argument(setting.flag, type=codec.parse, nargs="+" if codec.many else None, metavar=setting.metavar, **common)


def config_from_args(args: argparse.Namespace) -> EvaluationConfig:
    """The config of the settings given in ``args``, defaults for the others.

    Raises:
        EvaluationConfigError: an invalid value, in one line naming the setting.
    """
    return EvaluationConfig(**{s.name: getattr(args, s.name) for s in SETTINGS if hasattr(args, s.name)})


def command_line(config: EvaluationConfig, prog: str = "geosal evaluate") -> str:
    """The command that reproduces ``config``: ``prog`` plus every option that
    differs from its default (paths relative to the project)."""
    words = [word for s in SETTINGS if not s.is_default(getattr(config, s.name)) for word in s.words(getattr(config, s.name))]
    return " ".join([prog, *map(shlex.quote, words)])


def command(args: argparse.Namespace) -> int:
    """List the methods, project the cost, or run the protocols and say where the results are."""
    if args.list_methods:
        from geosal.evaluation.catalog import METHOD_NAMES

        for name, method in METHOD_NAMES.items():
            print(f"{name:34s} {method.family:10s} {method.label}")
        return 0
    config = config_from_args(args)
    if args.estimate:
        from geosal.evaluation.estimate import estimate

        estimate(config)
        return 0
    from geosal.evaluation.runner import run_evaluation

    folder = run_evaluation(config, command=command_line(config))
    print(f"geosal: evaluation results in {portable(folder)}/ (README.md)")
    if "road" not in config.protocols or "deletion" not in config.protocols:
        print("  ROAD and deletion / insertion (no retraining): geosal evaluate --protocol road deletion")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``evaluate`` to ``geosal``'s argparse sub-commands; returns its parser."""
    parser = subparsers.add_parser(
        "evaluate", help="faithfulness of saliency methods (KAR/ROAR, ROAD, deletion/insertion) on UC Merced",
        description=DESCRIPTION,
    )
    add_arguments(parser)
    parser.set_defaults(handler=command)
    return parser
