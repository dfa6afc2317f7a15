"""What a chunk kernel is: the interface between the large-area engine (core.largearea.mosaic) and
the algorithms (core/declarations/), which each implement one.

Everything here is small and picklable: a Dask worker receives a Kernel, a Chunk and, for
super-resolution, the model's bytes (ModelBlob), and needs nothing else from the driver.
"""
from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Iterator

import numpy as np
from osgeo import gdal

from ..grid.raster import RasterInfo, _read_dtype, block_windows, open_raster, read_window
from ..grid.writing import GeoTiffWriter
from ..superres import inference
from ..terrain import tpi
from ..terrain.tpi import Moments


@dataclass(frozen=True)
class ModelBlob:
    """An ONNX model's bytes and their SHA-256: what travels to the workers (see docs)."""

    sha256: str
    data: bytes = field(repr=False)

    @classmethod
    def read(cls, path: str) -> ModelBlob:
        with open(path, "rb") as f:
            data = f.read()
        return cls(hashlib.sha256(data).hexdigest(), data)


_SESSIONS: dict[tuple, inference.Session] = {}
_SESSIONS_LOCK = threading.Lock()


def cached_session(card, blob: ModelBlob, device: str, threads: int) -> inference.Session:
    """One onnxruntime session per model, device and thread count in each process: a worker
    loads the model once, not once per chunk."""
    key = (blob.sha256, device, threads)
    with _SESSIONS_LOCK:
        if key not in _SESSIONS:
            _SESSIONS[key] = inference.open_session(card, device, threads, model_bytes=blob.data)
        return _SESSIONS[key]


@dataclass(frozen=True)
class Chunk:
    """One output chunk: its core window in input cells and its file name stem."""

    index: int
    name: str
    row: int
    col: int
    height: int
    width: int


class Kernel:
    """What one algorithm does to a chunk read with `halo` cells around its core."""

    algorithm = ""
    scale: int  # output cells per input cell side
    data_type = "Float32"
    nodata: float | None = None  # None: the input's (core.grid.raster.default_nodata)
    # Names of further rasters a chunk yields beside its result (same grid, type and nodata);
    # pieces() then yields a tuple of arrays, the result first.
    extras: tuple[str, ...] = ()

    @property
    def halo(self) -> int:
        raise NotImplementedError

    @property
    def needs_moments(self) -> bool:
        """Whether a reduction pass over the raster must come first."""
        return False

    def moments(self, padded: np.ndarray) -> list[Moments]:
        raise NotImplementedError

    def moment_labels(self) -> list[str]:
        """What each of moments()' statistics is of, for the log."""
        return []

    def pieces(self, padded: np.ndarray, chunk: Chunk, moments: list[Moments] | None,
               model: ModelBlob | None, threads: int, summary: dict,
               ) -> Iterator[tuple[int, int, np.ndarray]]:
        """(row, column, values) of the chunk's output, in output cells from its corner; values
        is a tuple (result, *extras) when the kernel has extras."""
        raise NotImplementedError

    def describe_output(self, path: str) -> None:
        """Add to the bound result (a VRT) what it carries beside its cells, e.g. a legend."""

    def stats(self, summaries: list[dict]) -> dict:
        """The job's statistics from the summaries pieces() left in each finished chunk."""
        return {}


def sub_windows(padded: np.ndarray, chunk: Chunk, chunk_halo: int, size: int, halo: int):
    """Blocks of at most size × size of the chunk's core, each with its own `halo`, sliced out of
    the chunk's padded window (which holds them all, as halo ≤ chunk_halo)."""
    offset = chunk_halo - halo
    for block in block_windows(chunk.height, chunk.width, size, halo):
        r, c = block.row + offset, block.col + offset
        yield block, padded[r : r + block.height + 2 * halo, c : c + block.width + 2 * halo]


@dataclass(frozen=True)
class Job:
    """Everything a worker needs to compute any chunk of one job (small and picklable)."""

    source: str  # the raster every chunk reads: the input itself or the job's bound VRT
    info: RasterInfo  # the whole input
    kernel: Kernel
    folder: str  # where chunk files go
    out_info: RasterInfo  # the whole output grid (nodata resolved)


_DATASETS = threading.local()


_ALL_DATASET_CACHES: list[dict] = []


_CACHES_LOCK = threading.Lock()


def _dataset(path: str) -> gdal.Dataset:
    """The job's input, opened once per thread and kept open while chunks of the same input
    follow (a VRT of thousands of tiles is parsed once per worker thread, not once per chunk).

    GDAL datasets are not thread-safe, hence one per thread; only the latest input is kept."""
    cache = getattr(_DATASETS, "open", None)
    if cache is None:
        cache = _DATASETS.open = {}
        with _CACHES_LOCK:
            _ALL_DATASET_CACHES.append(cache)
    if path not in cache:
        cache.clear()
        cache[path] = open_raster(path)
    return cache[path]


def release_datasets() -> None:
    """Close this thread's cached input (the in-process engine does at the end of each pass:
    a dataset kept open in a host such as QGIS would outlive GDAL when the host shuts down)."""
    cache = getattr(_DATASETS, "open", None)
    if cache:
        cache.clear()


@atexit.register
def close_datasets() -> None:
    """Close the cached inputs while GDAL is still alive: a dataset freed during interpreter
    teardown, after GDAL's own clean-up, crashes the process."""
    with _CACHES_LOCK:
        for cache in _ALL_DATASET_CACHES:
            cache.clear()


def read_chunk(job: Job, chunk: Chunk) -> np.ndarray:
    """The chunk's core plus the kernel's halo, NaN outside the raster and on nodata."""
    ds = _dataset(job.source)
    return read_window(ds.GetRasterBand(1), job.info, chunk.row, chunk.col, chunk.height,
                       chunk.width, job.kernel.halo, _read_dtype(job.info))


def _core_has_data(padded: np.ndarray, chunk: Chunk, halo: int) -> bool:
    return bool(np.isfinite(padded[halo : halo + chunk.height, halo : halo + chunk.width]).any())


def chunk_moments(job: Job, chunk: Chunk, threads: int = 0) -> dict:
    """Reduction pass: the global-statistics Moments of one chunk's core ([] for no data)."""
    t0 = time.perf_counter()
    padded = read_chunk(job, chunk)
    if not _core_has_data(padded, chunk, job.kernel.halo):
        return {"moments": [], "empty": True, "seconds": time.perf_counter() - t0}
    with tpi.fft_threads(threads):
        moments = [asdict(m) for m in job.kernel.moments(padded)]
    return {"moments": moments, "empty": False, "seconds": time.perf_counter() - t0}


def _named_for(stem: str, extra: str, ext: str) -> str:
    """The file name of a job's result (`extra` empty) or of one of its kernel's extras:
    r0000_c0000.tif, r0000_c0000.spread.tif; chunks.vrt, chunks.spread.vrt."""
    return stem + (f".{extra}" if extra else "") + ext


def chunk_path(job: Job, chunk: Chunk, extra: str = "") -> str:
    """The chunk's result file, or with `extra` that of one of the kernel's extras."""
    return os.path.join(job.folder, _named_for(chunk.name, extra, ".tif"))


def chunk_info(job: Job, chunk: Chunk) -> RasterInfo:
    """The output grid of one chunk: the job's output grid moved to the chunk's corner."""
    s = job.kernel.scale
    x0, dx, rx, y0, ry, dy = job.out_info.geotransform
    r, c = chunk.row * s, chunk.col * s
    return replace(job.out_info, width=chunk.width * s, height=chunk.height * s,
                   geotransform=(x0 + c * dx + r * rx, dx, rx, y0 + c * ry + r * dy, ry, dy))


def compute_chunk(job: Job, chunk: Chunk, moments: list[dict] | None = None,
                  model: ModelBlob | None = None, threads: int = 0) -> dict:
    """Map pass: compute one chunk and write its GeoTIFF atomically; returns its summary.

    A chunk whose core holds no valid cell writes no file ("empty": the VRT has nodata there).
    """
    t0 = time.perf_counter()
    kernel = job.kernel
    padded = read_chunk(job, chunk)
    if not _core_has_data(padded, chunk, kernel.halo):
        return {"empty": True, "seconds": time.perf_counter() - t0}
    merged = [tpi.Moments(**m) for m in moments] if moments is not None else None
    summary: dict = {}
    info = chunk_info(job, chunk)
    # `threads` (0 = every core) bounds the libraries' own threads: a worker process per core
    # must not start a thread per core each.
    with contextlib.ExitStack() as stack:
        writers = [stack.enter_context(GeoTiffWriter(
            chunk_path(job, chunk, extra), info, kernel.data_type, info.nodata,
            compress_threads=threads)) for extra in ("", *kernel.extras)]
        stack.enter_context(tpi.fft_threads(threads))
        for row, col, values in kernel.pieces(padded, chunk, merged, model, threads, summary):
            for writer, band in zip(writers, values if kernel.extras else (values,)):
                writer.write(band, row, col)
                writer.flush()
    summary.update(empty=False, seconds=time.perf_counter() - t0,
                   cells=info.width * info.height)
    return summary
