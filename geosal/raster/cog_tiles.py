"""Cloud-Optimized GeoTIFFs assembled from tiles that were encoded elsewhere.

Workers encode the COG tiles of the pixels they computed (:func:`encode_tile`) and the overview tiles of their
block's own pyramid (:func:`downsample`, one level at a time: pieces aligned on even boundaries downsample
independently, so a block aligned on ``tile * 2**levels`` pixels owns whole tiles at every level). The client
then only writes the TIFF header and directories and concatenates the encoded tiles (:func:`write_cog`):
work proportional to the number of tiles plus a byte copy.

Pyramid (:class:`CogLayout`): level 0 is the full image; each overview halves the previous level with
``(n + 1) // 2`` (gdaladdo's rounding: every pixel keeps a place, the last row or column of an odd level has
a one-pixel footprint) until the whole level fits in one tile, the stop rule of GDAL's COG driver. That driver
itself halves with ``n // 2`` and resamples the odd remainder over fractional footprints, which would make
pyramids non-local; sizes therefore differ from its by one pixel on levels halved from odd sizes.

Byte layout, little-endian, classic TIFF (BigTIFF when the file could exceed 4 GiB). Given the same encoded
tiles, it is byte for byte the file GDAL's COG driver writes (the tests check this):

==========================  =====================================================================================
header                      ``II*\\0`` + uint32 offset of the first IFD (BigTIFF: ``II+\\0``, 8, 0, uint64)
ghost area                  ``GDAL_STRUCTURAL_METADATA_SIZE=000140 bytes\\n``, then the lines
                            ``LAYOUT=IFDS_BEFORE_DATA``, ``BLOCK_ORDER=ROW_MAJOR``, ``BLOCK_LEADER=SIZE_AS_UINT4``,
                            ``BLOCK_TRAILER=LAST_4_BYTES_REPEATED``, ``KNOWN_INCOMPATIBLE_EDITION=NO`` and one
                            space (room for ``YES``); padded to an even offset
IFDs                        level 0, then each overview, largest first; each followed by its values that do not
                            fit in an entry; each links to the next, the last to 0
tile arrays                 TileOffsets then TileByteCounts of each level in turn (a one-tile level's fit in
                            their entries)
tiles                       smallest overview first, level 0 last, row-major within a level; each tile preceded
                            by its size (uint32: the leader) and followed by its last 4 bytes (the trailer;
                            zero-padded on the right under 4 bytes), so readers can fetch a tile knowing only
                            its offset and check that the layout was not modified
==========================  =====================================================================================

Tags, ascending in each IFD (TIFF types in brackets):

- every level: NewSubfileType 254 [LONG] = 1 on overviews only; ImageWidth 256, ImageLength 257 [SHORT, or LONG
  from 65536]; BitsPerSample 258 [SHORT per band]; Compression 259 (8 = zlib stream, 50000 = zstd frame);
  PhotometricInterpretation 262 (1 MinIsBlack, 2 RGB); SamplesPerPixel 277; PlanarConfiguration 284 = 1
  (pixel-interleaved); Predictor 317 (1 none, 2 horizontal differencing, 3 floating point); TileWidth 322,
  TileLength 323; TileOffsets 324 [LONG; LONG8 in BigTIFF]; TileByteCounts 325 [LONG; in BigTIFF LONG8 for a
  one-tile level, as libtiff writes them]; ExtraSamples 338 [SHORT per band beyond the photometric's own: 2
  (unassociated alpha) for an alpha last band, else 0]; SampleFormat 339 (1 uint, 3 float); GDAL_NODATA 42113
  [ASCII: ``nan``, an integer or a decimal] when nodata is set;
- level 0 only: ModelPixelScale 33550 ``(dx, -dy, 0)`` and ModelTiepoint 33922 ``(0, 0, 0, x0, y0, 0)``
  [DOUBLE]; GeoKeyDirectory 34735, GeoDoubleParams 34736, GeoAsciiParams 34737 copied from a one-pixel
  GeoTIFF that GDAL writes in memory for the same CRS, so every CRS comes out exactly as GDAL writes it;
  GDAL_METADATA 42112 [ASCII XML] with band descriptions, scales and offsets, when any is set.
"""

from __future__ import annotations

import functools
import math
import os
import shutil
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from xml.sax.saxutils import escape

import numcodecs
import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import CRSError
from rasterio.io import MemoryFile

try:  # libdeflate, from the optional ``deflate`` package: zlib streams too, made 3-4x faster than by zlib
    from deflate import zlib_compress as _zlib_compress
except ImportError:
    from zlib import compress as _zlib_compress

COMPRESSION_CODES = {"deflate": 8, "zstd": 50000}
DEFAULT_COMPRESSION_LEVELS = {"deflate": 6, "zstd": 9}  # GDAL's ZLEVEL and ZSTD_LEVEL defaults
COMPRESSION_LEVELS = {"deflate": range(1, 10), "zstd": range(1, 23)}
SAMPLE_FORMATS = {"uint8": 1, "uint16": 1, "float32": 3}
PHOTOMETRICS = {"minisblack": 1, "rgb": 2}

TileSource = Callable[[int, int, int], "bytes | bytearray | memoryview | str | os.PathLike[str]"]

_GHOST_TEXT = (b"LAYOUT=IFDS_BEFORE_DATA\nBLOCK_ORDER=ROW_MAJOR\nBLOCK_LEADER=SIZE_AS_UINT4\n"
               b"BLOCK_TRAILER=LAST_4_BYTES_REPEATED\nKNOWN_INCOMPATIBLE_EDITION=NO\n ")
GHOST_AREA = b"GDAL_STRUCTURAL_METADATA_SIZE=%06d bytes\n" % len(_GHOST_TEXT) + _GHOST_TEXT
_TILE_ARRAY_TAGS = (324, 325)
_ASCII, _SHORT, _LONG, _DOUBLE, _LONG8 = 2, 3, 4, 12, 16
_TYPE_SIZES = {1: 1, _ASCII: 1, _SHORT: 2, _LONG: 4, 5: 8, 11: 4, _DOUBLE: 8, _LONG8: 8}
_CLASSIC_LIMIT = 2**32 - 1


@dataclass(frozen=True)
class CogLayout:
    """What a COG holds and how its tiles are encoded; picklable, so it travels to the workers.

    ``width`` x ``height`` level-0 pixels of ``bands`` samples of ``dtype`` (``uint8``, ``uint16``, ``float32``)
    in square tiles of ``tile`` pixels (a multiple of 16). ``compression`` is ``deflate`` (levels 1-9) or
    ``zstd`` (1-22) at ``compression_level`` (None: GDAL's defaults, 6 and 9); ``predictor`` 1 (none), 2 (horizontal
    differencing) or 3 (floating point, float32 only). ``photometric`` is ``minisblack`` or ``rgb`` (3 colour
    bands first); ``alpha`` marks the last band as unassociated alpha. ``nodata`` (a number, NaN, or None) is
    declared and used to pad edge tiles. ``crs_wkt`` and ``transform`` (six GDAL-order coefficients
    ``(x0, dx, 0, y0, 0, dy)`` with ``dx > 0 > dy``, or an :class:`~affine.Affine`) georeference level 0.
    ``descriptions``, ``scales`` and ``offsets`` (one per band, or None) go to GDAL_METADATA.
    """

    width: int
    height: int
    bands: int
    dtype: str
    crs_wkt: str
    transform: tuple[float, float, float, float, float, float]
    tile: int = 512
    compression: str = "deflate"
    compression_level: int | None = None
    predictor: int = 1
    photometric: str = "minisblack"
    alpha: bool = False
    nodata: float | None = None
    descriptions: tuple[str | None, ...] | None = None
    scales: tuple[float, ...] | None = None
    offsets: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.transform, Affine):
            object.__setattr__(self, "transform", self.transform.to_gdal())
        object.__setattr__(self, "transform", tuple(float(v) for v in self.transform))
        if len(self.transform) != 6:
            raise ValueError(f"transform: {len(self.transform)} coefficients, a GDAL geotransform has 6")
        for name in ("descriptions", "scales", "offsets"):
            values = getattr(self, name)
            if values is not None:
                object.__setattr__(self, name, tuple(values))
                if len(values) != self.bands:
                    raise ValueError(f"{name}: {len(values)} values for {self.bands} bands")
        problem = self._problem()
        if problem:
            raise ValueError(f"invalid COG layout: {problem}")
        try:
            _geokey_entries(self.crs_wkt)  # fails now rather than on the client after every tile is encoded
        except CRSError as error:
            raise ValueError(f"invalid COG layout: crs_wkt is not a CRS GDAL can write ({error})") from None

    def _problem(self) -> str | None:
        """The first thing wrong with this layout, or None."""
        _, dx, rx, _, ry, dy = self.transform
        base = 3 if self.photometric == "rgb" else 1
        checks = [
            (self.width >= 1 and self.height >= 1 and self.bands >= 1, "width, height and bands must be >= 1"),
            (self.dtype in SAMPLE_FORMATS, f"dtype {self.dtype!r} is not one of {sorted(SAMPLE_FORMATS)}"),
            (self.tile >= 16 and self.tile % 16 == 0, f"tile {self.tile} is not a positive multiple of 16"),
            (self.compression in COMPRESSION_CODES, f"compression {self.compression!r} is not one of "
                                                    f"{sorted(COMPRESSION_CODES)}"),
            (self.compression_level is None or self.compression_level in COMPRESSION_LEVELS.get(self.compression, ()),
             f"compression_level {self.compression_level} is out of range for {self.compression}"),
            (self.predictor in (1, 2, 3), f"predictor {self.predictor} is not 1, 2 or 3"),
            (self.predictor != 3 or self.dtype == "float32", "predictor 3 needs float32 samples"),
            (self.photometric in PHOTOMETRICS, f"photometric {self.photometric!r} is not one of {sorted(PHOTOMETRICS)}"),
            (self.bands >= base + int(self.alpha), f"{self.bands} bands are too few for {self.photometric}"
                                                   f"{' with alpha' if self.alpha else ''}"),
            (rx == 0 and ry == 0 and dx > 0 > dy, f"transform {self.transform} is not north-up GDAL order "
                                                  "(x0, dx, 0, y0, 0, dy) with dx > 0 > dy"),
            (all(map(math.isfinite, self.transform)), "transform has non-finite coefficients"),
            (bool(self.crs_wkt), "crs_wkt is empty"),
            (self.nodata is None or _nodata_fits(self.nodata, self.dtype),
             f"nodata {self.nodata} is not a {self.dtype} value"),
        ]
        return next((message for ok, message in checks if not ok), None)

    @property
    def levels(self) -> tuple[tuple[int, int], ...]:
        """``(height, width)`` of level 0 and of each overview, halving with ``(n + 1) // 2`` while a level
        is larger than one tile."""
        shapes = [(self.height, self.width)]
        while max(shapes[-1]) > self.tile:
            height, width = shapes[-1]
            shapes.append(((height + 1) // 2, (width + 1) // 2))
        return tuple(shapes)

    def tiles(self, level: int) -> tuple[int, int]:
        """``(rows, cols)`` of tiles covering ``level``."""
        height, width = self.levels[level]
        return -(-height // self.tile), -(-width // self.tile)

    def tile_window(self, level: int, row: int, col: int) -> tuple[int, int, int, int]:
        """``(row_off, col_off, height, width)`` in ``level``'s pixels of the image part of tile ``(row, col)``
        (edge tiles are smaller than ``tile``)."""
        height, width = self.levels[level]
        row_off, col_off = row * self.tile, col * self.tile
        return row_off, col_off, min(self.tile, height - row_off), min(self.tile, width - col_off)

    @property
    def fill_value(self) -> float:
        """What pads edge tiles and marks footprints without valid pixels: nodata, else NaN (float) or 0."""
        if self.nodata is not None:
            return self.nodata
        return math.nan if self.dtype == "float32" else 0


def encode_tile(layout: CogLayout, data: np.ndarray) -> bytes:
    """One tile as stored in the COG: ``data`` ``[bands, h, w]`` of ``layout.dtype``, ``h, w <= layout.tile``
    (an edge tile), padded to the full tile with :attr:`CogLayout.fill_value`, pixel-interleaved, run through
    the predictor as libtiff undoes it, and compressed (a zlib stream or a zstd frame)."""
    data = np.asarray(data)
    if data.ndim != 3 or data.shape[0] != layout.bands or max(data.shape[1:]) > layout.tile or 0 in data.shape:
        raise ValueError(f"tile data of shape {data.shape}: expected [{layout.bands}, h <= {layout.tile}, "
                         f"w <= {layout.tile}]")
    if data.dtype != np.dtype(layout.dtype):
        raise ValueError(f"tile data of dtype {data.dtype}: the layout holds {layout.dtype}")
    size, (height, width) = layout.tile, data.shape[1:]
    pixels = np.full((size, size, layout.bands), layout.fill_value, dtype=np.dtype(layout.dtype).newbyteorder("<"))
    pixels[:height, :width] = data.transpose(1, 2, 0)
    raw = _predict(pixels, layout.predictor)
    level = layout.compression_level
    if level is None:
        level = DEFAULT_COMPRESSION_LEVELS[layout.compression]
    if layout.compression == "deflate":
        return _zlib_compress(raw, level)
    return numcodecs.Zstd(level=level).encode(raw)


def _predict(pixels: np.ndarray, predictor: int) -> bytes:
    """The bytes of a ``[rows, cols, samples]`` little-endian tile after TIFF predictor ``predictor``.

    2: each sample minus the same sample of the previous pixel in the row, as unsigned integers of the sample's
    width (wrapping). 3 (libtiff's ``fpDiff``): each row's values are split into byte planes, most significant
    byte first, and each byte of the row minus the byte ``samples`` positions before it (wrapping)."""
    if predictor == 1:
        return pixels.tobytes()
    rows, cols, samples = pixels.shape
    if predictor == 2:
        words = pixels.view(f"<u{pixels.dtype.itemsize}")
        differences = words.copy()
        np.subtract(words[:, 1:], words[:, :-1], out=differences[:, 1:])
        return differences.tobytes()
    itemsize = pixels.dtype.itemsize
    planes = pixels.view(np.uint8).reshape(rows, cols * samples, itemsize)[:, :, ::-1]
    planes = planes.transpose(0, 2, 1).reshape(rows, itemsize * cols * samples)
    differences = planes.copy()
    np.subtract(planes[:, samples:], planes[:, :-samples], out=differences[:, samples:])
    return differences.tobytes()


def downsample(layout: CogLayout, data: np.ndarray) -> np.ndarray:
    """One overview step: ``[bands, h, w]`` -> ``[bands, ceil(h / 2), ceil(w / 2)]`` of ``layout.dtype``.

    Each output pixel is the mean of the valid pixels of its 2 x 2 footprint (1 x 2, 2 x 1 or 1 x 1 at an odd
    last row or column), :attr:`CogLayout.fill_value` where none is valid; integer means are rounded half up.
    Valid means: not NaN, not equal to nodata, and, with an alpha band, alpha > 0. The alpha band is averaged
    the same way, over the footprint pixels with alpha > 0: this is what GDAL's ``average`` resampling does
    with an alpha band (the band is the dataset's mask, for every band including itself). For the 0 / 255
    masks geosal writes it equals the maximum: an overview pixel is opaque when any of its pixels is and shows
    their colour at full strength, so valid areas neither fade nor shrink at coarse levels. Because footprints
    never straddle even boundaries, pieces of an image aligned on even rows and columns downsample
    independently to the same result as the whole.
    """
    data = np.asarray(data)
    if data.ndim != 3 or data.shape[0] != layout.bands or data.dtype != np.dtype(layout.dtype):
        raise ValueError(f"data of shape {data.shape} and dtype {data.dtype}: expected "
                         f"[{layout.bands}, h, w] of {layout.dtype}")
    bands, height, width = data.shape
    valid = np.ones(data.shape, dtype=bool)
    if layout.dtype == "float32":
        valid &= ~np.isnan(data)
    if layout.nodata is not None and not math.isnan(layout.nodata):
        valid &= data != layout.nodata
    if layout.alpha:
        valid &= data[-1] > 0
    sums = np.zeros((bands, (height + 1) // 2, (width + 1) // 2), np.float64 if layout.dtype == "float32" else np.int32)
    counts = np.zeros(sums.shape, np.int32)
    for row_phase in (0, 1):  # the four pixels of each footprint, one strided quarter of the image at a time
        for col_phase in (0, 1):
            part, part_valid = data[:, row_phase::2, col_phase::2], valid[:, row_phase::2, col_phase::2]
            rows, cols = part.shape[1:]
            sums[:, :rows, :cols] += np.where(part_valid, part, 0)
            counts[:, :rows, :cols] += part_valid
    present = counts > 0
    safe_counts = np.where(present, counts, 1)
    if layout.dtype == "float32":
        means = sums / safe_counts
    else:
        means = (2 * sums + safe_counts) // (2 * safe_counts)
    return np.where(present, means, layout.fill_value).astype(layout.dtype)


def write_cog(path: str | os.PathLike[str], layout: CogLayout, tile_source: TileSource,
              bigtiff: bool | None = None) -> None:
    """Write the COG of ``layout`` at ``path`` from its encoded tiles.

    ``tile_source(level, row, col)`` returns the bytes :func:`encode_tile` made for that tile, or the path of a
    file holding exactly them (copied with ``os.copy_file_range`` where the system has it, never held in
    memory); it is called once per tile, in file order (smallest overview first, level 0 last, row-major).
    ``bigtiff`` None writes BigTIFF only when the file could exceed 4 GiB (tiles at their uncompressed size
    plus compressors' worst-case growth); False writes classic TIFF and fails if the tiles do not fit.
    The file is written under a temporary name in the same folder and appears at ``path`` only when complete;
    on any error (from ``tile_source`` too) no file is left behind.
    """
    target = Path(path)
    if bigtiff is None:
        bigtiff = _could_exceed_classic(layout)
    geokeys = _geokey_entries(layout.crs_wkt)
    tile_counts = [rows * cols for rows, cols in map(layout.tiles, range(len(layout.levels)))]
    offsets = [[0] * count for count in tile_counts]
    byte_counts = [[0] * count for count in tile_counts]
    data_start = len(_front_area(layout, geokeys, offsets, byte_counts, bigtiff))
    temporary = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
    try:
        with open(temporary, "wb") as out:
            out.seek(data_start)
            for level in reversed(range(len(layout.levels))):
                rows, cols = layout.tiles(level)
                for row in range(rows):
                    for col in range(cols):
                        offset, count = _append_tile(out, tile_source(level, row, col))
                        if not bigtiff and offset + count + 4 > _CLASSIC_LIMIT:
                            raise ValueError(f"{target}: the tiles exceed the 4 GiB of a classic TIFF; "
                                             "write it with bigtiff=True")
                        offsets[level][row * cols + col], byte_counts[level][row * cols + col] = offset, count
            out.seek(0)
            out.write(_front_area(layout, geokeys, offsets, byte_counts, bigtiff))
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _append_tile(out: BinaryIO, tile: bytes | bytearray | memoryview | str | os.PathLike[str]) -> tuple[int, int]:
    """Append leader, tile bytes and trailer to ``out``; returns the tile's offset and size in bytes."""
    if isinstance(tile, (str, os.PathLike)):
        with open(tile, "rb") as fragment:
            size = os.fstat(fragment.fileno()).st_size
            fragment.seek(max(size - 4, 0))
            last = fragment.read(4)
            fragment.seek(0)
            offset = _write_leader(out, size, tile)
            _copy_fragment(fragment, out, size)
    else:
        view = memoryview(tile).cast("B")
        size, last = view.nbytes, bytes(view[-4:])
        offset = _write_leader(out, size, "tile bytes")
        out.write(view)
    out.write(last.ljust(4, b"\0"))
    return offset, size


def _write_leader(out: BinaryIO, size: int, name: object) -> int:
    if not 0 < size <= _CLASSIC_LIMIT:
        raise ValueError(f"{name}: an encoded tile must hold 1 byte to 4 GiB, not {size}")
    out.write(struct.pack("<I", size))
    return out.tell()


def _copy_fragment(fragment: BinaryIO, out: BinaryIO, size: int) -> None:
    """Copy the ``size`` bytes of ``fragment`` to ``out`` at its position, in the kernel where possible."""
    out.flush()
    start, copied = out.tell(), 0
    if hasattr(os, "copy_file_range"):
        try:
            while copied < size:
                step = os.copy_file_range(fragment.fileno(), out.fileno(), size - copied, copied, start + copied)
                if step == 0:
                    break
                copied += step
        except OSError:  # this pair of file systems refuses it: copy the rest in user space
            pass
    fragment.seek(copied)
    out.seek(start + copied)
    shutil.copyfileobj(fragment, out)
    if out.tell() - start != size:
        raise OSError(f"{fragment.name}: changed size while it was copied")


def _could_exceed_classic(layout: CogLayout) -> bool:
    """Whether the COG could pass 4 GiB: every tile at its uncompressed size plus worst-case compressor growth
    (zlib and zstd grow incompressible data by well under 1/64 plus a few bytes) plus leader and trailer."""
    raw = layout.tile * layout.tile * layout.bands * np.dtype(layout.dtype).itemsize
    tiles = sum(rows * cols for rows, cols in map(layout.tiles, range(len(layout.levels))))
    directories = 4096 * len(layout.levels) + 16 * tiles
    return directories + tiles * (raw + raw // 64 + 1024) > _CLASSIC_LIMIT


# ---- directories ---------------------------------------------------------------------------------------------

Entry = tuple[int, int, int, bytes]  # tag code, TIFF type, value count, little-endian value bytes


def _entry(code: int, kind: int, values: list[float] | tuple[float, ...] | str) -> Entry:
    if isinstance(values, str):
        payload = values.encode("utf-8") + b"\0"
        return code, kind, len(payload), payload
    formats = {_SHORT: "H", _LONG: "I", _DOUBLE: "d", _LONG8: "Q"}
    return code, kind, len(values), struct.pack(f"<{len(values)}{formats[kind]}", *values)


def _short_or_long(code: int, value: int) -> Entry:
    return _entry(code, _SHORT if value < 2**16 else _LONG, [value])


def _directory(layout: CogLayout, level: int, geokeys: tuple[Entry, ...], offsets: list[int],
               byte_counts: list[int], bigtiff: bool) -> list[Entry]:
    """The sorted entries of ``level``'s IFD."""
    height, width = layout.levels[level]
    bits = np.dtype(layout.dtype).itemsize * 8
    entries = [
        _short_or_long(256, width), _short_or_long(257, height),
        _entry(258, _SHORT, [bits] * layout.bands),
        _entry(259, _SHORT, [COMPRESSION_CODES[layout.compression]]),
        _entry(262, _SHORT, [PHOTOMETRICS[layout.photometric]]),
        _entry(277, _SHORT, [layout.bands]), _entry(284, _SHORT, [1]), _entry(317, _SHORT, [layout.predictor]),
        _short_or_long(322, layout.tile), _short_or_long(323, layout.tile),
        _entry(324, _LONG8 if bigtiff else _LONG, offsets),
        _entry(325, _LONG8 if bigtiff and len(byte_counts) == 1 else _LONG, byte_counts),  # as libtiff does
        _entry(339, _SHORT, [SAMPLE_FORMATS[layout.dtype]] * layout.bands),
    ]
    extra = layout.bands - (3 if layout.photometric == "rgb" else 1)
    if extra:
        entries.append(_entry(338, _SHORT, [0] * (extra - 1) + [2 if layout.alpha else 0]))
    if level:
        entries.append(_entry(254, _LONG, [1]))
    else:
        x0, dx, _, y0, _, dy = layout.transform
        entries += [_entry(33550, _DOUBLE, [dx, -dy, 0.0]), _entry(33922, _DOUBLE, [0.0, 0.0, 0.0, x0, y0, 0.0]),
                    *geokeys]
        metadata = _gdal_metadata(layout)
        if metadata:
            entries.append(_entry(42112, _ASCII, metadata))
    if layout.nodata is not None:
        entries.append(_entry(42113, _ASCII, _nodata_text(layout.nodata)))
    return sorted(entries)


def _front_area(layout: CogLayout, geokeys: tuple[Entry, ...], offsets: list[list[int]],
                byte_counts: list[list[int]], bigtiff: bool) -> bytes:
    """Header, ghost area, IFDs with their values, then the tile arrays: everything before the first tile.

    Its length depends on the layout only (entries have fixed sizes), not on the offsets and counts."""
    directories = [_directory(layout, level, geokeys, offsets[level], byte_counts[level], bigtiff)
                   for level in range(len(layout.levels))]
    inline, entry_format, count_format, offset_format = (8, "<HHQ", "<Q", "<Q") if bigtiff else (4, "<HHI", "<H", "<I")
    entry_size = struct.calcsize(entry_format) + inline
    position = _even((16 if bigtiff else 8) + len(GHOST_AREA))
    ifd_offsets, placements = [], {}
    for level, entries in enumerate(directories):
        ifd_offsets.append(position)
        position += struct.calcsize(count_format) + entry_size * len(entries) + inline
        for code, _, _, payload in entries:
            if len(payload) > inline and code not in _TILE_ARRAY_TAGS:
                placements[level, code], position = position, _even(position + len(payload))
    for level, entries in enumerate(directories):
        for code, _, _, payload in entries:
            if len(payload) > inline and code in _TILE_ARRAY_TAGS:
                placements[level, code], position = position, _even(position + len(payload))
    front = bytearray(position)
    header = struct.pack("<2sHHHQ", b"II", 43, 8, 0, ifd_offsets[0]) if bigtiff else \
        struct.pack("<2sHI", b"II", 42, ifd_offsets[0])
    front[:len(header) + len(GHOST_AREA)] = header + GHOST_AREA
    for level, entries in enumerate(directories):
        at = ifd_offsets[level]
        next_ifd = ifd_offsets[level + 1] if level + 1 < len(directories) else 0
        ifd = [struct.pack(count_format, len(entries))]
        for code, kind, count, payload in entries:
            value = payload.ljust(inline, b"\0") if len(payload) <= inline else \
                struct.pack(offset_format, placements[level, code])
            ifd.append(struct.pack(entry_format, code, kind, count) + value)
        ifd.append(struct.pack(offset_format, next_ifd))
        ifd_bytes = b"".join(ifd)
        front[at:at + len(ifd_bytes)] = ifd_bytes
        for code, _, _, payload in entries:
            if (level, code) in placements:
                front[placements[level, code]:placements[level, code] + len(payload)] = payload
    return bytes(front)


def _even(position: int) -> int:
    return position + position % 2


def _gdal_metadata(layout: CogLayout) -> str:
    """GDAL_METADATA XML for band descriptions, scales and offsets ('' when all are unset or default).

    Items per band in GDAL's order (offset, scale, description); values are escaped twice, as GDAL writes
    and reads them."""
    items = []
    for band in range(layout.bands):
        for name, values, default in (("OFFSET", layout.offsets, 0.0), ("SCALE", layout.scales, 1.0),
                                      ("DESCRIPTION", layout.descriptions, None)):
            value = values[band] if values is not None else None
            if value is None or value == default or value == "":
                continue
            text = repr(float(value)) if name != "DESCRIPTION" else escape(str(value))
            items.append(f'  <Item name="{name}" sample="{band}" role="{name.lower()}">{escape(text)}</Item>\n')
    return f"<GDALMetadata>\n{''.join(items)}</GDALMetadata>" if items else ""


def _nodata_fits(value: float, dtype: str) -> bool:
    if dtype == "float32":
        return math.isnan(value) or abs(value) <= float(np.finfo(np.float32).max) or math.isinf(value)
    info = np.iinfo(dtype)
    return float(value).is_integer() and info.min <= value <= info.max


def _nodata_text(value: float) -> str:
    """GDAL_NODATA text: ``nan``, ``inf``/``-inf``, an integer, or the shortest round-trip decimal."""
    value = float(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return str(int(value)) if value.is_integer() else repr(value)


@functools.lru_cache(maxsize=32)
def _geokey_entries(crs_wkt: str) -> tuple[Entry, ...]:
    """GeoKeyDirectory, GeoDoubleParams and GeoAsciiParams entries exactly as GDAL writes them for ``crs_wkt``:
    read from a one-pixel GeoTIFF that GDAL writes in memory."""
    with MemoryFile() as memory:
        with memory.open(driver="GTiff", width=1, height=1, count=1, dtype="uint8", crs=CRS.from_wkt(crs_wkt),
                         transform=Affine(1, 0, 0, 0, -1, 1)) as dataset:
            dataset.write(np.zeros((1, 1, 1), dtype=np.uint8))
        raw = bytes(memory.getbuffer())
    return tuple(entry for entry in _read_classic_entries(raw) if entry[0] in (34735, 34736, 34737))


def _read_classic_entries(raw: bytes) -> list[Entry]:
    """The entries of the first IFD of a little-endian classic TIFF, values resolved."""
    if raw[:4] != b"II*\0":
        raise ValueError(f"GDAL wrote an unexpected TIFF header {raw[:4]!r} (GDAL {rasterio.__gdal_version__})")
    (ifd,) = struct.unpack_from("<I", raw, 4)
    (count,) = struct.unpack_from("<H", raw, ifd)
    entries = []
    for index in range(count):
        code, kind, values = struct.unpack_from("<HHI", raw, ifd + 2 + 12 * index)
        size = _TYPE_SIZES[kind] * values
        at = ifd + 2 + 12 * index + 8
        if size > 4:
            (at,) = struct.unpack_from("<I", raw, at)
        entries.append((code, kind, values, raw[at:at + size]))
    return entries
