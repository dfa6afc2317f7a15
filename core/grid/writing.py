"""Writing rasters all or nothing: tiled GeoTIFFs written block by block under a hidden name and
renamed when complete (then converted to the format asked, core.grid.destinations), the free-space
and writability checks, and removal of what a failed run wrote."""
from __future__ import annotations

import contextlib
import os
import shutil
import sys
import traceback
from dataclasses import replace
from typing import Callable, Sequence

import numpy as np
from osgeo import gdal

from ..errors import DemError
from . import destinations
from .files import partial_path, remove_raster, remove_stale_partials
from .progress import Monitor
from .raster import (
    _GDAL_TYPES,
    _NUMPY_TYPES,
    DEFAULT_BLOCK,
    NO_VALID_CELL,
    Block,
    BlockFunction,
    RasterInfo,
    block_windows,
    iter_blocks,
    open_raster,
    read_info,
)


def default_nodata(info: RasterInfo, data_type: str) -> float:
    """Nodata for an output: the input's declared value when the output type holds it, else a
    value no valid cell can take (NaN for floats)."""
    if data_type.startswith("Float"):
        if info.nodata is not None and np.float32(info.nodata) == info.nodata:
            return float(info.nodata)
        return float("nan")
    raise DemError(f"An integer output ({data_type}) needs an explicit nodata value.")


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
        # The format the destination's extension asks for; the GeoTIFF is converted at the end.
        self.destination = destinations.resolve(self.path)
        self.path = self.destination.path
        check_writable(self.path)
        remove_stale_partials(self.path)
        check_free_bytes(os.path.dirname(os.path.abspath(self.path)),
                         estimated_bytes(info.width * info.height, data_type))
        self.partial = partial_path(self.path)
        self._failed = False  # a write failed: the file is dropped, never flushed again
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
        with self._writing():
            self._band.WriteArray(values.astype(self._dtype, copy=False), col, row)

    def flush(self) -> None:
        # Writing dirty tiles out bounds memory by the block size instead of GDAL's cache.
        with self._writing():
            self._ds.FlushCache()

    @contextlib.contextmanager
    def _writing(self):
        """GDAL's write errors (a full disk, a vanished folder) as a message naming the file."""
        try:
            yield
        except RuntimeError as err:
            self._failed = True
            # The traceback's finished frames (GDAL's own) hold the dataset: release them so
            # that abort() closes it, quietly, instead of the garbage collector, noisily.
            traceback.clear_frames(err.__traceback__)
            folder = os.path.dirname(os.path.abspath(self.path))
            free = shutil.disk_usage(folder).free if os.path.isdir(folder) else 0
            raise DemError(f"Cannot write '{self.path}' ({free / 1e6:.0f} MB free in "
                           f"'{folder}'): {err}") from err

    @property
    def dataset(self) -> gdal.Dataset:
        """The open dataset, for what belongs in the file besides pixels (colour table, names)."""
        return self._ds

    def _close(self) -> None:
        if self._ds is None:
            return
        try:
            if not self._failed:
                with self._writing():
                    self._ds.FlushCache()
        finally:
            self._band = None
            held, self._ds = [self._ds], None
            if self._failed:
                _drop_quietly(held)  # its closing flush fails again; that is reported already
            held.clear()

    def close(self) -> None:
        """Finish the file and move it into place under its final name."""
        if self._ds is None:
            return
        try:
            self._close()
        except DemError:
            remove_raster(self.partial)
            raise
        try:
            destinations.deliver(self.partial, self.destination)
        except OSError as err:
            remove_raster(self.partial)
            raise DemError(f"Cannot write '{self.path}': {err}") from err

    def abort(self) -> None:
        """Drop the temporary file; the final name is left as it was (a write error while
        closing, on a full disk, must not keep the file that fills it)."""
        with contextlib.suppress(DemError):
            self._close()
        remove_raster(self.partial)

    def __enter__(self) -> GeoTiffWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


# Compressed size of an output as a fraction of its raw size, for the free-space check: DEFLATE
# with a predictor keeps about half of a float elevation grid; class codes compress far more.
_COMPRESSED_FRACTION = {"Float32": 0.5, "Byte": 0.1}


def estimated_bytes(cells: int, data_type: str) -> float:
    """About how many bytes a DEFLATE GeoTIFF of `cells` cells of `data_type` takes."""
    itemsize = np.dtype(_NUMPY_TYPES.get(data_type, np.float32)).itemsize
    return cells * itemsize * _COMPRESSED_FRACTION.get(data_type, 0.5)


def check_free_bytes(folder: str, need: float) -> None:
    """DemError, before any work, when `folder` plainly cannot hold `need` bytes."""
    free = shutil.disk_usage(folder).free
    if free < need:
        raise DemError(
            f"Not enough free disk space in '{folder}': the result needs about "
            f"{need / 1e9:.2f} GB (compressed, estimated), {free / 1e9:.2f} GB are free."
        )


def _drop_quietly(held: list) -> None:
    """Close the dataset in `held` (its only reference) whose writes failed, without a second
    report of the same error: GDAL flushes again on closing, and the binding's error there
    would reach Python's "Exception ignored" printer (sys.unraisablehook) as a traceback."""
    hook = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: None
    try:
        held.clear()
    finally:
        sys.unraisablehook = hook


def check_writable(path: str) -> None:
    """DemError unless a file can be created at `path` (its folder exists and is writable)."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise DemError(f"Cannot write '{path}': the folder '{folder}' does not exist.")
    if not os.access(folder, os.W_OK):
        raise DemError(f"Cannot write '{path}': the folder '{folder}' is not writable.")
    if os.path.isdir(path):
        raise DemError(f"Cannot write '{path}': it is a folder.")


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
