"""The raster package stands apart from the saliency core: importing it never imports torch."""

from __future__ import annotations

import subprocess
import sys


def test_raster_package_does_not_import_torch():
    code = "import sys, geosal.raster; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
