"""Reading rasters for the core: open a DEM, its georeferencing, blocks read with a halo.

Arrays handed to callers are float with NaN where the input is nodata (declared value, NaN or
outside the raster). Writing, all or nothing and block by block, is core.grid.writing.
"""
from __future__ import annotations

import html
import math
import os
import re
from dataclasses import dataclass, replace
from typing import Callable, Iterator

import numpy as np
from osgeo import gdal, osr

from ..errors import DemError
from .progress import Monitor

gdal.UseExceptions()


osr.UseExceptions()


DEFAULT_BLOCK = 512


NO_VALID_CELL = "The input raster has no valid cell (every cell is nodata)."


_GDAL_TYPES = {
    "Byte": gdal.GDT_Byte,
    "Int16": gdal.GDT_Int16,
    "UInt16": gdal.GDT_UInt16,
    "Int32": gdal.GDT_Int32,
    "Float32": gdal.GDT_Float32,
    "Float64": gdal.GDT_Float64,
}


_NUMPY_TYPES = {
    "Byte": np.uint8,
    "Int16": np.int16,
    "UInt16": np.uint16,
    "Int32": np.int32,
    "Float32": np.float32,
    "Float64": np.float64,
}


@dataclass(frozen=True)
class RasterInfo:
    """Georeferencing and layout of one band of a raster."""

    width: int
    height: int
    geotransform: tuple[float, float, float, float, float, float]
    crs_wkt: str = ""
    nodata: float | None = None
    band_count: int = 1
    data_type: str = "Float32"

    @property
    def has_crs(self) -> bool:
        return bool(self.crs_wkt)

    @property
    def is_geographic(self) -> bool:
        return self.has_crs and bool(spatial_reference(self.crs_wkt).IsGeographic())

    @property
    def pixel_size(self) -> tuple[float, float]:
        """Cell width and height in CRS units (positive)."""
        gt = self.geotransform
        return math.hypot(gt[1], gt[4]), math.hypot(gt[2], gt[5])

    def scaled(self, scale: int) -> RasterInfo:
        """The grid of the same extent with cells `scale` times smaller (same origin)."""
        x0, dx, rx, y0, ry, dy = self.geotransform
        return replace(
            self,
            width=self.width * scale,
            height=self.height * scale,
            geotransform=(x0, dx / scale, rx / scale, y0, ry / scale, dy / scale),
        )


def spatial_reference(text: str) -> osr.SpatialReference:
    """A CRS from WKT or a code ("EPSG:4979", "EPSG:32644+5773"), with x = easting or longitude
    whatever the authority's axis order; a clear DemError when osr cannot read it."""
    srs = osr.SpatialReference()
    try:
        failed = srs.SetFromUserInput(text) != 0  # an error code when osr exceptions are off
    except RuntimeError as err:
        failed = err
    if failed:
        raise DemError(f"The coordinate reference system cannot be read: {text[:80]!r}.")
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def radii_of_curvature_m(semi_major_m: float, inverse_flattening: float, latitude_deg):
    """Prime-vertical (N) and meridional (M) radii of curvature of an ellipsoid, in metres.

    N = a / √(1 − e² sin²φ) and M = a (1 − e²) / (1 − e² sin²φ)^(3/2), e² = f (2 − f); an
    inverse flattening of 0 is a sphere (GDAL's convention). `latitude_deg` may be an array.
    """
    e2 = 0.0 if inverse_flattening == 0 else (2 - 1 / inverse_flattening) / inverse_flattening
    w = 1 - e2 * np.sin(np.radians(latitude_deg)) ** 2
    return semi_major_m / np.sqrt(w), semi_major_m * (1 - e2) / w**1.5


def geographic_cell_size_m(info: RasterInfo, latitude_deg):
    """Ground width and height in metres of a cell of a geographic raster at a latitude (or an
    array of latitudes), on the CRS's ellipsoid: width along the parallel (N·cos φ), height
    along the meridian (M)."""
    srs = spatial_reference(info.crs_wkt)
    # cos φ vanishes at the poles: clamp so that a polar row keeps a (tiny) positive width.
    lat = np.clip(latitude_deg, -89.9, 89.9)
    prime_vertical, meridional = radii_of_curvature_m(
        srs.GetSemiMajor(), srs.GetInvFlattening(), lat)
    radians_per_unit = srs.GetAngularUnits()
    dx, dy = info.pixel_size
    return (
        dx * radians_per_unit * prime_vertical * np.cos(np.radians(lat)),
        dy * radians_per_unit * meridional,
    )


def ground_pixel_size_m(info: RasterInfo) -> tuple[float, float]:
    """Cell width and height on the ground in metres.

    Projected CRS: CRS units times their length in metres. Geographic CRS: degrees converted on
    the CRS's ellipsoid at the latitude of the raster's centre. No CRS: cell units unchanged (the
    caller warns that distances are then in cells).
    """
    dx, dy = info.pixel_size
    if not info.has_crs:
        return dx, dy
    srs = spatial_reference(info.crs_wkt)
    if not srs.IsGeographic():
        metres_per_unit = srs.GetLinearUnits()
        return dx * metres_per_unit, dy * metres_per_unit
    gt = info.geotransform
    centre_lat = gt[3] + gt[4] * info.width / 2 + gt[5] * info.height / 2
    width_m, height_m = geographic_cell_size_m(info, centre_lat)
    return float(width_m), float(height_m)


def open_raster(path: str) -> gdal.Dataset:
    """Open a raster for reading, with a clear message when that is impossible."""
    if not str(path).startswith("/vsi") and not os.path.exists(path):
        raise DemError(f"The input raster '{path}' does not exist.")
    try:
        ds = gdal.Open(str(path), gdal.GA_ReadOnly)
    except RuntimeError as err:
        raise DemError(f"'{path}' is not a raster GDAL can read ({err}).") from err
    if ds is None or ds.RasterCount == 0:
        raise DemError(f"'{path}' is not a raster GDAL can read (no raster band).")
    if ds.GetDriver().ShortName == "VRT":
        # A VRT opens without its sources; a missing one would fail only at the first read.
        missing = [f for f in _vrt_sources(ds, str(path))
                   if not f.startswith("/vsi") and not os.path.exists(f)]
        if missing:
            shown = ", ".join(f"'{f}'" for f in missing[:5]) + (" …" if len(missing) > 5 else "")
            raise DemError(f"The VRT '{path}' names {len(missing)} source file(s) that do not "
                           f"exist: {shown}.")
    return ds


_SOURCE_FILENAME = re.compile(
    r"<SourceFilename(?P<attrs>[^>]*)>(?P<name>[^<]*)</SourceFilename>")


def _vrt_sources(ds: gdal.Dataset, path: str) -> list[str]:
    """The files band 1 of a VRT reads, as paths (relativeToVRT resolved)."""
    base = os.path.dirname(path)
    files = []
    for xml in (ds.GetRasterBand(1).GetMetadata("vrt_sources") or {}).values():
        for match in _SOURCE_FILENAME.finditer(xml):
            name = html.unescape(match.group("name"))
            if 'relativeToVRT="1"' in match.group("attrs") and not os.path.isabs(name):
                name = os.path.join(base, name)
            files.append(name)
    return files


def read_info(source: str | gdal.Dataset, band: int = 1) -> RasterInfo:
    ds = open_raster(source) if isinstance(source, (str, os.PathLike)) else source
    if not 1 <= band <= ds.RasterCount:
        raise DemError(f"The raster has {ds.RasterCount} band(s); band {band} does not exist.")
    rb = ds.GetRasterBand(band)
    if gdal.DataTypeIsComplex(rb.DataType):
        raise DemError(
            f"'{ds.GetDescription()}' holds complex numbers ({gdal.GetDataTypeName(rb.DataType)}); "
            "an elevation raster holds real ones. If the real part is the elevation, extract it "
            "first (gdal_translate -ot Float32 keeps the real part).")
    return RasterInfo(
        width=ds.RasterXSize,
        height=ds.RasterYSize,
        geotransform=tuple(ds.GetGeoTransform()),
        crs_wkt=ds.GetProjection() or "",
        nodata=rb.GetNoDataValue(),
        band_count=ds.RasterCount,
        data_type=gdal.GetDataTypeName(rb.DataType),
    )


def _read_dtype(info: RasterInfo) -> type:
    # float32 holds every Int16/UInt16/Byte/Float32 value exactly; keep float64 inputs as they are.
    return np.float64 if info.data_type in ("Float64", "Int32", "UInt32") else np.float32


def to_nan(values: np.ndarray, nodata: float | None, dtype: type) -> np.ndarray:
    """Cast to float `dtype` with NaN wherever the cell is nodata or not finite."""
    out = values.astype(dtype, copy=True)
    if nodata is not None and not math.isnan(nodata):
        out[values == nodata] = np.nan
    out[~np.isfinite(out)] = np.nan
    return out


@dataclass(frozen=True)
class Block:
    """The core window of one block, in input cells; reads extend it by `halo` on every side."""

    row: int
    col: int
    height: int
    width: int
    halo: int
    index: int
    count: int


def block_windows(height: int, width: int, block_size: int, halo: int = 0) -> list[Block]:
    """Row-major blocks of at most block_size × block_size covering a height × width grid."""
    if block_size < 1:
        raise DemError("The block size must be at least one cell.")
    rows = range(0, height, block_size)
    cols = range(0, width, block_size)
    count = len(rows) * len(cols)
    return [
        Block(r, c, min(block_size, height - r), min(block_size, width - c), halo, i, count)
        for i, (r, c) in enumerate((r, c) for r in rows for c in cols)
    ]


def read_window(
    band: gdal.Band, info: RasterInfo, row: int, col: int, height: int, width: int, halo: int,
    dtype: type,
) -> np.ndarray:
    """Read (height + 2·halo) × (width + 2·halo) cells around a window; NaN outside the raster."""
    out = np.full((height + 2 * halo, width + 2 * halo), np.nan, dtype=dtype)
    r0, c0 = row - halo, col - halo
    rr0, cc0 = max(r0, 0), max(c0, 0)
    rr1 = min(row + height + halo, info.height)
    cc1 = min(col + width + halo, info.width)
    if rr1 > rr0 and cc1 > cc0:
        try:
            values = band.ReadAsArray(cc0, rr0, cc1 - cc0, rr1 - rr0)
        except RuntimeError as err:
            values, reason = None, str(err)
        else:
            reason = gdal.GetLastErrorMsg()
        if values is None:
            # A truncated or corrupt file, or a VRT source gone since it was opened.
            raise DemError(
                f"Cannot read '{band.GetDataset().GetDescription()}' at rows {rr0}–{rr1 - 1}, "
                f"columns {cc0}–{cc1 - 1}: {reason or 'GDAL gave no reason'}. The file may be "
                "truncated or corrupt.")
        out[rr0 - r0 : rr1 - r0, cc0 - c0 : cc1 - c0] = to_nan(values, info.nodata, dtype)
    return out


# Values that stand for "no data" in DEM products that forget to declare it (SRTM and ASTER
# voids, ESRI grids, float exports); no terrain on Earth is at these elevations.
NODATA_SENTINELS = (-9999.0, -99999.0, -999999.0, -32768.0, -32767.0, -3.4028234663852886e38)


# Cells read to look for them: the whole raster up to this many, sample windows beyond.
_SENTINEL_SAMPLE = 4_000_000


def undeclared_nodata(source: str | gdal.Dataset, band: int = 1
                      ) -> tuple[float, int, float, bool] | None:
    """(value, cells, fraction, sampled) of the most frequent sentinel of NODATA_SENTINELS
    that the raster holds but does not declare as nodata; None when there is none. Rasters over
    _SENTINEL_SAMPLE cells are sampled in windows and the count scaled up (sampled)."""
    ds = open_raster(source) if isinstance(source, (str, os.PathLike)) else source
    info = read_info(ds, band)
    rb = ds.GetRasterBand(band)
    total = info.width * info.height
    sampled = total > _SENTINEL_SAMPLE
    try:
        if not sampled:
            values = rb.ReadAsArray()
        else:
            # 16 × 16 windows of 64² cells spread over the grid: a bounded read however large
            # the raster (a decimated read would decompress every block of a mosaic).
            side = 64
            rows = np.linspace(0, max(info.height - side, 0), 16).astype(int)
            cols = np.linspace(0, max(info.width - side, 0), 16).astype(int)
            values = np.concatenate([
                rb.ReadAsArray(int(c), int(r), min(side, info.width), min(side, info.height))
                .ravel() for r in rows for c in cols])
    except RuntimeError:
        return None  # unreadable: the run itself will say so, naming the window
    if values is None or not np.issubdtype(values.dtype, np.number):
        return None
    best = None
    for sentinel in NODATA_SENTINELS:
        if info.nodata is not None and np.float32(info.nodata) == np.float32(sentinel):
            continue
        hits = int(np.count_nonzero(values == sentinel))
        if hits and (best is None or hits > best[1]):
            best = (sentinel, hits)
    if best is None:
        return None
    fraction = best[1] / values.size
    return best[0], int(round(fraction * total)), fraction, sampled


def warn_undeclared_nodata(source, name: str, monitor: Monitor) -> None:
    """Warn (not refuse: it may be a real value) when a raster holds a common nodata marker it
    does not declare, with the count and how to declare it."""
    found = undeclared_nodata(source)
    if found is None:
        return
    value, cells, fraction, sampled = found
    shown = f"{value:g}"
    monitor.warn(
        f"{name}: {'about ' if sampled else ''}{cells} cells "
        f"({100 * fraction:.2f} %) hold {shown}, a common nodata marker, but the raster does not "
        f"declare it as nodata, so they are taken as elevations. If they are nodata, declare it "
        f"and run again: gdal_edit.py -a_nodata {shown} FILE, or QGIS's Raster ▸ Conversion ▸ "
        f"Translate with 'Assign a specified nodata value to output bands' = {shown}.")


def iter_blocks(
    source: str | gdal.Dataset,
    block_size: int = DEFAULT_BLOCK,
    halo: int = 0,
    band: int = 1,
    monitor: Monitor | None = None,
    dtype: type | None = None,
) -> Iterator[tuple[Block, np.ndarray]]:
    """Yield each block with its halo-padded values, reporting progress and checking cancel."""
    monitor = monitor or Monitor()
    ds = open_raster(source) if isinstance(source, (str, os.PathLike)) else source
    info = read_info(ds, band)
    dtype = dtype or _read_dtype(info)
    rb = ds.GetRasterBand(band)
    for block in block_windows(info.height, info.width, block_size, halo):
        monitor.check()
        yield block, read_window(
            rb, info, block.row, block.col, block.height, block.width, halo, dtype
        )
        monitor.report((block.index + 1) / block.count)


def read_array(source: str | gdal.Dataset, band: int = 1) -> tuple[np.ndarray, RasterInfo]:
    """The whole band as a float array with NaN for nodata, and its georeferencing."""
    ds = open_raster(source) if isinstance(source, (str, os.PathLike)) else source
    info = read_info(ds, band)
    values = read_window(
        ds.GetRasterBand(band), info, 0, 0, info.height, info.width, 0, _read_dtype(info)
    )
    return values, info


BlockFunction = Callable[[np.ndarray, Block], np.ndarray]
