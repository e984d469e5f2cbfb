"""Faithfulness of saliency methods on UC Merced: the runnable entry point.

    python -m workflows.evaluate                         # the reduced default protocols
    python -m workflows.evaluate --estimate              # projected time on this machine, nothing run
    python -m workflows.evaluate --protocol layers       # the optional per-layer protocol

``geosal evaluate`` itself (geosal/cli/evaluate.py): the same options, code,
messages and exit statuses; see docs/evaluation.md. Reruns resume from the
finished cells.
"""

from __future__ import annotations

import sys

from geosal.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]]))
