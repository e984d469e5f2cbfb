"""The ``geosal`` command: thin sub-commands over the library.

    geosal run SCENE OUT [options]        saliency layers of one scene        (geosal.cli.run)
    geosal submit ARCHIVE OUT [options]   a whole archive (folder, glob, STAC) (geosal.cli.submit)
    geosal evaluate [options]             faithfulness of saliency methods     (geosal.cli.evaluate)
    geosal view PATH... [options]         the layers in a browser, offline     (geosal.cli.view)

Each sub-command module defines ``add_parser(subparsers)`` and imports the
library it drives only when it runs, so ``geosal run`` pays for neither the
evaluation nor, in-process, Dask. A :class:`~geosal.errors.GeosalError` (bad
input, configuration, model, output or cluster) ends in one line on stderr and
exit status 2; Ctrl-C in exit status 130.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from geosal.cli import evaluate, run, submit, view
from geosal.errors import GeosalError

COMMANDS = (run, submit, evaluate, view)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``geosal`` with every sub-command."""
    parser = argparse.ArgumentParser(prog="geosal", description="SMOE Scale saliency maps of CNNs over georeferenced imagery.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``geosal`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    warnings.filterwarnings("ignore", message=".*No CUDA runtime is found.*")
    try:
        return args.handler(args)
    except (GeosalError, FileNotFoundError) as error:
        print(f"geosal: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("geosal: interrupted; rerun with --resume to continue", file=sys.stderr)
        return 130


def entry() -> None:
    """The ``geosal`` console script: :func:`main`, then exit at once.

    Python's interpreter teardown takes over a second once torch is loaded (it
    finalizes thousands of modules); every output is complete and closed when
    :func:`main` returns, so the command flushes its streams and exits without it.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
