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
                            space (room for ``YES``); with a mask, ``MASK_INTERLEAVED_WITH_IMAGERY=YES`` follows
                            the space (size 000174); padded to an even offset
IFDs                        level 0, then each overview, largest first; with a mask: level 0, level 0's mask,
                            each overview, then each overview's mask (GDAL's order); each followed by its values
                            that do not fit in an entry (core TIFF tags first, then JPEGTables, GDAL_METADATA
                            and GDAL_NODATA, then the GeoTIFF tags, as libtiff writes them for GDAL); each
                            links to the next, the last to 0
tile arrays                 TileOffsets then TileByteCounts of each level in turn, its imagery's then its
                            mask's (a one-tile IFD's fit in their entries)
tiles                       smallest overview first, level 0 last, row-major within a level; with a mask, each
                            imagery tile is followed by its mask tile; every tile (mask tiles too) preceded by
                            its size (uint32: the leader) and followed by its last 4 bytes (the trailer;
                            zero-padded on the right under 4 bytes), so readers can fetch a tile knowing only
                            its offset and check that the layout was not modified
==========================  =====================================================================================

Tags, ascending in each IFD (TIFF types in brackets):

- every imagery level: NewSubfileType 254 [LONG] = 1 on overviews only; ImageWidth 256, ImageLength 257 [SHORT,
  or LONG from 65536]; BitsPerSample 258 [SHORT per band]; Compression 259 (7 = JPEG, 8 = zlib stream, 50000 =
  zstd frame); PhotometricInterpretation 262 (1 MinIsBlack, 2 RGB, 6 YCbCr for JPEG); SamplesPerPixel 277;
  PlanarConfiguration 284 = 1 (pixel-interleaved); Predictor 317 (1 none, 2 horizontal differencing, 3 floating
  point; absent with JPEG); TileWidth 322, TileLength 323; TileOffsets 324 [LONG; LONG8 in BigTIFF];
  TileByteCounts 325 [as libtiff chooses: LONG8 for a one-tile level in BigTIFF, SHORT for several tiles of
  under 6553 uncompressed bytes (a 32 px RGB tile, a 64 px mask tile), else LONG]; ExtraSamples 338
  [SHORT per band beyond the photometric's own: 2 (unassociated alpha) for an alpha last band, else 0];
  SampleFormat 339 (1 uint, 3 float); with JPEG, JPEGTables 347 [UNDEFINED: SOI, the two quantisation tables,
  EOI], YCbCrSubSampling 530 = 2, 2 and ReferenceBlackWhite 532 [RATIONAL] = 0, 255, 128, 255, 128, 255;
  GDAL_NODATA 42113 [ASCII: ``nan``, an integer or a decimal] when nodata is set;
- level 0 only: ModelPixelScale 33550 ``(dx, -dy, 0)`` and ModelTiepoint 33922 ``(0, 0, 0, x0, y0, 0)``
  [DOUBLE]; GeoKeyDirectory 34735, GeoDoubleParams 34736, GeoAsciiParams 34737 copied from a one-pixel
  GeoTIFF that GDAL writes in memory for the same CRS, so every CRS comes out exactly as GDAL writes it;
  GDAL_METADATA 42112 [ASCII XML, ending in a newline] with band descriptions, scales and offsets, when any is
  set;
- mask levels: NewSubfileType 4 (level 0's mask) or 5 (an overview's), the size and tile tags as their level,
  BitsPerSample 1, Compression 8, PhotometricInterpretation 4 (transparency mask), SamplesPerPixel 1,
  PlanarConfiguration 1, Predictor 1, SampleFormat 1; nothing else.

JPEG tiles (:class:`CogLayout` ``compression="jpeg"``) are what libtiff stores with GDAL's default
``JPEGTABLESMODE=1``: the quantisation tables once per IFD in JPEGTables, and in each tile an abbreviated JPEG
stream (SOI, SOF0 with YCbCr 4:2:0, its own optimised Huffman tables, SOS, the scan, EOI). Tiles are encoded by
Pillow (libjpeg-turbo) with the quantisation tables GDAL writes at the layout's quality, which are cut out of
each stream; GDAL's wheels link IJG libjpeg 9 instead, so tiles are not byte-identical to GDAL's, but decode
with the same error against the source (the tests compare both). Edge tiles are padded by repeating the last
column, then the last row, as GDAL does for JPEG (it pads other codecs with nodata or 0, as
:func:`encode_tile` does).

Internal mask (``mask=True``): the data's last band is alpha (0 = nodata, anything else valid, as GDAL turns an
alpha band into a mask); it is stored as the 1-bit GDAL mask (bits packed most significant first, rows of whole
bytes, padding 0, DEFLATE at GDAL's level for masks whatever the imagery's codec), and the other bands as
the imagery, their pixels under the mask kept as given (GDAL keeps the source's). A masked tile's fragment, the
one piece of bytes a worker stores (:func:`join_masked_tile`), is ``<II`` (imagery size, mask size) followed by
the imagery tile and the mask tile, so that :func:`write_cog` copies both parts without decoding anything.
"""

from __future__ import annotations

import functools
import io
import math
import os
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
from PIL import Image
from rasterio.crs import CRS
from rasterio.errors import CRSError
from rasterio.io import MemoryFile

try:  # libdeflate, from the optional ``deflate`` package: zlib streams too, made 3-4x faster than by zlib
    from deflate import zlib_compress as _zlib_compress
    _LIBDEFLATE = True
except ImportError:
    from zlib import compress as _zlib_compress
    _LIBDEFLATE = False

COMPRESSION_CODES = {"deflate": 8, "zstd": 50000, "jpeg": 7}
# GDAL's ZLEVEL and ZSTD_LEVEL defaults; for JPEG the quality, 90 where GDAL's QUALITY defaults to 75
DEFAULT_COMPRESSION_LEVELS = {"deflate": 6, "zstd": 9, "jpeg": 90}
# JPEG qualities under 24 scale the quantisation tables past 8 bits: libtiff keeps 16-bit tables, Pillow clamps
COMPRESSION_LEVELS = {"deflate": range(1, 10), "zstd": range(1, 23), "jpeg": range(24, 101)}
SAMPLE_FORMATS = {"uint8": 1, "uint16": 1, "float32": 3}
PHOTOMETRICS = {"minisblack": 1, "rgb": 2}
# GDAL writes its DEFLATE masks at the default ZLEVEL 6, whatever the imagery's options, which libtiff built with
# libdeflate (as in GDAL's wheels) runs at libdeflate's level 7 "to get results as good as zlib"
MASK_COMPRESSION_LEVEL = 6
_MASK_LIBDEFLATE_LEVEL = 7

TileSource = Callable[[int, int, int], "bytes | bytearray | memoryview | str | os.PathLike[str]"]

_GHOST_TEXT = (b"LAYOUT=IFDS_BEFORE_DATA\nBLOCK_ORDER=ROW_MAJOR\nBLOCK_LEADER=SIZE_AS_UINT4\n"
               b"BLOCK_TRAILER=LAST_4_BYTES_REPEATED\nKNOWN_INCOMPATIBLE_EDITION=NO\n ")
_MASKED_GHOST_TEXT = _GHOST_TEXT + b"MASK_INTERLEAVED_WITH_IMAGERY=YES\n"
GHOST_AREA = b"GDAL_STRUCTURAL_METADATA_SIZE=%06d bytes\n" % len(_GHOST_TEXT) + _GHOST_TEXT
MASKED_GHOST_AREA = b"GDAL_STRUCTURAL_METADATA_SIZE=%06d bytes\n" % len(_MASKED_GHOST_TEXT) + _MASKED_GHOST_TEXT
_MASKED_INDEX = struct.Struct("<II")  # a masked tile's fragment: imagery size, mask size, then both tiles
_TILE_ARRAY_TAGS = (324, 325)
_ASCII, _SHORT, _LONG, _RATIONAL, _UNDEFINED, _DOUBLE, _LONG8 = 2, 3, 4, 5, 7, 12, 16
_TYPE_SIZES = {1: 1, _ASCII: 1, _SHORT: 2, _LONG: 4, _RATIONAL: 8, _UNDEFINED: 1, 11: 4, _DOUBLE: 8, _LONG8: 8}
_CLASSIC_LIMIT = 2**32 - 1
_YCBCR = 6
_TRANSPARENCY_MASK = 4
_SOI, _EOI, _SOS, _DQT = b"\xff\xd8", b"\xff\xd9", 0xDA, 0xDB


@dataclass(frozen=True)
class CogLayout:
    """What a COG holds and how its tiles are encoded; picklable, so it travels to the workers.

    ``width`` x ``height`` level-0 pixels of ``bands`` samples of ``dtype`` (``uint8``, ``uint16``, ``float32``)
    in square tiles of ``tile`` pixels (a multiple of 16). ``compression`` is ``deflate`` (levels 1-9), ``zstd``
    (1-22) or ``jpeg`` (quality 24-100; uint8 RGB only, stored as YCbCr with 4:2:0 chroma subsampling) at
    ``compression_level`` (None: 6, 9 and 90); ``predictor`` 1 (none), 2 (horizontal differencing) or 3
    (floating point, float32 only), 1 with JPEG. ``photometric`` is ``minisblack`` or ``rgb`` (3 colour bands
    first); ``alpha`` marks the last band as unassociated alpha, stored as a band. ``mask`` instead makes the
    last band (uint8 alpha: 0 = nodata, 1-255 valid) the COG's internal 1-bit mask, so the file stores
    ``bands - 1`` bands (:attr:`stored_bands`) plus a mask: RGBA data with ``bands=4, photometric="rgb",
    mask=True`` gives an RGB COG with a mask, what GDAL's COG driver writes from RGBA with JPEG. ``nodata`` (a
    number, NaN, or None; not with a mask) is declared and used to pad edge tiles. ``crs_wkt`` and ``transform``
    (six GDAL-order coefficients ``(x0, dx, 0, y0, 0, dy)`` with ``dx > 0 > dy``, or an :class:`~affine.Affine`)
    georeference level 0. ``descriptions``, ``scales`` and ``offsets`` (one per stored band, or None) go to
    GDAL_METADATA.
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
    mask: bool = False
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
                if len(values) != self.stored_bands:
                    raise ValueError(f"{name}: {len(values)} values for {self.stored_bands} stored bands")
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
        jpeg = self.compression == "jpeg"
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
            (not (self.alpha and self.mask), "alpha and mask both claim the last band: choose one"),
            (self.bands >= base + int(self.alpha) + int(self.mask),
             f"{self.bands} bands are too few for {self.photometric}{' with alpha' if self.alpha else ''}"
             f"{' with a mask band' if self.mask else ''}"),
            (not self.mask or self.dtype == "uint8", "a mask comes from a uint8 alpha band: dtype must be uint8"),
            (not self.mask or self.nodata is None, "a mask and a nodata value both mark invalid pixels: choose one"),
            (not jpeg or (self.dtype == "uint8" and self.photometric == "rgb" and self.stored_bands == 3),
             "jpeg stores exactly 3 uint8 rgb bands (add mask=True for RGBA data)"),
            (not jpeg or self.predictor == 1, "jpeg takes no predictor"),
            (rx == 0 and ry == 0 and dx > 0 > dy, f"transform {self.transform} is not north-up GDAL order "
                                                  "(x0, dx, 0, y0, 0, dy) with dx > 0 > dy"),
            (all(map(math.isfinite, self.transform)), "transform has non-finite coefficients"),
            (bool(self.crs_wkt), "crs_wkt is empty"),
            (self.nodata is None or _nodata_fits(self.nodata, self.dtype),
             f"nodata {self.nodata} is not a {self.dtype} value"),
        ]
        return next((message for ok, message in checks if not ok), None)

    @property
    def stored_bands(self) -> int:
        """Bands the file stores: ``bands``, less the alpha band that becomes the mask."""
        return self.bands - int(self.mask)

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
        """What pads edge tiles (JPEG tiles repeat their edge pixels instead) and marks footprints without valid
        pixels: nodata, else NaN (float) or 0."""
        if self.nodata is not None:
            return self.nodata
        return math.nan if self.dtype == "float32" else 0


def encode_tile(layout: CogLayout, data: np.ndarray) -> bytes:
    """What the COG stores for one tile: ``data`` ``[bands, h, w]`` of ``layout.dtype``, ``h, w <= layout.tile``
    (an edge tile), padded to the full tile, encoded.

    DEFLATE and zstd: padded with :attr:`CogLayout.fill_value`, pixel-interleaved, run through the predictor as
    libtiff undoes it, compressed (a zlib stream or a zstd frame). JPEG: padded by repeating the last column then
    the last row, encoded at the layout's quality as YCbCr 4:2:0 with optimised Huffman tables, the quantisation
    tables left to the file's JPEGTables. With ``layout.mask`` the last band is alpha; the result is the
    fragment :func:`join_masked_tile` makes of the imagery tile (the other bands) and the mask tile (alpha > 0;
    1 bit per pixel, padding 0, DEFLATE as GDAL compresses masks). Either way, bytes :func:`write_cog` takes as they are."""
    data = np.asarray(data)
    if data.ndim != 3 or data.shape[0] != layout.bands or max(data.shape[1:]) > layout.tile or 0 in data.shape:
        raise ValueError(f"tile data of shape {data.shape}: expected [{layout.bands}, h <= {layout.tile}, "
                         f"w <= {layout.tile}]")
    if data.dtype != np.dtype(layout.dtype):
        raise ValueError(f"tile data of dtype {data.dtype}: the layout holds {layout.dtype}")
    imagery = data[:layout.stored_bands]
    if layout.compression == "jpeg":
        encoded = _encode_jpeg(imagery, layout.tile, _level(layout))
    else:
        encoded = _encode_lossless(layout, imagery)
    if layout.mask:
        return join_masked_tile(encoded, _encode_mask(data[-1], layout.tile))
    return encoded


def _level(layout: CogLayout) -> int:
    """The layout's compression level (JPEG: quality), or the codec's default."""
    if layout.compression_level is None:
        return DEFAULT_COMPRESSION_LEVELS[layout.compression]
    return layout.compression_level


def join_masked_tile(imagery: bytes, mask: bytes) -> bytes:
    """The fragment of one tile of a masked layout: ``<II`` (imagery size, mask size in bytes), the encoded
    imagery tile, the encoded mask tile. Workers store it as one file; :func:`write_cog` splits it again."""
    if not imagery or not mask:
        raise ValueError(f"an imagery tile of {len(imagery)} bytes and a mask tile of {len(mask)} bytes: "
                         "both must hold at least 1 byte")
    return _MASKED_INDEX.pack(len(imagery), len(mask)) + bytes(imagery) + bytes(mask)


def _encode_lossless(layout: CogLayout, imagery: np.ndarray) -> bytes:
    size, (height, width) = layout.tile, imagery.shape[1:]
    pixels = np.full((size, size, imagery.shape[0]), layout.fill_value,
                     dtype=np.dtype(layout.dtype).newbyteorder("<"))
    pixels[:height, :width] = imagery.transpose(1, 2, 0)
    raw = _predict(pixels, layout.predictor)
    if layout.compression == "deflate":
        return _zlib_compress(raw, _level(layout))
    return numcodecs.Zstd(level=_level(layout)).encode(raw)


def _encode_mask(alpha: np.ndarray, size: int) -> bytes:
    """The 1-bit mask tile of ``alpha`` ``[h, w]``: alpha > 0, padded with 0 to ``size`` x ``size``, 8 pixels
    a byte, most significant bit first (``size`` is a multiple of 16: rows are whole bytes), DEFLATE as GDAL
    compresses masks (with libdeflate, the very bytes of GDAL's mask tiles)."""
    bits = np.zeros((size, size), bool)
    bits[:alpha.shape[0], :alpha.shape[1]] = alpha > 0
    level = _MASK_LIBDEFLATE_LEVEL if _LIBDEFLATE else MASK_COMPRESSION_LEVEL
    return _zlib_compress(np.packbits(bits, axis=1).tobytes(), level)


def _encode_jpeg(rgb: np.ndarray, size: int, quality: int) -> bytes:
    """The abbreviated JPEG stream of ``rgb`` ``[3, h, w]`` uint8, edge-padded to ``size`` x ``size``."""
    height, width = rgb.shape[1:]
    pixels = np.pad(rgb.transpose(1, 2, 0), ((0, size - height), (0, size - width), (0, 0)), mode="edge")
    tables, tile = _split_jpeg(_pillow_jpeg(np.ascontiguousarray(pixels), quality, optimize=True))
    if tables != _jpeg_tables(quality):
        raise RuntimeError(f"Pillow's JPEG encoder wrote other quantisation tables in a tile than in the file's "
                           f"JPEGTables at quality {quality}")
    return tile


def _pillow_jpeg(pixels: np.ndarray, quality: int, optimize: bool) -> bytes:
    """A complete JPEG stream of ``pixels`` ``[h, w, 3]`` uint8: YCbCr 4:2:0 with GDAL's quantisation tables."""
    stream = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(stream, "JPEG", qtables=list(_quantisation_tables(quality)), subsampling=2,
                                        optimize=optimize)
    return stream.getvalue()


_IJG_LUMINANCE = (16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
                  14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
                  49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99)
_IJG_CHROMINANCE = ((17, 18, 24, 47) + (99,) * 4 + (18, 21, 26, 66) + (99,) * 4 + (24, 26, 56) + (99,) * 5 + (47, 66)
                    + (99,) * 38)


def _quantisation_tables(quality: int) -> tuple[list[int], list[int]]:
    """The luminance and chrominance quantisation tables (natural order) GDAL's JPEG-in-TIFF writes at
    ``quality``: the JPEG standard's (Annex K) scaled as libjpeg scales them (``5000 / q`` percent under 50,
    ``200 - 2q`` from 50, rounded, at least 1), but 16 for the chrominance DC entry, as GDAL writes it with
    the IJG libjpeg 9 of its wheels (libjpeg-turbo, and so Pillow's ``quality``, has 17; the tests compare the
    tables with GDAL's at qualities 24 to 100)."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    chrominance = (16,) + _IJG_CHROMINANCE[1:]
    luminance, chrominance = ([min(max((value * scale + 50) // 100, 1), 255) for value in table]
                              for table in (_IJG_LUMINANCE, chrominance))
    return luminance, chrominance


@functools.lru_cache(maxsize=8)
def _jpeg_tables(quality: int) -> bytes:
    """The JPEGTables value for ``quality``: SOI, the luminance and chrominance DQT segments, EOI (as Pillow
    writes them for the tables of :func:`_quantisation_tables`)."""
    return _split_jpeg(_pillow_jpeg(np.zeros((16, 16, 3), np.uint8), quality, optimize=False))[0]


def _split_jpeg(stream: bytes) -> tuple[bytes, bytes]:
    """A complete JPEG stream as (its tables: SOI, the DQT segments, EOI; the abbreviated stream: SOI, the other
    segments but APPn and COM, the scan to EOI)."""
    if stream[:2] != _SOI:
        raise ValueError("not a JPEG stream: no SOI marker")
    position, tables, kept = 2, [_SOI], [_SOI]
    while True:
        if position + 4 > len(stream) or stream[position] != 0xFF:
            raise ValueError(f"JPEG stream without a marker at byte {position}")
        marker = stream[position + 1]
        if marker == _SOS:
            kept.append(stream[position:])
            return b"".join(tables) + _EOI, b"".join(kept)
        (length,) = struct.unpack_from(">H", stream, position + 2)
        segment = stream[position:position + 2 + length]
        if marker == _DQT:
            tables.append(segment)
        elif not (0xE0 <= marker <= 0xEF or marker == 0xFE):  # APPn (JFIF) and COM have no place in a TIFF tile
            kept.append(segment)
        position += 2 + length


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
    Valid means: not NaN, not equal to nodata, and, with an alpha band or a mask (whose data's last band is
    alpha), alpha > 0. The alpha band is averaged the same way, over the footprint pixels with alpha > 0: this
    is what GDAL's ``average`` resampling does with an alpha band or a mask (the band is the dataset's mask, for
    every band including itself; the mask of an overview is valid where any of its footprint is). For the
    0 / 255 masks geosal writes it equals the maximum: an overview pixel is opaque when any of its pixels is and
    shows their colour at full strength, so valid areas neither fade nor shrink at coarse levels. Because
    footprints never straddle even boundaries, pieces of an image aligned on even rows and columns downsample
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
    if layout.alpha or layout.mask:
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

    ``tile_source(level, row, col)`` returns the bytes :func:`encode_tile` made for that tile (with a mask: the
    fragment holding imagery and mask), or the path of a file holding exactly them (copied with
    ``os.copy_file_range`` where the system has it, never held in memory); it is called once per tile, in file
    order (smallest overview first, level 0 last, row-major). ``bigtiff`` None writes BigTIFF only when the
    file could exceed 4 GiB (tiles at their uncompressed size plus compressors' worst-case growth); False
    writes classic TIFF and fails if the tiles do not fit. The file is written under a temporary name in the
    same folder and appears at ``path`` only when complete; on any error (from ``tile_source`` too) no file is
    left behind.
    """
    target = Path(path)
    if bigtiff is None:
        bigtiff = _could_exceed_classic(layout)
    geokeys = _geokey_entries(layout.crs_wkt)
    placements = {ifd: ([0] * count, [0] * count) for ifd, count in _ifds(layout)}
    data_start = len(_front_area(layout, geokeys, placements, bigtiff))
    temporary = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
    try:
        with open(temporary, "wb") as out:
            out.seek(data_start)
            for level in reversed(range(len(layout.levels))):
                rows, cols = layout.tiles(level)
                for row in range(rows):
                    for col in range(cols):
                        parts = _append_fragment(out, tile_source(level, row, col), layout.mask)
                        for is_mask, (offset, count) in enumerate(parts):
                            if not bigtiff and offset + count + 4 > _CLASSIC_LIMIT:
                                raise ValueError(f"{target}: the tiles exceed the 4 GiB of a classic TIFF; "
                                                 "write it with bigtiff=True")
                            offsets, byte_counts = placements[level, bool(is_mask)]
                            offsets[row * cols + col], byte_counts[row * cols + col] = offset, count
            out.seek(0)
            out.write(_front_area(layout, geokeys, placements, bigtiff))
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _ifds(layout: CogLayout) -> list[tuple[tuple[int, bool], int]]:
    """``((level, is_mask), tile count)`` of every IFD in file order: level 0, its mask, the overviews, their
    masks."""
    counts = [rows * cols for rows, cols in map(layout.tiles, range(len(layout.levels)))]
    imagery = [((level, False), count) for level, count in enumerate(counts)]
    if not layout.mask:
        return imagery
    masks = [((level, True), count) for level, count in enumerate(counts)]
    return imagery[:1] + masks[:1] + imagery[1:] + masks[1:]


def _append_fragment(out: BinaryIO, fragment: bytes | bytearray | memoryview | str | os.PathLike[str],
                     masked: bool) -> list[tuple[int, int]]:
    """Append each tile of ``fragment`` (the imagery tile, then with ``masked`` the mask tile) to ``out`` between
    its leader and trailer; returns each tile's offset and size in bytes."""
    placed = []
    if isinstance(fragment, (str, os.PathLike)):
        with open(fragment, "rb") as source:
            size = os.fstat(source.fileno()).st_size
            index = source.read(_MASKED_INDEX.size) if masked else None
            for start, count in _fragment_parts(index, size, fragment):
                source.seek(start + max(count - 4, 0))
                last = source.read(4)
                placed.append((_write_leader(out, count, fragment), count))
                _copy_range(source, start, out, count)
                out.write(last.ljust(4, b"\0"))
    else:
        view = memoryview(fragment).cast("B")
        index = bytes(view[:_MASKED_INDEX.size]) if masked else None
        for start, count in _fragment_parts(index, view.nbytes, "tile bytes"):
            part = view[start:start + count]
            placed.append((_write_leader(out, count, "tile bytes"), count))
            out.write(part)
            out.write(bytes(part[-4:]).ljust(4, b"\0"))
    return placed


def _fragment_parts(index: bytes | None, size: int, name: object) -> list[tuple[int, int]]:
    """``(start, size)`` of the tiles in a fragment of ``size`` bytes: the whole of it (``index`` None), or,
    given the first bytes of a masked fragment, its imagery and mask tiles."""
    if index is None:
        return [(0, size)]
    if len(index) < _MASKED_INDEX.size:
        raise ValueError(f"{name}: {size} bytes are too few for the fragment of a masked tile")
    imagery, mask = _MASKED_INDEX.unpack(index)
    if _MASKED_INDEX.size + imagery + mask != size:
        raise ValueError(f"{name}: not the fragment of a masked tile (its index gives {imagery} + {mask} bytes, "
                         f"it holds {size - _MASKED_INDEX.size}); was it encoded for a layout without a mask?")
    return [(_MASKED_INDEX.size, imagery), (_MASKED_INDEX.size + imagery, mask)]


def _write_leader(out: BinaryIO, size: int, name: object) -> int:
    if not 0 < size <= _CLASSIC_LIMIT:
        raise ValueError(f"{name}: an encoded tile must hold 1 byte to 4 GiB, not {size}")
    out.write(struct.pack("<I", size))
    return out.tell()


def _copy_range(source: BinaryIO, start: int, out: BinaryIO, size: int) -> None:
    """Copy ``size`` bytes of ``source`` from ``start`` to ``out`` at its position, in the kernel where possible."""
    out.flush()
    destination, copied = out.tell(), 0
    if hasattr(os, "copy_file_range"):
        try:
            while copied < size:
                step = os.copy_file_range(source.fileno(), out.fileno(), size - copied, start + copied,
                                          destination + copied)
                if step == 0:
                    break
                copied += step
        except OSError:  # this pair of file systems refuses it: copy the rest in user space
            pass
    source.seek(start + copied)
    out.seek(destination + copied)
    while copied < size:
        chunk = source.read(min(size - copied, 1 << 20))
        if not chunk:
            break
        out.write(chunk)
        copied += len(chunk)
    if out.tell() - destination != size:
        raise OSError(f"{source.name}: changed size while it was copied")


def _could_exceed_classic(layout: CogLayout) -> bool:
    """Whether the COG could pass 4 GiB: every tile at its uncompressed size plus worst-case compressor growth
    (zlib and zstd grow incompressible data by well under 1/64 plus a few bytes; a 4:2:0 JPEG, even at quality
    100 on noise, stays well under the RGB size) plus leader and trailer, and mask tiles likewise."""
    pixels = layout.tile * layout.tile
    raw = pixels * layout.stored_bands * np.dtype(layout.dtype).itemsize
    tile_sizes = [raw + raw // 64 + 1024] + ([pixels // 8 + pixels // 512 + 1024] if layout.mask else [])
    tiles = sum(rows * cols for rows, cols in map(layout.tiles, range(len(layout.levels))))
    directories = 4096 * len(layout.levels) * len(tile_sizes) + 16 * tiles * len(tile_sizes)
    return directories + tiles * sum(tile_sizes) > _CLASSIC_LIMIT


# ---- directories ---------------------------------------------------------------------------------------------

Entry = tuple[int, int, int, bytes]  # tag code, TIFF type, value count, little-endian value bytes


def _entry(code: int, kind: int, values: list[float] | tuple[float, ...] | str | bytes) -> Entry:
    if isinstance(values, str):
        payload = values.encode("utf-8") + b"\0"
        return code, kind, len(payload), payload
    if isinstance(values, bytes):
        return code, kind, len(values), values
    if kind == _RATIONAL:  # numerator, denominator pairs
        return code, kind, len(values) // 2, struct.pack(f"<{len(values)}I", *values)
    formats = {_SHORT: "H", _LONG: "I", _DOUBLE: "d", _LONG8: "Q"}
    return code, kind, len(values), struct.pack(f"<{len(values)}{formats[kind]}", *values)


def _short_or_long(code: int, value: int) -> Entry:
    return _entry(code, _SHORT if value < 2**16 else _LONG, [value])


def _tile_entries(layout: CogLayout, level: int, offsets: list[int], byte_counts: list[int], bigtiff: bool,
                  tile_bytes: int) -> list[Entry]:
    """Size, tile size and tile array entries, common to a level's imagery and mask IFDs (``tile_bytes``: the
    uncompressed size of one of its tiles)."""
    height, width = layout.levels[level]
    return [_short_or_long(256, width), _short_or_long(257, height),
            _short_or_long(322, layout.tile), _short_or_long(323, layout.tile),
            _entry(324, _LONG8 if bigtiff else _LONG, offsets),
            _entry(325, _byte_counts_type(len(byte_counts), tile_bytes, bigtiff), byte_counts)]


def _byte_counts_type(count: int, tile_bytes: int, bigtiff: bool) -> int:
    """The TIFF type libtiff gives TileByteCounts: from the tile count and the uncompressed tile size, on the
    assumption that a compressed tile is at most 10 times its uncompressed size, never from the counts."""
    if bigtiff and (count == 1 or tile_bytes >= _CLASSIC_LIMIT // 10):
        return _LONG8
    if count == 1 or tile_bytes >= 0xFFFF // 10:
        return _LONG
    return _SHORT


def _directory(layout: CogLayout, level: int, geokeys: tuple[Entry, ...], offsets: list[int],
               byte_counts: list[int], bigtiff: bool) -> list[Entry]:
    """The sorted entries of ``level``'s imagery IFD."""
    bits = np.dtype(layout.dtype).itemsize * 8
    bands = layout.stored_bands
    tile_bytes = layout.tile * layout.tile * bands * bits // 8  # JPEG too: libtiff counts it as upsampled RGB
    entries = _tile_entries(layout, level, offsets, byte_counts, bigtiff, tile_bytes) + [
        _entry(258, _SHORT, [bits] * bands),
        _entry(259, _SHORT, [COMPRESSION_CODES[layout.compression]]),
        _entry(277, _SHORT, [bands]), _entry(284, _SHORT, [1]),
        _entry(339, _SHORT, [SAMPLE_FORMATS[layout.dtype]] * bands),
    ]
    if layout.compression == "jpeg":
        entries += [_entry(262, _SHORT, [_YCBCR]), _entry(347, _UNDEFINED, _jpeg_tables(_level(layout))),
                    _entry(530, _SHORT, [2, 2]), _entry(532, _RATIONAL, [0, 1, 255, 1, 128, 1, 255, 1, 128, 1, 255, 1])]
    else:
        entries += [_entry(262, _SHORT, [PHOTOMETRICS[layout.photometric]]), _entry(317, _SHORT, [layout.predictor])]
    extra = bands - (3 if layout.photometric == "rgb" else 1)
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


def _mask_directory(layout: CogLayout, level: int, offsets: list[int], byte_counts: list[int],
                    bigtiff: bool) -> list[Entry]:
    """The sorted entries of ``level``'s mask IFD, as GDAL writes its internal masks."""
    return sorted(_tile_entries(layout, level, offsets, byte_counts, bigtiff, layout.tile * layout.tile // 8) + [
        _entry(254, _LONG, [5 if level else 4]),  # a mask (4), of a reduced-resolution image (1)
        _entry(258, _SHORT, [1]), _entry(259, _SHORT, [COMPRESSION_CODES["deflate"]]),
        _entry(262, _SHORT, [_TRANSPARENCY_MASK]), _entry(277, _SHORT, [1]), _entry(284, _SHORT, [1]),
        _entry(317, _SHORT, [1]), _entry(339, _SHORT, [1]),
    ])


def _front_area(layout: CogLayout, geokeys: tuple[Entry, ...],
                placements: dict[tuple[int, bool], tuple[list[int], list[int]]], bigtiff: bool) -> bytes:
    """Header, ghost area, IFDs with their values, then the tile arrays: everything before the first tile.

    ``placements`` maps each IFD, ``(level, is_mask)``, to its tile offsets and byte counts. The length depends
    on the layout only (entries have fixed sizes), not on the offsets and counts."""
    ifds = [ifd for ifd, _ in _ifds(layout)]
    directories = [_mask_directory(layout, level, *placements[level, True], bigtiff) if is_mask else
                   _directory(layout, level, geokeys, *placements[level, False], bigtiff)
                   for level, is_mask in ifds]
    ghost = MASKED_GHOST_AREA if layout.mask else GHOST_AREA
    inline, entry_format, count_format, offset_format = (8, "<HHQ", "<Q", "<Q") if bigtiff else (4, "<HHI", "<H", "<I")
    entry_size = struct.calcsize(entry_format) + inline
    position = _even((16 if bigtiff else 8) + len(ghost))
    ifd_offsets, values_at = [], {}
    for index, entries in enumerate(directories):
        ifd_offsets.append(position)
        position += struct.calcsize(count_format) + entry_size * len(entries) + inline
        for code, _, _, payload in sorted(entries, key=_value_order):
            if len(payload) > inline and code not in _TILE_ARRAY_TAGS:
                values_at[index, code], position = position, _even(position + len(payload))
    for index in sorted(range(len(ifds)), key=lambda index: ifds[index]):  # by level, each imagery then mask
        for code, _, _, payload in directories[index]:
            if len(payload) > inline and code in _TILE_ARRAY_TAGS:
                values_at[index, code], position = position, _even(position + len(payload))
    front = bytearray(position)
    header = struct.pack("<2sHHHQ", b"II", 43, 8, 0, ifd_offsets[0]) if bigtiff else \
        struct.pack("<2sHI", b"II", 42, ifd_offsets[0])
    front[:len(header) + len(ghost)] = header + ghost
    for index, entries in enumerate(directories):
        at = ifd_offsets[index]
        next_ifd = ifd_offsets[index + 1] if index + 1 < len(directories) else 0
        ifd = [struct.pack(count_format, len(entries))]
        for code, kind, count, payload in entries:
            value = payload.ljust(inline, b"\0") if len(payload) <= inline else \
                struct.pack(offset_format, values_at[index, code])
            ifd.append(struct.pack(entry_format, code, kind, count) + value)
        ifd.append(struct.pack(offset_format, next_ifd))
        ifd_bytes = b"".join(ifd)
        front[at:at + len(ifd_bytes)] = ifd_bytes
        for code, _, _, payload in entries:
            if (index, code) in values_at:
                front[values_at[index, code]:values_at[index, code] + len(payload)] = payload
    return bytes(front)


def _value_order(entry: Entry) -> tuple[int, int]:
    """Where libtiff writes an entry's values: the core TIFF tags' first, then the codec's (JPEGTables), then the
    private tags in the order GDAL sets them (GDAL_METADATA and GDAL_NODATA before the GeoTIFF tags), each
    group by tag code."""
    code = entry[0]
    group = 1 if code == 347 else 2 if code in (42112, 42113) else 3 if code >= 32768 else 0
    return group, code


def _even(position: int) -> int:
    return position + position % 2


def _gdal_metadata(layout: CogLayout) -> str:
    """GDAL_METADATA XML for band descriptions, scales and offsets ('' when all are unset or default).

    Items per band in GDAL's order and format: OFFSET and SCALE together (``%.17g``) when either differs from
    0 and 1, then DESCRIPTION; values are escaped twice, as GDAL writes and reads them."""
    items = []
    for band in range(layout.stored_bands):
        offset = layout.offsets[band] if layout.offsets is not None else 0.0
        scale = layout.scales[band] if layout.scales is not None else 1.0
        description = layout.descriptions[band] if layout.descriptions is not None else None
        values = []
        if offset != 0.0 or scale != 1.0:
            values += [("OFFSET", f"{float(offset):.17g}"), ("SCALE", f"{float(scale):.17g}")]
        if description:
            values.append(("DESCRIPTION", escape(str(description))))
        items += [f'  <Item name="{name}" sample="{band}" role="{name.lower()}">{escape(text)}</Item>\n'
                  for name, text in values]
    return f"<GDALMetadata>\n{''.join(items)}</GDALMetadata>\n" if items else ""


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
