"""One scene's output folder as the viewer sees it: layers, statistics, progress, point values.

A :class:`SceneOutput` is opened from a folder holding ``saliency.zarr``
(finished, ``OUT/NAME/``, or still being written, ``OUT/.NAME.partial/``).
Everything is read from the output itself: each array's grid from the store's
``grids`` attribute (or the array's own grid mapping), each COG's from the
file; the layers of a finished scene are served from its COGs (with their
overviews) where they exist, everything else from the Zarr store. What
changes while a run writes (blocks done, statistics, chunks written) is read
again whenever the store's :meth:`~SceneOutput.version` changes.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyproj
import zarr
from affine import Affine
from scipy.special import erf

from geosal.raster.store import CAM, COMBINED, DONE, FAST_CAM, LOVI, PREVIEW, STATS, VALID, scale_array
from geosal.viewer.errors import NotFound, ViewerError
from geosal.viewer.grids import Grid
from geosal.viewer.sources import CogSource, ZarrSource

SCENE = "scene"
"""Layer id of the scene as the model saw it (the store's ``preview``)."""
STORE = "saliency.zarr"
QUICKLOOKS = ("quicklook.jpg", "quicklook.png")


@dataclass(frozen=True)
class ScaleInfo:
    """Scale ``index`` (1 = finest): its module, output stride and place in the statistics."""

    index: int
    module: str
    stride: int


@dataclass(frozen=True)
class Layer:
    """A layer the viewer serves.

    ``kind`` is ``"rgb"`` (the scene: 1 or 3 uint8 bands), ``"rgba"`` (LOVI,
    shown as stored) or ``"values"`` (one float band shown with a colormap over
    ``value_range``). ``scale`` is set for the raw scale maps, whose tiles can
    show the normalised value (``Phi((raw - mean) / std)``, in [0, 1]) or the raw statistic.
    """

    id: str
    title: str
    kind: str
    array: str
    source: ZarrSource | CogSource
    description: str
    value_range: tuple[float, float] | None = None
    scale: ScaleInfo | None = None


@dataclass(frozen=True)
class Statistics:
    """Scene-wide mean, standard deviation and valid-pixel count of each raw map (scales, then the CAM).

    ``provisional`` when computed from the blocks done so far (a run in progress).
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    count: tuple[int, ...]
    provisional: bool

    @classmethod
    def from_blocks(cls, stats: np.ndarray) -> Statistics:
        """Reduce per-block ``[n_blocks, n_maps, 3]`` (count, sum, sum of squares), as pass 2 does."""
        count, total, squares = np.asarray(stats, dtype=np.float64).sum(axis=0).T
        mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
        variance = np.divide(squares, count, out=np.zeros_like(total), where=count > 0) - mean**2
        std = np.sqrt(np.clip(variance, 0, None))
        return cls(tuple(map(float, mean)), tuple(map(float, std)), tuple(int(c) for c in count), True)


def normalise(raw: np.ndarray, mean: float, std: float) -> np.ndarray:
    """Normal-CDF squash ``Phi((raw - mean) / std)`` as pass 2 computes it (float32 in [0, 1], 0.5 where
    ``std`` is 0, NaN stays NaN)."""
    raw = np.asarray(raw, dtype=np.float32)
    if std <= 0:
        return np.where(np.isnan(raw), np.float32(np.nan), np.float32(0.5))
    z = (raw - np.float32(mean)) / np.float32(std * math.sqrt(2.0))
    return (np.float32(0.5) * (np.float32(1.0) + erf(z))).astype(np.float32)


@dataclass(frozen=True)
class Progress:
    """What is written now: pass-1 blocks done, pass-2 chunks written, and the statistics so far."""

    pass1: np.ndarray
    pass2: np.ndarray
    statistics: Statistics | None


class SceneOutput:
    """The output folder ``folder`` (``complete`` when it is the final, renamed one).

    Raises:
        ViewerError: the folder holds no readable geosal store.
    """

    def __init__(self, folder: Path, complete: bool):
        self.folder = folder
        self.complete = complete
        self.store = folder / STORE
        try:
            self.group = zarr.open_group(str(self.store), mode="r")
            self.attrs = dict(self.group.attrs)
        except Exception as error:  # noqa: BLE001 - any unreadable store is one line for the user
            raise ViewerError(f"{self.store}: not a readable geosal store ({type(error).__name__}: {error})") from None
        self.names = set(self.group.array_keys())
        if COMBINED not in self.names or "grids" not in self.attrs:
            raise ViewerError(f"{self.store}: not a geosal saliency store (no {COMBINED!r} array or 'grids' attribute)")
        self.crs = self._crs()
        self.layers = self._layers()
        self.grid = self.layers[COMBINED].source.grid
        """The combined map's grid as served (its COG's once complete): the scene's extent."""
        self.value_grid = self._grid(COMBINED)
        """The combined map's grid in the store, where point values are read."""
        self._lock = threading.Lock()
        self._progress: tuple[str, Progress] | None = None
        self.crs_description = self._crs_description()
        """The CRS for the page (see :meth:`_crs_description`), None without one."""
        self.footprint = self._footprint()
        """The outline in longitude / latitude (see :meth:`_footprint`)."""
        self.lonlat_grid = self._lonlat_grid()
        """Longitude / latitude over the scene for the cursor (see :meth:`_lonlat_grid`)."""

    # -- what the store holds -------------------------------------------------------------------------------------

    def _crs(self) -> pyproj.CRS | None:
        combined = self.group[COMBINED]
        mapping = combined.attrs.get("grid_mapping")
        wkt = self.group[mapping].attrs.get("crs_wkt") if mapping in self.names else None
        wkt = wkt or (combined.attrs.get("_CRS") or {}).get("wkt")
        return pyproj.CRS.from_wkt(wkt) if wkt else None

    def _grid(self, name: str) -> Grid:
        """The grid of array ``name``: its record in the ``grids`` attribute, else its grid mapping's GeoTransform."""
        shape = self.group[name].shape[-2:]
        for record in self.attrs["grids"].values():
            if name in record.get("arrays", ()):
                return Grid.from_gdal(record["shape"], record["transform"])
        mapping = self.group[name].attrs.get("grid_mapping")
        if mapping in self.names and "GeoTransform" in self.group[mapping].attrs:
            c, a, b, f, d, e = (float(v) for v in self.group[mapping].attrs["GeoTransform"].split())
            return Grid.from_gdal(shape, (a, b, c, d, e, f))
        raise ViewerError(f"{self.store}: no grid recorded for {name!r}")

    def _source(self, name: str) -> ZarrSource | CogSource | None:
        """The COG ``name.tif`` of a complete scene, else the store's array ``name``, else None."""
        cog = self.folder / f"{name}.tif"
        if self.complete and cog.is_file():
            return CogSource(cog)
        return ZarrSource(self.group[name], self._grid(name)) if name in self.names else None

    def _layers(self) -> dict[str, Layer]:
        layers: dict[str, Layer] = {}
        if PREVIEW in self.names:
            layers[SCENE] = Layer(SCENE, "Scene (the model's input)", "rgb", PREVIEW, self._source(PREVIEW),
                                  "The scene as the model saw it: its bands with the scene-wide scaling, "
                                  "averaged onto the preview grid.")
        statistic = str(self.attrs.get("statistic", "smoe_scale")).replace("_", " ")
        layers[COMBINED] = Layer(COMBINED, "Combined saliency", "values", COMBINED, self._source(COMBINED),
                                 f"Weighted mean of the normalised {statistic} maps of every scale (Eq. 3): "
                                 "0 least, 1 most salient.", (0.0, 1.0))
        lovi = self._source(LOVI)  # in the COG only, in current stores: there once the run completes
        if lovi is not None:
            layers[LOVI] = Layer(LOVI, "LOVI (all scales)", "rgba", LOVI, lovi,
                                 "Hue = which scale responds (its centre of mass over the scales), saturation = how "
                                 "much one scale dominates, value = the strongest normalised response.")
        for scale in self.scales:
            name = scale_array(scale.index)
            layers[name] = Layer(name, f"Scale {scale.index} · stride {scale.stride} · {scale.module}", "values", name,
                                 self._source(name),
                                 f"The {statistic} of {scale.module} at its own resolution (stride {scale.stride}): "
                                 "normalised with the scene's mean and standard deviation (normal CDF, as in the "
                                 "combined map), or raw.", (0.0, 1.0), scale)
        if FAST_CAM in self.names:
            layers[FAST_CAM] = Layer(FAST_CAM, f"Fast-CAM ({self.fast_cam_class})", "values", FAST_CAM,
                                     self._source(FAST_CAM),
                                     f"The combined map times the Grad-CAM map of class {self.fast_cam_class}.", (0.0, 1.0))
        return layers

    @property
    def quicklook(self) -> Path | None:
        """The quicklook image a completed run wrote (``quicklook.jpg``, or ``quicklook.png`` before), if any."""
        for name in QUICKLOOKS:
            if (self.folder / name).is_file():
                return self.folder / name
        return None

    @property
    def scales(self) -> list[ScaleInfo]:
        """The scales the store holds, finest first."""
        strides, modules = self.attrs.get("strides", []), self.attrs.get("layers", [])
        found = []
        for index in range(1, len(strides) + 1):
            if scale_array(index) in self.names:
                module = modules[index - 1] if index - 1 < len(modules) else f"scale {index}"
                found.append(ScaleInfo(index, str(module), int(strides[index - 1])))
        return found

    @property
    def fast_cam_class(self) -> str | None:
        """The class of the Fast-CAM map, by name when the model names its classes."""
        index = self.attrs.get("fast_cam_class")
        if index is None:
            return None
        classes = (self.attrs.get("model") or {}).get("classes") or []
        return str(classes[index]) if isinstance(index, int) and 0 <= index < len(classes) else str(index)

    # -- what changes while a run writes ------------------------------------------------------------------------

    def version(self) -> str:
        """A short token that changes whenever anything in the output changes (chunks written, blocks done,
        metadata, COGs): the modification times of the store's array folders and of the COGs."""
        stamps = []
        try:
            with os.scandir(self.store) as entries:
                stamps += [f"{entry.name}:{entry.stat().st_mtime_ns}" for entry in entries]
            for name in sorted(self.layers):
                cog = self.folder / f"{name}.tif"
                if self.complete and cog.is_file():
                    stamps.append(f"{cog.name}:{cog.stat().st_mtime_ns}")
        except FileNotFoundError:  # renamed or replaced under us: the catalog opens it afresh on the next request
            stamps.append("moved")
        stamps.sort()
        return hashlib.blake2s("|".join([str(self.folder), *stamps]).encode(), digest_size=6).hexdigest()

    def progress(self) -> Progress:
        """Blocks done in pass 1, chunks written in pass 2 (per block, row-major) and the statistics so far."""
        version = self.version()
        with self._lock:
            if self._progress and self._progress[0] == version:
                return self._progress[1]
        n_blocks = self.group[DONE].shape[0] if DONE in self.names else 0
        if self.complete:
            pass1 = pass2 = np.ones(n_blocks, dtype=bool)
        else:
            pass1 = np.asarray(self.group[DONE][:]) == 1 if n_blocks else np.zeros(0, dtype=bool)
            pass2 = self._chunks_written(COMBINED, n_blocks)
        recorded = self.attrs.get("scene_statistics")
        if self.complete and recorded:
            statistics = Statistics(tuple(recorded["mean"]), tuple(recorded["std"]), tuple(recorded["count"]), False)
        elif STATS in self.names and pass1.any():
            statistics = Statistics.from_blocks(np.asarray(self.group[STATS][:])[pass1])
        else:
            statistics = None
        progress = Progress(pass1, pass2, statistics)
        with self._lock:
            self._progress = (version, progress)
        return progress

    def _chunks_written(self, name: str, n_blocks: int) -> np.ndarray:
        """Per block (row-major, one chunk of 2-D ``name`` each): whether its chunk file exists (Zarr v2 keys)."""
        array = self.group[name]
        rows, cols = (math.ceil(s / c) for s, c in zip(array.shape, array.chunks))
        if array.ndim != 2 or rows * cols != n_blocks:
            return np.zeros(n_blocks, dtype=bool)
        folder = self.store / name
        separator = json.loads((folder / ".zarray").read_text()).get("dimension_separator", ".")
        keys = [f"{i // cols}{separator}{i % cols}" for i in range(n_blocks)]
        if separator == ".":
            present = set(os.listdir(folder))
            return np.array([key in present for key in keys], dtype=bool)
        return np.array([(folder / key).exists() for key in keys], dtype=bool)

    # -- geometry ------------------------------------------------------------------------------------------------

    @property
    def working_transform(self) -> tuple[Affine, int, int]:
        """Transform, rows and columns of the working grid that the blocks tile (from the store's attributes)."""
        working = self.attrs.get("working_grid") or {}
        height, width = int(working.get("height", self.value_grid.height)), int(working.get("width", self.value_grid.width))
        for record in self.attrs["grids"].values():
            if list(record["shape"]) == [height, width]:
                return Affine(*record["transform"][:6]), height, width
        first = self.scales[0]  # every scale grid is the working grid downsampled by its stride
        grid = self._grid(scale_array(first.index))
        return grid.transform @ Affine.scale(1 / first.stride), height, width

    def block_boxes(self) -> list[tuple[float, float, float, float]]:
        """Each block's ``(min_x, min_y, max_x, max_y)`` in CRS units, row-major (as the pipeline numbers them)."""
        block = int(self.attrs.get("block", 0))
        n_blocks = self.group[DONE].shape[0] if DONE in self.names else 0
        if not block or not n_blocks:
            return []
        transform, height, width = self.working_transform
        cols = math.ceil(width / block)
        boxes = []
        for index in range(n_blocks):
            row, col = (index // cols) * block, (index % cols) * block
            x0, y0 = transform @ (col, row)
            x1, y1 = transform @ (min(col + block, width), min(row + block, height))
            boxes.append((min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
        return boxes

    def lonlat(self, x: float, y: float) -> tuple[float, float] | None:
        """Longitude and latitude (degrees, WGS 84) of map coordinates ``(x, y)``; None without a CRS."""
        if self.crs is None:
            return None
        lon, lat = _to_lonlat(self.crs).transform(x, y)
        return (float(lon), float(lat)) if math.isfinite(lon) and math.isfinite(lat) else None

    def _footprint(self, points_per_side: int = 16) -> list[list[float]] | None:
        """The scene's outline as a closed ring of ``[lon, lat]`` (densified edges); None without a CRS."""
        if self.crs is None:
            return None
        x0, y0, x1, y1 = self.grid.bounds
        t = np.linspace(0.0, 1.0, points_per_side, endpoint=False)
        xs = np.concatenate([x0 + (x1 - x0) * t, np.full_like(t, x1), x1 - (x1 - x0) * t, np.full_like(t, x0)])
        ys = np.concatenate([np.full_like(t, y1), y1 - (y1 - y0) * t, np.full_like(t, y0), y0 + (y1 - y0) * t])
        lon, lat = _to_lonlat(self.crs).transform(xs, ys)
        ring = [[float(a), float(b)] for a, b in zip(lon, lat) if math.isfinite(a) and math.isfinite(b)]
        return ring + ring[:1] if ring else None

    def _lonlat_grid(self, points: int = 9) -> dict | None:
        """Longitude / latitude on a ``points x points`` grid over the scene (the page interpolates the cursor's in it).

        ``x`` and ``y`` (CRS units, ``y`` from north to south) and ``lon[i][j]``,
        ``lat[i][j]`` at ``(x[j], y[i])``, computed by PROJ; None without a CRS.
        """
        if self.crs is None:
            return None
        x0, y0, x1, y1 = self.grid.bounds
        xs, ys = np.linspace(x0, x1, points), np.linspace(y1, y0, points)
        lon, lat = _to_lonlat(self.crs).transform(*np.meshgrid(xs, ys))
        if not (np.isfinite(lon).all() and np.isfinite(lat).all()):
            return None
        return {"x": xs.tolist(), "y": ys.tolist(), "lon": lon.tolist(), "lat": lat.tolist()}

    def _crs_description(self) -> dict | None:
        """The CRS for the page: an OpenLayers code, name, units, a proj4 definition for proj4js, and the WKT."""
        if self.crs is None:
            return None
        epsg = self.crs.to_epsg()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pyproj warns that PROJ strings may lose information; enough to draw
            proj4 = self.crs.to_proj4().replace(" +type=crs", "")
        units = "degrees" if self.crs.is_geographic else (self.crs.axis_info[0].unit_name if self.crs.axis_info else "m")
        return {
            "code": f"EPSG:{epsg}" if epsg else f"GEOSAL:{hashlib.blake2s(self.crs.to_wkt().encode(), digest_size=6).hexdigest()}",
            "name": self.crs.name,
            "epsg": epsg,
            "units": units,
            "geographic": self.crs.is_geographic,
            "proj4": proj4,
            "wkt": self.crs.to_wkt(),
        }

    # -- values at a point ---------------------------------------------------------------------------------------

    def point(self, x: float, y: float) -> dict:
        """Every layer's value at map coordinates ``(x, y)``, read from the Zarr store (null for nodata or unwritten).

        Raises:
            NotFound: the point lies outside the scene's grid.
        """
        pixel = self.value_grid.pixel(x, y)
        if pixel is None:
            x0, y0, x1, y1 = self.value_grid.bounds
            raise NotFound(f"point ({x:.10g}, {y:.10g}) is outside the scene (x {x0:.10g} to {x1:.10g}, y {y0:.10g} to {y1:.10g})")
        statistics = self.progress().statistics
        values: dict[str, object] = {}
        for name in (COMBINED, FAST_CAM):
            if name in self.names:
                values[name] = _json_float(self._value(name, x, y))
        if CAM in self.names:  # the raw Grad-CAM map of Fast-CAM's class, normalised with the statistics after the scales'
            cam = self._value(CAM, x, y)
            k = len(self.scales)
            values[CAM] = _json_float(cam)
            values[f"{CAM}_normalised"] = None if cam is None or statistics is None or k >= len(statistics.mean) else \
                _json_float(float(normalise(np.float32(cam), statistics.mean[k], statistics.std[k])))
        if VALID in self.names:
            valid = self._value(VALID, x, y)
            values[VALID] = None if valid is None else bool(valid)
        if LOVI in self.layers:
            source = self.layers[LOVI].source
            at = source.grid.pixel(x, y)
            values[LOVI] = None if at is None else [int(v) for v in source.read(*at, 1, 1)[:, 0, 0]]
        if PREVIEW in self.names:
            values[SCENE] = self._values(PREVIEW, x, y)
        scales = []
        for k, scale in enumerate(self.scales):
            name = scale_array(scale.index)
            at = self._grid(name).pixel(x, y)
            raw = self._value(name, x, y)
            normalised = None
            if raw is not None and statistics is not None and k < len(statistics.mean):
                normalised = float(normalise(np.float32(raw), statistics.mean[k], statistics.std[k]))
            scales.append({"name": name, "index": scale.index, "module": scale.module, "stride": scale.stride,
                           "row": at[0] if at else None, "col": at[1] if at else None,
                           "raw": _json_float(raw), "normalised": _json_float(normalised)})
        lonlat = self.lonlat(x, y)
        return {
            "x": x, "y": y, "row": pixel[0], "col": pixel[1],
            "lon": lonlat[0] if lonlat else None, "lat": lonlat[1] if lonlat else None,
            "values": values, "scales": scales,
            "statistics": None if statistics is None else {"provisional": statistics.provisional},
        }

    def _value(self, name: str, x: float, y: float) -> float | None:
        at = self._grid(name).pixel(x, y)
        if at is None:
            return None
        value = float(ZarrSource(self.group[name], self._grid(name)).value(*at)[0])
        return value if math.isfinite(value) else None

    def _values(self, name: str, x: float, y: float) -> list[int] | None:
        at = self._grid(name).pixel(x, y)
        if at is None:
            return None
        return [int(v) for v in ZarrSource(self.group[name], self._grid(name)).value(*at)]


def _json_float(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


_local = threading.local()


def _to_lonlat(crs: pyproj.CRS) -> pyproj.Transformer:
    """This thread's transformer from ``crs`` to longitude / latitude (transformers are not thread-safe)."""
    cache = getattr(_local, "transformers", None)
    if cache is None:
        cache = _local.transformers = {}
    key = crs.to_wkt()
    if key not in cache:
        cache[key] = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    return cache[key]
