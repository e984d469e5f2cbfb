"""The COG overviews of the output layers, one level at a time, one task per overview tile.

Pass 2 leaves each layer's first overview level in the scratch pyramid
(:data:`~geosal.pipeline.pass2.PYRAMID`). The task for tile ``(row, col)`` of
overview ``level`` reads that tile's pixels from the pyramid, encodes the COG
tile into a fragment file and writes its own 2x downsample into the next level,
so each level is built from the one before by tasks that each touch one tile:
the work is spread over the cluster like the passes, and nothing of it grows
on the client. Tiles are numbered row-major over the level's tile grid.
"""

from __future__ import annotations

from geosal.pipeline.job import SceneJob
from geosal.pipeline.layout import cog_layouts, output_layers
from geosal.pipeline.pass2 import encode_block_tiles, pyramid_array, pyramid_path
from geosal.raster import read_region, write_region
from geosal.raster.cog_tiles import CogLayout, downsample
from geosal.raster.store import create_scratch


def overview_levels(job: SceneJob) -> int:
    """Number of levels of the output layers' COGs (level 0 and the overviews)."""
    return len(next(iter(cog_layouts(job.plan).values())).levels)


def overview_tiles(job: SceneJob, level: int) -> int:
    """Number of tiles of overview ``level`` (the tasks of that stage)."""
    rows, cols = next(iter(cog_layouts(job.plan).values())).tiles(level)
    return rows * cols


def pyramid_levels(layout: CogLayout) -> list[int]:
    """The levels the scratch pyramid holds: every overview, or level 0 itself when the layer is one tile
    (then there is no overview, and the quicklook still needs the pixels)."""
    return list(range(1, len(layout.levels))) or [0]


def create_pyramid(job: SceneJob) -> None:
    """Create (or empty) the scratch pyramid (:func:`pyramid_levels` of every output layer): the level the
    blocks write chunked like their pieces, deeper levels like the tiles' pieces."""
    plan = job.plan
    arrays = {}
    for name, layout in cog_layouts(plan).items():
        for level in pyramid_levels(layout):
            chunk = plan.block_output >> level if level <= 1 else layout.tile // 2
            arrays[pyramid_array(name, level)] = ((layout.bands, *layout.levels[level]), chunk, layout.dtype,
                                                  layout.fill_value)
    create_scratch(pyramid_path(job), arrays)


def build_overview_tile(job: SceneJob, index: int, level: int) -> None:
    """Encode tile ``index`` of overview ``level`` of every output layer, and downsample it into ``level + 1``."""
    layouts = cog_layouts(job.plan)
    for name in output_layers(job.plan):
        layout = layouts[name]
        _, cols = layout.tiles(level)
        tile_row, tile_col = divmod(index, cols)
        row, col, height, width = layout.tile_window(level, tile_row, tile_col)
        data = read_region(pyramid_path(job), pyramid_array(name, level), row, col, height, width)
        encode_block_tiles(job, name, layout, level, row, col, data)
        if level + 1 < len(layout.levels):
            write_region(pyramid_path(job), pyramid_array(name, level + 1), row // 2, col // 2, downsample(layout, data))
