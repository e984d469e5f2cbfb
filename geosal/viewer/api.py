"""What the viewer's HTTP API answers, as plain data and bytes (the server only routes).

Every method may block on disk reads (the server runs them in a thread pool)
and raises :class:`~geosal.viewer.errors.NotFound` or
:class:`~geosal.viewer.errors.BadRequest` for requests it cannot answer.
"""

from __future__ import annotations

import math
import time
from urllib.parse import quote

import geosal
from geosal.raster.colormaps import COLORMAPS, DEFAULT_COLORMAP
from geosal.raster.store import LOVI
from geosal.viewer.catalog import Catalog, SceneEntry
from geosal.viewer.errors import BadRequest, NotFound, ViewerError
from geosal.viewer.render import colorbar, lovi_legend, npy, png, tile_data, tile_rgba
from geosal.viewer.scene import Layer, SceneOutput, Statistics

RAW_RANGE_STDS = 2.0
"""A raw scale map is shown from its mean minus to its mean plus this many standard deviations by default."""


def parse_float(name: str, text: str | None, default: float | None = None) -> float:
    """The finite number ``text`` (query parameter ``name``), or ``default`` when absent.

    Raises:
        BadRequest: missing without a default, not a number, or not finite.
    """
    if text is None or text == "":
        if default is None:
            raise BadRequest(f"parameter {name} is required")
        return default
    try:
        value = float(text)
    except ValueError:
        raise BadRequest(f"parameter {name} must be a number, not {text!r}") from None
    if not math.isfinite(value):
        raise BadRequest(f"parameter {name} must be finite, not {text!r}")
    return value


class ViewerApi:
    """The answers of the API over ``catalog``; ``dashboard`` is a Dask dashboard URL to link to (or None)."""

    def __init__(self, catalog: Catalog, dashboard: str | None = None, refresh_seconds: float = 2.0):
        self.catalog = catalog
        self.dashboard = dashboard
        self.refresh_seconds = refresh_seconds

    def info(self) -> dict:
        """``GET /api/info``: version, colormaps, whether the page starts with the scene list, refresh period, dashboard."""
        return {"geosal_version": geosal.__version__, "colormaps": list(COLORMAPS), "default_colormap": DEFAULT_COLORMAP,
                "archive": self.catalog.is_archive, "refresh_seconds": self.refresh_seconds, "dashboard": self.dashboard}

    def scenes(self) -> list[dict]:
        """``GET /api/scenes``: every scene (see :meth:`scene`)."""
        return [self._describe(entry) for entry in self.catalog.entries()]

    def scene(self, scene_id: str) -> dict:
        """``GET /api/scenes/{id}``: id, name, status (``complete``, ``running``, ``failed`` or ``pending``), CRS, bounds
        (scene CRS) and lon/lat footprint, layers with their tile pyramids, progress, statistics and run details."""
        return self._describe(self.catalog.entry(scene_id))

    def _output(self, scene_id: str) -> tuple[SceneEntry, SceneOutput]:
        entry = self.catalog.entry(scene_id)
        output = self.catalog.output(entry)
        if output is None:
            raise NotFound(f"scene {scene_id!r} has no output yet")
        return entry, output

    def _describe(self, entry: SceneEntry) -> dict:
        record = {"id": entry.id, "name": entry.name, "source": entry.source, "error": None, "stage": None,
                  "crs": None, "bounds": None, "footprint": None, "lonlat_grid": None, "layers": [], "progress": None, "statistics": None,
                  "quicklook": None, "version": None, "idle_seconds": None}
        if entry.failure:
            record.update(status="failed", **entry.failure)
        try:
            output = self.catalog.output(entry)
        except ViewerError as error:
            return record | {"status": "failed", "error": str(error), "stage": "viewer"}
        if output is None:
            return record | {"status": record.get("status", "pending")}
        version = output.version()
        progress = output.progress()
        attrs = output.attrs
        record.update(
            status="failed" if entry.failure else "complete" if output.complete else "running",
            source=entry.source or attrs.get("source"),
            crs=output.crs_description,
            bounds=list(output.grid.bounds),
            footprint=output.footprint,
            lonlat_grid=output.lonlat_grid,
            layers=[self._layer(entry.id, layer, version, progress.statistics, len(output.scales)) for layer in output.layers.values()],
            version=version,
            progress={"blocks": int(progress.pass1.size), "pass1_done": int(progress.pass1.sum()),
                      "pass2_done": int(progress.pass2.sum())},
            statistics=None if progress.statistics is None else {
                "mean": list(progress.statistics.mean), "std": list(progress.statistics.std),
                "count": list(progress.statistics.count), "provisional": progress.statistics.provisional},
            quicklook=f"/api/scenes/{quote(entry.id)}/quicklook" if output.quicklook else None,
            idle_seconds=max(0.0, time.time() - _newest_write(output)),
            run={key: attrs.get(key) for key in ("statistic", "weights", "tile", "halo", "block", "notes", "completed",
                                                 "geosal_version")} | {"model": _model_summary(attrs.get("model"))},
            dashboard=attrs.get("dashboard") or self.dashboard,
        )
        return record

    @staticmethod
    def _layer(scene_id: str, layer: Layer, version: str, statistics: Statistics | None, n_scales: int) -> dict:
        grid = layer.source.grid
        base = f"/api/scenes/{quote(scene_id)}"
        described = {
            "id": layer.id, "title": layer.title, "kind": layer.kind, "description": layer.description,
            "origin": layer.source.origin, "array": layer.array, "grid": grid.to_dict(),
            "tiles": grid.tile_matrix() | {"url": f"{base}/tiles/{quote(layer.id)}/{{z}}/{{x}}/{{y}}.png?v={version}"},
            "range": list(layer.value_range) if layer.value_range else None,
            "colormap": DEFAULT_COLORMAP if layer.kind == "values" else None,
            "legend": (f"/api/legends/lovi.png?scales={n_scales}" if layer.id == LOVI
                       else f"/api/legends/{DEFAULT_COLORMAP}.png" if layer.kind == "values" else None),
            "scale": None,
        }
        if layer.scale is not None:
            k = layer.scale.index - 1
            known = statistics is not None and k < len(statistics.mean)
            mean, std = (statistics.mean[k], statistics.std[k]) if known else (None, None)
            raw_range = [mean - RAW_RANGE_STDS * std, mean + RAW_RANGE_STDS * std] if known and std > 0 else None
            described["scale"] = {"index": layer.scale.index, "module": layer.scale.module, "stride": layer.scale.stride,
                                  "mean": mean, "std": std, "raw_range": raw_range}
        return described

    def point(self, scene_id: str, x: str | None, y: str | None) -> dict:
        """``GET /api/scenes/{id}/point?x=..&y=..``: every layer's value at ``(x, y)`` (scene CRS), null for nodata."""
        _, output = self._output(scene_id)
        return {"scene": scene_id} | output.point(parse_float("x", x), parse_float("y", y))

    def tile(self, scene_id: str, layer_id: str, z: int, x: int, y: int, fmt: str, query: dict[str, str]) -> tuple[bytes, bool]:
        """``GET /api/scenes/{id}/tiles/{layer}/{z}/{x}/{y}.png|.npy``: the tile, and whether it is of the current version.

        Query: ``colormap``, ``min``, ``max`` (values layers, PNG), ``values=normalised|raw``
        (scale layers), ``v`` (the scene's version the page last saw). ``.npy``
        holds the tile's values (float32 ``[bands, 256, 256]`` with NaN for
        nodata and outside the grid, or the stored bytes of RGB(A) layers).
        """
        _, output = self._output(scene_id)
        layer = output.layers.get(layer_id)
        if layer is None:
            raise NotFound(f"scene {scene_id!r} has no layer {layer_id!r} (it has {', '.join(output.layers)})")
        row, col, factor = layer.source.grid.tile_window(z, x, y)
        values = query.get("values") or "normalised"
        statistics = output.progress().statistics if layer.scale is not None else None
        data, inside = tile_data(layer, row, col, factor, values, statistics)
        current = query.get("v") == output.version()
        if fmt == "npy":
            return npy(data), current
        low, high = layer.value_range or (0.0, 1.0)
        low, high = parse_float("min", query.get("min"), low), parse_float("max", query.get("max"), high)
        return png(tile_rgba(layer, data, inside, query.get("colormap") or DEFAULT_COLORMAP, low, high)), current

    def blocks(self, scene_id: str) -> dict:
        """``GET /api/scenes/{id}/blocks``: the pass-1 blocks as GeoJSON polygons in the scene's CRS, each with
        ``index``, ``pass1`` (done) and ``pass2`` (its chunk of the combined map written)."""
        _, output = self._output(scene_id)
        progress = output.progress()
        features = []
        for index, (x0, y0, x1, y1) in enumerate(output.block_boxes()):
            ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
            features.append({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
                             "properties": {"index": index, "pass1": bool(progress.pass1[index]),
                                            "pass2": bool(progress.pass2[index])}})
        return {"type": "FeatureCollection", "features": features}

    def quicklook(self, scene_id: str) -> tuple[bytes, str]:
        """``GET /api/scenes/{id}/quicklook``: the scene's quicklook image (written when a run completes) and its type."""
        _, output = self._output(scene_id)
        path = output.quicklook
        if path is None:
            raise NotFound(f"scene {scene_id!r} has no quicklook yet")
        return path.read_bytes(), "image/png" if path.suffix == ".png" else "image/jpeg"

    @staticmethod
    def legend(name: str, query: dict[str, str]) -> bytes:
        """``GET /api/legends/{colormap}.png`` (a colour bar, low values left) or ``/api/legends/lovi.png?scales=N``."""
        width = int(parse_float("width", query.get("width"), 256))
        height = int(parse_float("height", query.get("height"), 12 if name != "lovi" else 96))
        if not (1 <= width <= 2048 and 1 <= height <= 2048):
            raise BadRequest("width and height must be between 1 and 2048")
        if name == "lovi":
            return png(lovi_legend(int(parse_float("scales", query.get("scales"), 5)), width, height))
        return png(colorbar(name, width, height))


def _newest_write(output: SceneOutput) -> float:
    """Seconds since the epoch of the latest change in the store (its array folders' modification times)."""
    newest = 0.0
    try:
        paths = [output.store, *output.store.iterdir()]
    except OSError:
        return newest
    for path in paths:
        try:
            newest = max(newest, path.stat().st_mtime)
        except OSError:
            continue
    return newest


def _model_summary(model: dict | None) -> dict | None:
    if not isinstance(model, dict):
        return None
    return {key: model.get(key) for key in ("architecture", "weights", "num_classes", "gsd_m")}
