"""``python -m geosal.cli``: the same as the ``geosal`` command."""

import sys

from geosal.cli import main

sys.exit(main())
