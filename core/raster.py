"""Raster I/O for the core: open a DEM, read it in blocks with a halo, write tiled GeoTIFFs.

Arrays handed to callers are float with NaN where the input is nodata (declared value, NaN or
outside the raster). Outputs are tiled, DEFLATE-compressed GeoTIFFs written block by block, so
memory stays bounded by the block size whatever the raster size.
"""
from __future__ import annotations

import contextlib
import glob
import math
import os
import socket
import uuid
from dataclasses import dataclass, replace
from typing import Callable, Iterator, Sequence

import numpy as np
from osgeo import gdal, osr

from .errors import DemError
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
        return self.has_crs and bool(_srs(self.crs_wkt).IsGeographic())

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


def _srs(wkt: str) -> osr.SpatialReference:
    srs = osr.SpatialReference()
    srs.ImportFromWkt(wkt)
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
    srs = _srs(info.crs_wkt)
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
    srs = _srs(info.crs_wkt)
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
    return ds


def read_info(source: str | gdal.Dataset, band: int = 1) -> RasterInfo:
    ds = open_raster(source) if isinstance(source, (str, os.PathLike)) else source
    if not 1 <= band <= ds.RasterCount:
        raise DemError(f"The raster has {ds.RasterCount} band(s); band {band} does not exist.")
    rb = ds.GetRasterBand(band)
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
        values = band.ReadAsArray(cc0, rr0, cc1 - cc0, rr1 - rr0)
        out[rr0 - r0 : rr1 - r0, cc0 - c0 : cc1 - c0] = to_nan(values, info.nodata, dtype)
    return out


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


def default_nodata(info: RasterInfo, data_type: str) -> float:
    """Nodata for an output: the input's declared value when the output type holds it, else a
    value no valid cell can take (NaN for floats)."""
    if data_type.startswith("Float"):
        if info.nodata is not None and np.float32(info.nodata) == info.nodata:
            return float(info.nodata)
        return float("nan")
    raise DemError(f"An integer output ({data_type}) needs an explicit nodata value.")


PARTIAL_TAG = ".partial-"


def partial_path(path: str) -> str:
    """A temporary name for `path` in the same folder (so the final rename is atomic), hidden,
    and unique to this host and process: two runs never write the same temporary file."""
    folder, name = os.path.split(os.path.abspath(path))
    token = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return os.path.join(folder, f".{name}{PARTIAL_TAG}{token}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_partials(path: str) -> list[str]:
    """Delete temporaries of `path` left by killed runs on this host (their process is gone).

    Temporaries of live processes and of other hosts (a shared folder) are left alone; nobody
    reads them, so at worst they cost disk until the next run on their own host."""
    folder, name = os.path.split(os.path.abspath(path))
    prefix = f".{name}{PARTIAL_TAG}{socket.gethostname()}-"
    removed = []
    for candidate in glob.glob(os.path.join(glob.escape(folder), glob.escape(prefix) + "*")):
        pid_text = candidate[len(os.path.join(folder, prefix)):].split("-", 1)[0]
        if candidate.endswith(".aux.xml") or not pid_text.isdigit():
            continue
        if not _pid_alive(int(pid_text)):
            remove_raster(candidate)
            removed.append(candidate)
    return removed


def commit_partial(partial: str, path: str) -> None:
    """Move a finished temporary raster (and its .aux.xml) into place under `path`.

    The raster itself is renamed last and in one step, so `path` is either the old file, absent,
    or the complete new one. An old side-car of `path` is removed first: it describes the old
    raster (class names, statistics) and would otherwise be read as the new one's."""
    for suffix in (".aux.xml", ".ovr"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    if os.path.exists(partial + ".aux.xml"):
        os.replace(partial + ".aux.xml", path + ".aux.xml")
    os.replace(partial, path)


class GeoTiffWriter:
    """A tiled, compressed GeoTIFF written block by block under a temporary name in the output
    folder, renamed to its final name only when it is complete.

    Use as a context manager: on success the file is closed and moved into place; an exception
    inside the block (cancellation included) deletes the temporary file. A run that is killed
    (SIGTERM, SIGKILL, power loss) leaves at most a hidden `.NAME.partial-…` file, which the next
    writer of the same output on this host deletes; never a partial raster under the final name.
    """

    TILE = 256

    def __init__(self, path: str, info: RasterInfo, data_type: str = "Float32",
                 nodata: float | None = None, compress_threads: int = 0):
        if data_type not in _GDAL_TYPES:
            raise DemError(f"Unsupported output type {data_type}.")
        self.path = str(path)
        self.info = info
        self.data_type = data_type
        self.nodata = default_nodata(info, data_type) if nodata is None else float(nodata)
        self._dtype = _NUMPY_TYPES[data_type]
        # 0: every core; a one-thread Dask worker process passes 1.
        self.compress_threads = int(compress_threads)
        check_writable(self.path)
        remove_stale_partials(self.path)
        self.partial = partial_path(self.path)
        self._ds = self._create()
        self._band = self._ds.GetRasterBand(1)
        self._band.SetNoDataValue(self.nodata)

    def _create(self) -> gdal.Dataset:
        predictor = "3" if self.data_type.startswith("Float") else "2"
        if self.data_type == "Byte":
            predictor = "1"
        options = [
            "TILED=YES",
            f"BLOCKXSIZE={self.TILE}",
            f"BLOCKYSIZE={self.TILE}",
            "COMPRESS=DEFLATE",
            f"PREDICTOR={predictor}",
            # IF_SAFER switches to BigTIFF whenever a compressed file might pass 4 GB.
            "BIGTIFF=IF_SAFER",
            # Tiles are compressed on every core when they are flushed (same bytes as one thread).
            f"NUM_THREADS={self.compress_threads or 'ALL_CPUS'}",
        ]
        try:
            ds = gdal.GetDriverByName("GTiff").Create(
                self.partial, self.info.width, self.info.height, 1, _GDAL_TYPES[self.data_type],
                options,
            )
        except RuntimeError as err:
            raise DemError(f"Cannot write '{self.path}': {err}") from err
        ds.SetGeoTransform(self.info.geotransform)
        if self.info.crs_wkt:
            ds.SetProjection(self.info.crs_wkt)
        return ds

    def write(self, values: np.ndarray, row: int, col: int) -> None:
        """Write a block at (row, col) of the output grid; NaN becomes the output nodata."""
        if np.issubdtype(values.dtype, np.floating):
            values = np.where(np.isnan(values), self.nodata, values)
        self._band.WriteArray(values.astype(self._dtype, copy=False), col, row)

    def flush(self) -> None:
        # Writing dirty tiles out bounds memory by the block size instead of GDAL's cache.
        self._ds.FlushCache()

    @property
    def dataset(self) -> gdal.Dataset:
        """The open dataset, for what belongs in the file besides pixels (colour table, names)."""
        return self._ds

    def _close(self) -> None:
        if self._ds is not None:
            self._ds.FlushCache()
            self._band = None
            self._ds = None

    def close(self) -> None:
        """Finish the file and move it into place under its final name."""
        if self._ds is None:
            return
        self._close()
        try:
            commit_partial(self.partial, self.path)
        except OSError as err:
            remove_raster(self.partial)
            raise DemError(f"Cannot write '{self.path}': {err}") from err

    def abort(self) -> None:
        """Drop the temporary file; the final name is left as it was."""
        self._close()
        remove_raster(self.partial)

    def __enter__(self) -> GeoTiffWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def check_writable(path: str) -> None:
    """DemError unless a file can be created at `path` (its folder exists and is writable)."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise DemError(f"Cannot write '{path}': the folder '{folder}' does not exist.")
    if not os.access(folder, os.W_OK):
        raise DemError(f"Cannot write '{path}': the folder '{folder}' is not writable.")
    if os.path.isdir(path):
        raise DemError(f"Cannot write '{path}': it is a folder.")


def remove_raster(path: str) -> None:
    """Delete a raster and its side-car files, ignoring ones that do not exist."""
    for candidate in (path, path + ".aux.xml", path + ".ovr"):
        if os.path.exists(candidate):
            os.remove(candidate)


BlockFunction = Callable[[np.ndarray, Block], np.ndarray]


def crop_to_core(result: np.ndarray, block: Block, scale: int) -> np.ndarray:
    """Accept a result for the padded block or for its core and return the core part."""
    core_shape = (block.height * scale, block.width * scale)
    if result.shape == core_shape:
        return result
    h = block.halo * scale
    padded_shape = (core_shape[0] + 2 * h, core_shape[1] + 2 * h)
    if result.shape != padded_shape:
        raise ValueError(
            f"block function returned {result.shape}, expected {core_shape} or {padded_shape}"
        )
    return result[h : h + core_shape[0], h : h + core_shape[1]]


def process_blocks(
    source: str,
    output: str,
    func: BlockFunction,
    *,
    halo: int = 0,
    scale: int = 1,
    block_size: int = DEFAULT_BLOCK,
    data_type: str = "Float32",
    nodata: float | None = None,
    band: int = 1,
    monitor: Monitor | None = None,
    dtype: type | None = None,
    require_valid: bool = False,
    decorate: Callable[[gdal.Dataset], None] | None = None,
    extra_outputs: Sequence[tuple[str, str, float | None]] = (),
) -> RasterInfo:
    """Apply `func` to every halo-padded block of `source` and write the results to `output`.

    `func(padded, block)` gets the block grown by `halo` cells on each side (NaN outside the
    raster and on nodata) and returns either the core or the padded block's result, `scale`
    times larger in each direction. Returns the output's RasterInfo. A cancelled or failed run
    leaves no output file. With `require_valid`, an input without a single valid cell is a
    DemError (and no file) instead of an all-nodata layer. `decorate(dataset)` runs on the new
    output before its first pixel (colour tables, class names: libtiff 4.7, as in GDAL >= 3.10,
    refuses a palette once tiles are written), under the temporary name like the pixels, so a
    failed run leaves no decorated raster behind either. With `extra_outputs` (path,
    data type, nodata) `func` returns one result per output, the main one first; all outputs
    share the grid and are committed together.
    """
    monitor = monitor or Monitor()
    ds = open_raster(source)
    info = read_info(ds, band)
    out_info = replace(info.scaled(scale), band_count=1, data_type=data_type)
    with contextlib.ExitStack() as stack:
        # Every output is committed only if all of them are complete (ExitStack aborts all).
        writer = stack.enter_context(GeoTiffWriter(output, out_info, data_type, nodata))
        if decorate is not None:
            decorate(writer.dataset)
        extras = [stack.enter_context(GeoTiffWriter(path, replace(out_info, data_type=kind),
                                                    kind, value))
                  for path, kind, value in extra_outputs]
        last_row = -1
        seen_valid = False
        for block, padded in iter_blocks(ds, block_size, halo, band, monitor, dtype):
            if block.row != last_row:
                for w in (writer, *extras):
                    w.flush()
                last_row = block.row
            if require_valid and not seen_valid:
                core = padded[halo : halo + block.height, halo : halo + block.width]
                seen_valid = bool(np.isfinite(core).any())
            results = func(padded, block)
            if not extras:
                results = (results,)
            for w, result in zip((writer, *extras), results):
                w.write(crop_to_core(result, block, scale), block.row * scale, block.col * scale)
        if require_valid and not seen_valid:
            raise DemError(NO_VALID_CELL)  # inside the writer: the empty file is deleted
        monitor.check()  # a cancel during the last block still leaves no output
        out_info = replace(out_info, nodata=writer.nodata)
    return out_info


def write_array(path: str, values: np.ndarray, info: RasterInfo, data_type: str = "Float32",
                nodata: float | None = None, monitor: Monitor | None = None,
                decorate: Callable[[gdal.Dataset], None] | None = None) -> RasterInfo:
    """Write a whole array (NaN = nodata) with `info`'s georeferencing, in blocks.
    `decorate(dataset)` runs before the first pixel is written, as in :func:`process_blocks`.
    """
    monitor = monitor or Monitor()
    out_info = replace(info, width=values.shape[1], height=values.shape[0], band_count=1,
                       data_type=data_type)
    with GeoTiffWriter(path, out_info, data_type, nodata) as writer:
        if decorate is not None:
            decorate(writer.dataset)
        for block in block_windows(out_info.height, out_info.width, DEFAULT_BLOCK):
            monitor.check()
            writer.write(
                values[block.row : block.row + block.height, block.col : block.col + block.width],
                block.row, block.col,
            )
            monitor.report((block.index + 1) / block.count)
        monitor.check()  # a cancel during the last block still leaves no output
        out_info = replace(out_info, nodata=writer.nodata)
    return out_info
