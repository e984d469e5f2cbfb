"""Pixel grids and the tile pyramid cut on each one, in the grid's own CRS.

A layer's tiles are aligned with its own pixels: at the finest level ``z =
levels - 1`` a tile is 256 x 256 pixels of the grid, starting at its top-left
corner; each coarser level halves the resolution (a tile then covers
``256 * factor`` pixels per side, ``factor = 2 ** (levels - 1 - z)``) down to
level 0, one tile holding the whole grid. This is the tile grid OpenLayers is
given (origin, resolutions and a tile size of ``[256, 256 * |e| / a]`` map
units per resolution, so pixels that are not square in CRS units, as in
EPSG:4326, stay pixel-aligned), so a tile never resamples across pixel
boundaries and every scale map keeps its own resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from affine import Affine

from geosal.viewer.errors import NotFound, ViewerError

TILE = 256
"""Side of a tile in pixels of its level."""


@dataclass(frozen=True)
class Grid:
    """A north-up grid of ``height x width`` pixels with the GDAL-order ``transform``."""

    height: int
    width: int
    transform: Affine

    @classmethod
    def from_gdal(cls, shape: tuple[int, int] | list[int], coefficients: tuple[float, ...] | list[float]) -> Grid:
        """The grid of ``shape`` ``(rows, cols)`` with the six GDAL-order coefficients ``(a, b, c, d, e, f)``.

        Raises:
            ViewerError: the transform is rotated or not north-up (x growing east, y north).
        """
        transform = Affine(*[float(v) for v in list(coefficients)[:6]])
        if transform.b != 0 or transform.d != 0 or transform.a <= 0 or transform.e >= 0:
            raise ViewerError(f"grid transform {tuple(coefficients)[:6]} is rotated or not north-up; the viewer needs north-up grids")
        return cls(int(shape[0]), int(shape[1]), transform)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(min_x, min_y, max_x, max_y)`` of the grid's outer pixel edges, in CRS units."""
        t = self.transform
        return t.c, t.f + self.height * t.e, t.c + self.width * t.a, t.f

    @property
    def levels(self) -> int:
        """Tile levels: the smallest count whose coarsest level holds the whole grid in one tile (>= 1)."""
        return max(1, math.ceil(math.log2(max(self.height, self.width, 1) / TILE)) + 1)

    def factor(self, z: int) -> int:
        """Grid pixels per tile pixel at level ``z`` (1 at the finest level)."""
        return 2 ** (self.levels - 1 - z)

    def tiles(self, z: int) -> tuple[int, int]:
        """Tile rows and columns at level ``z``."""
        span = TILE * self.factor(z)
        return math.ceil(self.height / span), math.ceil(self.width / span)

    def tile_window(self, z: int, x: int, y: int) -> tuple[int, int, int]:
        """``(row, col, factor)``: the grid pixel at the top-left of tile ``(z, x, y)`` and its factor.

        The tile covers rows ``row ... row + 256 * factor - 1`` (and columns
        likewise), clipped to the grid; column ``x`` counts from the west, row
        ``y`` from the north.

        Raises:
            NotFound: no such level or the tile lies outside the grid.
        """
        if not 0 <= z < self.levels:
            raise NotFound(f"no tile level {z}: this layer has levels 0 to {self.levels - 1}")
        rows, cols = self.tiles(z)
        if not (0 <= x < cols and 0 <= y < rows):
            raise NotFound(f"tile {z}/{x}/{y} is outside the layer (level {z} has {cols} x {rows} tiles)")
        factor = self.factor(z)
        return y * TILE * factor, x * TILE * factor, factor

    def pixel(self, x: float, y: float) -> tuple[int, int] | None:
        """``(row, col)`` of the pixel containing map coordinates ``(x, y)``, or None outside the grid."""
        col, row = ~self.transform @ (x, y)
        row, col = math.floor(row), math.floor(col)
        if 0 <= row < self.height and 0 <= col < self.width:
            return row, col
        return None

    def tile_matrix(self) -> dict:
        """The tile pyramid as OpenLayers' ``TileGrid`` takes it (JSON-serialisable).

        ``origin`` is the top-left corner, ``resolutions`` the CRS units per
        tile pixel in x for levels 0 (coarsest) to ``levels - 1``,
        ``tile_size`` ``[256, 256 * |e| / a]`` (the tile's height in units of
        the x resolution), ``extent`` the grid's bounds.
        """
        t = self.transform
        return {
            "origin": [t.c, t.f],
            "resolutions": [t.a * self.factor(z) for z in range(self.levels)],
            "tile_size": [TILE, TILE * abs(t.e) / t.a],
            "extent": list(self.bounds),
            "levels": self.levels,
        }

    def to_dict(self) -> dict:
        """Shape ``[rows, cols]`` and the six GDAL-order transform coefficients."""
        return {"shape": [self.height, self.width], "transform": list(self.transform[:6])}
