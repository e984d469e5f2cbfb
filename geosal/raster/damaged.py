"""Reading a source whose pixel data is damaged: name the internal blocks that cannot be read, or read around them.

A truncated file or a corrupt compressed block makes GDAL fail every read that
touches the block. :func:`read_window_checked` reads like
:func:`~geosal.raster.source.read_window`; when that fails it decodes the
source's internal blocks under the window one by one to find the unreadable
ones, and then either raises :class:`UnreadableBlockError` naming them, or
(``skip_bad_blocks``) reads the window again from an in-memory copy of the
readable blocks, with the unreadable ones as nodata. The copy covers the
window plus a margin wider than any resampling kernel, so every working pixel
away from an unreadable block gets exactly the value a clean read gives.
:func:`scaling_checked` does the same for the scene's scaling sample.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.io import DatasetReader, MemoryFile
from rasterio.windows import Window

from geosal.raster.errors import RasterInputError
from geosal.raster.scaling import MAX_SAMPLE_PIXELS, BandScaling, compute_scaling, compute_scaling_from, sample_blocks
from geosal.raster.source import SceneInfo, WorkingGrid, read_window, source_window_of


@dataclass(frozen=True)
class SourceBlock:
    """One internal block of the source: its index (``row``, ``col``) and its pixels (``x``, ``y``, ``width``, ``height``)."""

    row: int
    col: int
    x: int
    y: int
    width: int
    height: int

    def describe(self) -> str:
        """``source block (row 2, col 3) at x 768-1023, y 512-767``."""
        return (f"source block (row {self.row}, col {self.col}) at x {self.x}-{self.x + self.width - 1}, "
                f"y {self.y}-{self.y + self.height - 1}")

    def as_dict(self) -> dict[str, int]:
        """The block as plain data (for JSON, STAC and the archive summary)."""
        return asdict(self)


class UnreadableBlockError(RasterInputError):
    """Internal blocks of the source cannot be decoded (one line naming the first of them)."""


def read_window_checked(
    dataset: DatasetReader, info: SceneInfo, grid: WorkingGrid, row_off: int, col_off: int, height: int, width: int,
    skip_bad_blocks: bool = False,
) -> tuple[np.ndarray, np.ndarray, tuple[SourceBlock, ...]]:
    """:func:`~geosal.raster.source.read_window`, plus the unreadable source blocks under the window.

    Returns:
        ``data`` and ``valid`` as ``read_window`` returns them (pixels of unreadable blocks are 0 and invalid),
        and the unreadable blocks (empty when the read succeeded).

    Raises:
        UnreadableBlockError: blocks cannot be read and ``skip_bad_blocks`` is off.
        RasterInputError: the read fails although every block decodes on its own.
    """
    try:
        return (*read_window(dataset, info, grid, row_off, col_off, height, width), ())
    except RasterioIOError as error:
        failure = _gdal_message(error)
    window = source_window_of(info, grid, row_off, col_off, height, width)
    margin = 2 * math.ceil(max(grid.scale_x, grid.scale_y)) + 2
    area = _expanded(window, margin, info)
    bad = unreadable_blocks(dataset, info, area)
    if not bad:
        raise RasterInputError(f"{info.path}: pixels at x {int(window.col_off)}, y {int(window.row_off)} cannot be read "
                               f"({failure})")
    if not skip_bad_blocks:
        raise _unreadable(info, bad, failure)
    with _patched_copy(dataset, info, area, bad) as copy:
        data, valid = read_window(copy, info, grid, row_off, col_off, height, width)
    return data, valid, tuple(bad)


def scaling_checked(dataset: DatasetReader, info: SceneInfo, low_percentile: float = 2.0, high_percentile: float = 98.0,
                    skip_bad_blocks: bool = False) -> BandScaling:
    """:func:`~geosal.raster.scaling.compute_scaling`, with the unreadable blocks of its sample named, or (with
    ``skip_bad_blocks``) left out of it.

    Raises:
        UnreadableBlockError: blocks of the sample cannot be read and ``skip_bad_blocks`` is off.
        RasterInputError: the sample cannot be read although each of its blocks decodes, or has no valid pixel.
    """
    try:
        return compute_scaling(dataset, info, low_percentile, high_percentile)
    except RasterioIOError as error:
        failure = _gdal_message(error)
    if info.width * info.height <= MAX_SAMPLE_PIXELS:  # the sample is the whole raster
        candidates = _blocks(dataset, info, Window(0, 0, info.width, info.height))
    else:
        block_height, block_width = dataset.block_shapes[info.bands[0] - 1]
        windows, _ = sample_blocks(dataset, info.bands[0], MAX_SAMPLE_PIXELS)
        candidates = [SourceBlock(int(w.row_off) // block_height, int(w.col_off) // block_width, int(w.col_off),
                                  int(w.row_off), int(w.width), int(w.height)) for w in windows]
    bad = [block for block in candidates if not _readable(dataset, info, block)]
    if not bad:
        raise RasterInputError(f"{info.path}: pixel data cannot be read ({failure})")
    if not skip_bad_blocks:
        raise _unreadable(info, bad, failure)
    good = [Window(b.x, b.y, b.width, b.height) for b in candidates if b not in bad]
    return compute_scaling_from(dataset, info, good, low_percentile, high_percentile,
                                sample=f"readable blocks {len(good)}/{len(candidates)}")


def _unreadable(info: SceneInfo, bad: list[SourceBlock], failure: str) -> UnreadableBlockError:
    more = f" (and {len(bad) - 1} more block(s) near it)" if len(bad) > 1 else ""
    return UnreadableBlockError(f"{info.path}: {bad[0].describe()} cannot be read{more} ({failure}); rerun with "
                                "--skip-bad-blocks to write it as nodata (with --resume, the blocks done are kept)")


def _readable(dataset: DatasetReader, info: SceneInfo, block: SourceBlock) -> bool:
    """Whether the selected bands and the mask of ``block`` decode."""
    window = Window(block.x, block.y, block.width, block.height)
    try:
        dataset.read(list(info.bands), window=window)
        dataset.dataset_mask(window=window)
    except RasterioIOError:
        return False
    return True


def unreadable_blocks(dataset: DatasetReader, info: SceneInfo, area: Window) -> list[SourceBlock]:
    """The internal blocks (of the first selected band's layout) meeting the integer window ``area`` whose
    selected bands or mask cannot be decoded, row-major."""
    return [block for block in _blocks(dataset, info, area) if not _readable(dataset, info, block)]


def _blocks(dataset: DatasetReader, info: SceneInfo, area: Window) -> list[SourceBlock]:
    block_height, block_width = dataset.block_shapes[info.bands[0] - 1]
    rows = range(int(area.row_off) // block_height, -(-int(area.row_off + area.height) // block_height))
    cols = range(int(area.col_off) // block_width, -(-int(area.col_off + area.width) // block_width))
    blocks = []
    for row in rows:
        for col in cols:
            x, y = col * block_width, row * block_height
            blocks.append(SourceBlock(row, col, x, y, min(block_width, info.width - x), min(block_height, info.height - y)))
    return blocks


def _expanded(window: Window, margin: int, info: SceneInfo) -> Window:
    """``window`` grown by ``margin`` pixels on every side to whole pixels, clipped to the raster."""
    left = max(0, math.floor(window.col_off) - margin)
    top = max(0, math.floor(window.row_off) - margin)
    right = min(info.width, math.ceil(window.col_off + window.width) + margin)
    bottom = min(info.height, math.ceil(window.row_off + window.height) + margin)
    return Window(left, top, right - left, bottom - top)


class _PatchedSource:
    """The two reads :func:`read_window` makes, served by in-memory copies of the pixels of ``area``."""

    def __init__(self, pixels: DatasetReader, mask: DatasetReader, area: Window):
        self.pixels, self.mask, self.area = pixels, mask, area

    def _shifted(self, window: Window) -> Window:
        return Window(window.col_off - self.area.col_off, window.row_off - self.area.row_off, window.width, window.height)

    def read(self, bands, window: Window, out_shape, resampling: Resampling) -> np.ndarray:
        return self.pixels.read(list(range(1, len(bands) + 1)), window=self._shifted(window), out_shape=out_shape,
                                resampling=resampling)

    def dataset_mask(self, window: Window, out_shape, resampling: Resampling) -> np.ndarray:
        return self.mask.read(1, window=self._shifted(window), out_shape=out_shape, resampling=resampling)


@contextlib.contextmanager
def _patched_copy(dataset: DatasetReader, info: SceneInfo, area: Window, bad: list[SourceBlock]) -> Iterator[_PatchedSource]:
    """A :class:`_PatchedSource` over ``area``: the readable blocks' pixels and mask, the ``bad`` blocks zero and masked."""
    height, width = int(area.height), int(area.width)
    pixels = np.zeros((len(info.bands), height, width), info.dtype)
    mask = np.zeros((1, height, width), np.uint8)
    for block in _blocks(dataset, info, area):
        if block in bad:
            continue
        left, top = max(block.x, int(area.col_off)), max(block.y, int(area.row_off))
        right = min(block.x + block.width, int(area.col_off + area.width))
        bottom = min(block.y + block.height, int(area.row_off + area.height))
        window = Window(left, top, right - left, bottom - top)
        rows = slice(top - int(area.row_off), bottom - int(area.row_off))
        cols = slice(left - int(area.col_off), right - int(area.col_off))
        pixels[:, rows, cols] = dataset.read(list(info.bands), window=window)
        mask[0, rows, cols] = dataset.dataset_mask(window=window)
    with contextlib.ExitStack() as stack:
        stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # the copies need no georeference: windows are shifted
        copies = []
        for array in (pixels, mask):
            memory = stack.enter_context(MemoryFile())
            with memory.open(driver="GTiff", width=width, height=height, count=len(array), dtype=array.dtype) as copy:
                copy.write(array)
            copies.append(stack.enter_context(memory.open()))
        yield _PatchedSource(*copies, area)


def _gdal_message(error: RasterioIOError) -> str:
    """GDAL's own words for a failed read (rasterio keeps them in the chained exception)."""
    cause = error.__cause__ or error.__context__
    text = str(cause.args[-1]) if cause is not None and cause.args else str(error)
    return (text.strip().splitlines() or ["read failed"])[0]
