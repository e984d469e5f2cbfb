"""``geosal view``: the saliency layers of finished and running scenes in a browser, offline.

A small web server (:mod:`geosal.viewer.server`) serves a page built on the
vendored OpenLayers and proj4js (``static/vendor``, see its ``VENDOR.md``) and
an HTTP API (:mod:`geosal.viewer.api`): tiles cut in each layer's own grid
and CRS from the COGs and the Zarr store, point values, legends, block
progress. It imports ``geosal.raster`` but never torch, so it starts fast.

- :class:`Catalog` — the scenes under the given paths (scene folders, archives, runs in progress);
- :class:`ViewerServer`, :func:`serving` — the server, in the foreground or a background thread;
- :class:`ViewerError` — a path with no output, a port in use (one line; the CLI exits 2).
"""

from geosal.viewer.catalog import Catalog
from geosal.viewer.errors import BadRequest, NotFound, ViewerError
from geosal.viewer.server import ViewerServer, serving

__all__ = ["BadRequest", "Catalog", "NotFound", "ViewerError", "ViewerServer", "serving"]
