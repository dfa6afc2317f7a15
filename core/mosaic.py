"""Large-area jobs: one algorithm over a raster, a VRT mosaic, or a folder or list of tiles.

The output grid is cut into chunks (about 2048² input cells by default). Each chunk is read with
the halo its algorithm needs and written as its own tiled, compressed GeoTIFF (under a temporary
name, then renamed), by this process or by Dask workers (core.cluster); a VRT binds the chunks,
and a single GeoTIFF or Cloud-Optimized GeoTIFF can be made from it. A manifest in the job folder
records the job's parameters, the chunk grid and each chunk's state, so the same job run again
computes only what is missing.

Why the result does not depend on the chunking: every chunk calls the same core functions the
single-raster path calls (tpi.tpi, landforms.classify_block, attraction.upscale_padded,
inference.TileRunner) on a window read with at least the halo those functions need, with the
whole raster's georeferencing (cell size, latitude, normalisation), and writes only its core.
Whole-raster statistics (the mean and sd of TPI for standardisation) are a reduction pass first:
each chunk's Moments, merged in chunk order, so the merge is the same however the chunks were
scheduled.

Chunk functions take plain picklable arguments (Job, Chunk, ModelBlob) and never import Dask or
QGIS, so a worker needs only GDAL, numpy, scipy, onnxruntime (super-resolution) and this package.
"""
from __future__ import annotations

import atexit
import contextlib
import json
import math
import os
import shutil
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Iterable
from xml.sax.saxutils import escape

import numpy as np
from osgeo import gdal, osr

from . import destinations, safety, tpi
from .chunks import _SESSIONS, Chunk, Kernel, ModelBlob, cached_session  # noqa: F401 (API)
from .declarations import RASTER_ALGORITHMS, SPECS, spec_of
from .errors import Cancelled, DemError
from .progress import Monitor
from .raster import (
    NO_VALID_CELL,
    GeoTiffWriter,
    RasterInfo,
    _read_dtype,
    block_windows,
    check_free_bytes,
    check_writable,
    commit_partial,
    default_nodata,
    estimated_bytes,
    open_raster,
    partial_path,
    read_info,
    read_window,
    remove_raster,
    warn_undeclared_nodata,
)

ALGORITHMS = RASTER_ALGORITHMS
DEFAULT_CHUNK = 2048
MANIFEST = "manifest.json"
MANIFEST_FORMAT = "demsr-mosaic"
MANIFEST_VERSION = 1
BOUND_INPUT = "input.vrt"
# What a folder of tiles may hold; anything else in it (world files, READMEs) is ignored.
TILE_EXTENSIONS = (".tif", ".tiff", ".hgt", ".vrt", ".img", ".dem", ".dt0", ".dt1", ".dt2",
                   ".bil", ".asc", ".nc")
LIST_EXTENSIONS = (".txt", ".lst", ".list")

# The options of each algorithm (lower case) and their defaults, from the declarations; tests
# check them against the algorithms' Processing parameters.
DEFAULTS = {name: SPECS[name].defaults() for name in ALGORITHMS}

# The manifest is rewritten at most this often while chunks finish (and always at the end).
_MANIFEST_INTERVAL_S = 2.0


# --- input binding ----------------------------------------------------------------------------


def list_tiles(source) -> list[str] | None:
    """The tiles a job input names: a list, a folder of rasters or a text file listing them (one
    path a line, relative to the file's folder, # for comments); None for a single raster."""
    if isinstance(source, (list, tuple)):
        return [os.path.abspath(str(p)) for p in source]
    path = str(source)
    if os.path.isdir(path):
        names = sorted(n for n in os.listdir(path)
                       if n.lower().endswith(TILE_EXTENSIONS) and not n.startswith("."))
        if not names:
            raise DemError(
                f"The folder '{path}' holds no raster tile (looked for "
                f"{', '.join(TILE_EXTENSIONS)})."
            )
        return [os.path.join(os.path.abspath(path), n) for n in names]
    if path.lower().endswith(LIST_EXTENSIONS) and os.path.isfile(path):
        base = os.path.dirname(os.path.abspath(path))
        with open(path, encoding="utf-8") as f:
            lines = [ln.strip() for ln in f]
        tiles = [os.path.normpath(os.path.join(base, ln)) for ln in lines
                 if ln and not ln.startswith("#")]
        if not tiles:
            raise DemError(f"The tile list '{path}' names no file.")
        return tiles
    return None


# Sidecars that GDAL lists with a raster but that do not change its full-resolution cells; QGIS
# writes statistics into .aux.xml when a layer is shown, which must not void a recorded job.
_UNSTAMPED_SUFFIXES = (".aux.xml", ".ovr")


def input_stamps(read_source: str) -> dict[str, list[int]]:
    """Size and modification time (ns) of every file GDAL reads for `read_source` (a raster, a
    VRT and its sources, or the mosaic of a job's tiles), so that a resumed job notices a tile
    edited, replaced, added or removed since its first chunks were computed."""
    ds = gdal.Open(read_source)
    files = (ds.GetFileList() if ds is not None else None) or [read_source]
    stamps = {}
    for name in files:
        if name.lower().endswith(_UNSTAMPED_SUFFIXES):
            continue
        try:
            st = os.stat(name)
        except OSError:  # /vsimem/, /vsicurl/ …: nothing on this disk to compare
            continue
        stamps[os.path.abspath(name)] = [st.st_size, st.st_mtime_ns]
    return stamps


def describe_input_changes(old: dict | None, new: dict) -> list[str]:
    """The files that differ between two input_stamps() results, in words."""
    if old is None:
        return ["input files: not recorded by the version that started the job"]
    changed = [f"{os.path.basename(p)} changed" for p in sorted(set(old) & set(new))
               if old[p] != new[p]]
    added = [f"{os.path.basename(p)} added" for p in sorted(set(new) - set(old))]
    removed = [f"{os.path.basename(p)} removed" for p in sorted(set(old) - set(new))]
    return changed + added + removed


def _fill_nodata(data_type: str) -> float:
    """Nodata for the gaps of a mosaic whose tiles declare none: NaN for floats, SRTM's −32768
    for Int16, the type's far end otherwise."""
    if data_type.startswith("Float"):
        return float("nan")
    limits = {"Byte": 255, "Int16": -32768, "UInt16": 65535, "Int32": -2147483648,
              "UInt32": 4294967295}
    return float(limits.get(data_type, -32768))


def bind_tiles(tiles: list[str], monitor: Monitor | None = None) -> str:
    """The XML of a VRT mosaic of `tiles` (band 1, absolute paths), checked to be one grid.

    Tiles must share a CRS and a cell size; a tile off the mosaic's cell grid is placed by GDAL's
    nearest-neighbour resampling (with a warning). Gaps between tiles are nodata: the tiles' own
    nodata value, or :func:`_fill_nodata` when no tile declares one.
    """
    monitor = monitor or Monitor()
    missing = [t for t in tiles if not os.path.exists(t)]
    if missing:
        shown = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
        raise DemError(f"{len(missing)} tile(s) of the input do not exist: {shown}")
    first = None
    nodata = None
    for tile in tiles:
        info = read_info(tile)
        gt = info.geotransform
        if gt[2] or gt[4]:
            raise DemError(f"The tile '{tile}' has a rotated geotransform; a mosaic needs "
                           "north-up tiles (gdalwarp them first).")
        if nodata is None and info.nodata is not None:
            nodata = info.nodata
        if first is None:
            first = info
            first_srs = _srs(info.crs_wkt) if info.has_crs else None
            continue
        if info.has_crs != first.has_crs or (
                first_srs is not None and not first_srs.IsSame(_srs(info.crs_wkt))):
            raise DemError(
                f"The tile '{tile}' is in another CRS than '{tiles[0]}'; every tile of a mosaic "
                "must share one CRS (reproject them with gdalwarp first)."
            )
        fx, fy = first.geotransform[1], first.geotransform[5]
        if not (math.isclose(gt[1], fx, rel_tol=1e-6) and math.isclose(gt[5], fy, rel_tol=1e-6)):
            raise DemError(
                f"The tile '{tile}' has cells of {gt[1]:.10g} × {abs(gt[5]):.10g}, the tile "
                f"'{tiles[0]}' of {fx:.10g} × {abs(fy):.10g}; resample the tiles to one "
                "resolution first (gdalwarp -tr)."
            )
        off_x = (gt[0] - first.geotransform[0]) / fx
        off_y = (gt[3] - first.geotransform[3]) / fy
        if abs(off_x - round(off_x)) > 0.01 or abs(off_y - round(off_y)) > 0.01:
            monitor.warn(
                f"The tile '{os.path.basename(tile)}' is not aligned with the mosaic's cell grid "
                f"(offset {off_x - round(off_x):+.3f}, {off_y - round(off_y):+.3f} cells); GDAL "
                "places it by nearest neighbour."
            )
    if nodata is None:
        nodata = _fill_nodata(first.data_type)
    vsi = f"/vsimem/demsr-bind-{uuid.uuid4().hex}.vrt"
    try:
        # "highest": the finest of equal cell sizes is exactly the tiles' own (no averaging).
        ds = gdal.BuildVRT(vsi, tiles, resolution="highest", bandList=[1], VRTNodata=nodata)
        if ds is None:
            raise DemError("GDAL could not bind the tiles into a VRT.")
        ds = None
        return _vsi_text(vsi)
    except RuntimeError as err:
        raise DemError(f"GDAL could not bind the tiles into a VRT: {err}") from err
    finally:
        gdal.Unlink(vsi)


def _srs(wkt: str) -> osr.SpatialReference:
    srs = osr.SpatialReference()
    srs.ImportFromWkt(wkt)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def _vsi_text(path: str) -> str:
    f = gdal.VSIFOpenL(path, "rb")
    try:
        gdal.VSIFSeekL(f, 0, 2)
        size = gdal.VSIFTellL(f)
        gdal.VSIFSeekL(f, 0, 0)
        return gdal.VSIFReadL(1, size, f).decode("utf-8")
    finally:
        gdal.VSIFCloseL(f)


def _write_text_atomically(path: str, text: str) -> None:
    partial = partial_path(path)
    try:
        with open(partial, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, path)
    except OSError as err:
        if os.path.exists(partial):
            os.remove(partial)
        raise DemError(f"Cannot write '{path}': {err}") from err


# --- algorithms on a chunk ----------------------------------------------------------------------
# Each algorithm declares its chunk kernel (core/declarations/); this module knows none by name.


def normalise_options(algorithm: str, options: dict | None) -> dict:
    """The options with every parameter present (Processing defaults for the missing ones),
    checked as both front doors check them."""
    return spec_of(algorithm, chunked=True).validate(options)


def build_kernel(algorithm: str, params: dict, info: RasterInfo, chunk_size: int = DEFAULT_CHUNK,
                 monitor: Monitor | None = None, spread: bool = False,
                 ) -> tuple[Kernel, ModelBlob | None]:
    """The chunk kernel of an algorithm for this raster, with every check the in-process path
    makes; plus the model to ship to workers (super-resolution). `spread`: super-resolution
    also yields the ensemble spread."""
    spec = spec_of(algorithm, chunked=True)
    return spec.kernel(params, info, chunk_size, monitor or Monitor(),
                       ("spread",) if spread else ())


# --- one chunk, anywhere --------------------------------------------------------------------------


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


# --- manifest ---------------------------------------------------------------------------------


def job_folder(output: str) -> str:
    """The folder beside OUTPUT that holds its chunks and manifest: out.tif → out_chunks/."""
    stem, _ = os.path.splitext(os.path.abspath(output))
    return stem + "_chunks"


def describe_bounds(info: RasterInfo, chunk: Chunk) -> str:
    gt = info.geotransform
    xs = [gt[0] + c * gt[1] + r * gt[2] for r in (chunk.row, chunk.row + chunk.height)
          for c in (chunk.col, chunk.col + chunk.width)]
    ys = [gt[3] + c * gt[4] + r * gt[5] for r in (chunk.row, chunk.row + chunk.height)
          for c in (chunk.col, chunk.col + chunk.width)]
    return (f"input rows {chunk.row}–{chunk.row + chunk.height - 1}, columns "
            f"{chunk.col}–{chunk.col + chunk.width - 1}; x {min(xs):.10g} to {max(xs):.10g}, "
            f"y {min(ys):.10g} to {max(ys):.10g}")


class Manifest:
    """The job's record beside its output: parameters, chunk grid, each chunk's state.

    Only the process that drives the job writes it (workers return summaries), always to a
    temporary name renamed into place, so a crash leaves the previous complete manifest."""

    def __init__(self, path: str, data: dict):
        self.path = path
        self.data = data
        self._saved_at = 0.0

    @classmethod
    def new(cls, path: str, signature: dict, chunks: list[Chunk], empty: set[int]) -> Manifest:
        records = [{"name": c.name, "row": c.row, "col": c.col, "height": c.height,
                    "width": c.width, "state": "empty" if c.index in empty else "pending"}
                   for c in chunks]
        data = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "job": signature,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "chunks": records,
                "final": {"state": "pending"}}
        return cls(path, data)

    @classmethod
    def load(cls, path: str) -> Manifest | None:
        if not os.path.exists(path):
            return None
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, json.JSONDecodeError) as err:
            raise DemError(f"The job manifest '{path}' cannot be read ({err}); delete its "
                           "folder or rerun with overwrite to start over.") from err
        if data.get("format") != MANIFEST_FORMAT or data.get("version") != MANIFEST_VERSION:
            raise DemError(f"'{path}' is not a demsr job manifest of version {MANIFEST_VERSION}.")
        return cls(path, data)

    def differences(self, signature: dict) -> list[str]:
        """What differs between the recorded job and `signature`, in words."""
        recorded = self.data["job"]
        out = []
        for key in sorted(set(recorded) | set(signature)):
            old, new = recorded.get(key), signature.get(key)
            if old == new:
                continue
            if key == "input_files":
                out.extend(describe_input_changes(old, new))
            elif isinstance(old, dict) and isinstance(new, dict):
                for sub in sorted(set(old) | set(new)):
                    if old.get(sub) != new.get(sub):
                        out.append(f"{key}.{sub}: {_short(old.get(sub))} → {_short(new.get(sub))}")
            else:
                out.append(f"{key}: {_short(old)} → {_short(new)}")
        return out

    @property
    def chunks(self) -> list[dict]:
        return self.data["chunks"]

    def save(self, force: bool = True) -> None:
        now = time.monotonic()
        if not force and now - self._saved_at < _MANIFEST_INTERVAL_S:
            return
        _write_text_atomically(self.path, json.dumps(self.data, indent=1))
        self._saved_at = now


def _short(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "…"


# --- the job ----------------------------------------------------------------------------------


@dataclass
class JobResult:
    output: str
    info: RasterInfo  # of the output
    folder: str
    chunks_total: int
    chunks_empty: int
    computed: list[str]  # chunk names computed by this run (map pass)
    reduced: list[str]  # chunk names whose statistics this run computed
    seconds: float
    stats: dict = field(default_factory=dict)
    states: dict = field(default_factory=dict)  # chunk name → done, empty or pending

    def summary(self) -> str:
        """Chunks computed now, taken from an earlier run, and empty: a chunk this run found
        empty counts as empty only, so the three add up to the chunk count."""
        done_now = sum(self.states.get(name) == "done" for name in self.computed)
        done = sum(state == "done" for state in self.states.values())
        return (f"{done_now} chunk(s) computed by this run, {done - done_now} from an earlier "
                f"run, {self.chunks_empty} empty")


class InProcessEngine:
    """Runs the chunk functions one after the other in this process (no Dask)."""

    name = "in-process"

    def describe(self) -> str:
        return "in this process"

    def put(self, value):
        return value

    def check_workers(self, blob: ModelBlob | None, kernel: Kernel, paths: list[str],
                      folder: str) -> dict:
        if blob is not None:
            session = cached_session(kernel.card, blob, kernel.device, 0)
            return {"in-process": session.provider}
        return {}

    def map(self, func: Callable, calls: Iterable[tuple[object, tuple]], monitor: Monitor,
            threads_arg: bool = False):
        try:
            yield from self._map(func, calls, monitor)
        finally:
            release_datasets()

    def _map(self, func: Callable, calls: Iterable[tuple[object, tuple]], monitor: Monitor):
        for key, args in calls:
            monitor.check()
            t0 = time.perf_counter()
            try:
                result = func(*args)
            except (Cancelled, KeyboardInterrupt):
                raise
            except Exception as err:  # any failure of one chunk is reported with its chunk
                raise ChunkFailed(key, f"{type(err).__name__}: {err}"
                                  if not isinstance(err, DemError) else str(err)) from err
            result.setdefault("worker", "in-process")
            result.setdefault("wall", time.perf_counter() - t0)
            yield key, result

    def close(self) -> None:
        pass


class ChunkFailed(Exception):
    """One chunk's computation raised; `key` names the chunk, `message` says why."""

    def __init__(self, key, message: str):
        super().__init__(message)
        self.key = key
        self.message = message


def _signature(algorithm: str, source, params: dict, info: RasterInfo, chunk_size: int,
               kernel: Kernel, output: str, blob: ModelBlob | None, stamps: dict,
               spread_output: str | None) -> dict:
    """What must not change between a run and its resumption."""
    if isinstance(source, (list, tuple)):
        source = [os.path.abspath(str(p)) for p in source]
    else:
        source = os.path.abspath(str(source))
    return {
        "algorithm": algorithm,
        "input": source,
        "input_files": stamps,
        "parameters": {k: v for k, v in params.items()},
        "model_sha256": blob.sha256 if blob is not None else None,
        "output": os.path.abspath(output),
        "spread_output": spread_output,
        "grid": {"width": info.width, "height": info.height,
                 "geotransform": list(info.geotransform), "crs_wkt": info.crs_wkt,
                 "nodata": info.nodata, "data_type": info.data_type,
                 "chunk_size": chunk_size, "halo": kernel.halo, "scale": kernel.scale},
    }


def plan_chunks(info: RasterInfo, chunk_size: int) -> list[Chunk]:
    """The chunk grid, row-major, named by chunk row and column (r0003_c0012)."""
    if chunk_size < 16:
        raise DemError("The chunk size must be at least 16 cells.")
    return [Chunk(b.index, f"r{b.row // chunk_size:04d}_c{b.col // chunk_size:04d}", b.row, b.col,
                  b.height, b.width)
            for b in block_windows(info.height, info.width, chunk_size)]


def empty_by_coverage(source: str, chunks: list[Chunk]) -> set[int]:
    """Chunks whose core no tile covers, from GDAL's data-coverage status (no pixel read): the
    gaps of a sparse mosaic cost nothing."""
    ds = open_raster(source)  # kept alive while its band is used: GDAL would crash otherwise
    band = ds.GetRasterBand(1)
    empty = set()
    for c in chunks:
        try:
            flags, _ = band.GetDataCoverageStatus(c.col, c.row, c.width, c.height)
        except (RuntimeError, AttributeError):
            return set()
        if flags & gdal.GDAL_DATA_COVERAGE_STATUS_UNIMPLEMENTED:
            return set()
        if flags == gdal.GDAL_DATA_COVERAGE_STATUS_EMPTY:
            empty.add(c.index)
    return empty


def check_free_space(folder: str, out_info: RasterInfo, cells: int, single_file: bool) -> None:
    """DemError when the output folder plainly cannot hold the result (an estimate)."""
    need = estimated_bytes(cells, out_info.data_type)
    if single_file:
        need *= 2  # the chunks and the final file exist together for a moment
    check_free_bytes(folder, need)


def _output_kind(output: str, cog: bool, what: str = "OUTPUT") -> str:
    """vrt (binds the chunks), gtiff, cog, or convert (a GeoTIFF made first, then written in
    the format the extension names: core.destinations)."""
    dest = destinations.resolve(output, what, allow_vrt=True)
    if dest.driver == "VRT":
        if cog:
            raise DemError("A Cloud-Optimized GeoTIFF output must end in .tif, not .vrt.")
        return "vrt"
    if not dest.is_geotiff:
        if cog:
            raise DemError(f"A Cloud-Optimized GeoTIFF output must end in .tif, not "
                           f"'{os.path.splitext(output)[1]}'.")
        return "convert"
    return "cog" if cog else "gtiff"


def check_paths(source, output: str, cog: bool = False, spread_output: str | None = None) -> str:
    """The quick checks of a job's input and outputs, before any cluster is started; returns the
    output kind (vrt, gtiff or cog)."""
    kind = _output_kind(output, cog)
    if spread_output:
        _output_kind(spread_output, cog, "The spread output")
        check_writable(os.path.abspath(spread_output))
    if not isinstance(source, (list, tuple)) and not str(source).startswith("/vsi") \
            and not os.path.exists(str(source)):
        raise DemError(f"The input '{source}' does not exist.")
    check_writable(os.path.abspath(output))
    inputs = [("INPUT", str(s)) for s in (source if isinstance(source, (list, tuple))
                                          else [source])]
    if isinstance(source, str) and not os.path.isdir(source):
        with contextlib.suppress(DemError):
            inputs += [("INPUT", tile) for tile in list_tiles(source) or []]
    outputs = [("OUTPUT", destinations.resolve(output, allow_vrt=True).path, "")]
    if spread_output:
        outputs.append(("OUTPUT_SPREAD", destinations.resolve(
            spread_output, "The spread output", allow_vrt=True).path, ""))
    safety.check_apart(inputs, outputs, [("OUTPUT", job_folder(outputs[0][1]))])
    return kind


LOCK = "job.lock"


def _clear_job_folder(folder: str) -> None:
    """Everything in a job folder but this run's lock."""
    for name in os.listdir(folder):
        if name == LOCK:
            continue
        path = os.path.join(folder, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)


def _read_lock(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def job_lock(folder: str, monitor: Monitor):
    """Hold `folder`/job.lock (host, PID, start time) while a run drives the job.

    A lock of a live process, or of another host (whose processes cannot be seen from here),
    refuses the run with the holder's name; a lock whose process is dead on this host is stale
    (a killed run) and taken over with a message. The lock goes when the run ends, and so does
    a folder the lock alone created."""
    from .raster import _pid_alive

    created = not os.path.isdir(folder)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        raise DemError(f"Cannot create the job folder '{folder}': {err}") from err
    path = os.path.join(folder, LOCK)
    mine = {"host": socket.gethostname(), "pid": os.getpid(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "token": uuid.uuid4().hex}
    text = json.dumps(mine)
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _read_lock(path) or {}
            host, pid = holder.get("host", "?"), holder.get("pid")
            if host == mine["host"] and isinstance(pid, int) and not _pid_alive(pid):
                monitor.warn(f"Taking over the job in '{folder}': its lock names process {pid} "
                             f"on this host (started {holder.get('started', '?')}), which is no "
                             "longer running.")
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
                continue
            raise DemError(
                f"Another run is computing this output: '{path}' names host {host}, process "
                f"{pid}, started {holder.get('started', '?')}. Wait for it to finish (or stop "
                "it); if that run is gone for good, delete the lock file and run again.") from None
        except OSError as err:
            raise DemError(f"Cannot lock the job folder '{folder}': {err}") from err
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        break
    try:
        yield path
    finally:
        if (_read_lock(path) or {}).get("token") == mine["token"]:
            with contextlib.suppress(OSError):
                os.remove(path)
        if created and os.path.isdir(folder) and not os.listdir(folder):
            with contextlib.suppress(OSError):
                os.rmdir(folder)


def run_job(algorithm: str, source, output: str, options: dict | None = None, *,
            engine=None, chunk_size: int = DEFAULT_CHUNK, cog: bool = False,
            keep_chunks: bool = False, overwrite: bool = False,
            monitor: Monitor | None = None, spread_output: str | None = None,
            check_nodata: bool = True) -> JobResult:
    """Run one algorithm over a raster, VRT, folder or list of tiles, chunk by chunk.

    `engine`: None or an InProcessEngine (this process), or a core.cluster.DaskEngine. OUTPUT
    `.vrt`: the chunks stay in the job folder and the VRT binds them. `.tif`: a tiled DEFLATE
    GeoTIFF (COG with `cog`) is made from them and the job folder removed (unless
    `keep_chunks` or another output is a VRT). `spread_output` (super-resolution): also the
    self-ensemble's spread (implies the ensemble), .tif or .vrt likewise. A recorded job with
    the same parameters is resumed; one with other parameters, or an existing output, is
    refused unless `overwrite`. `check_nodata`: warn about an undeclared nodata marker in the
    input (the algorithms warn themselves and pass False).
    """
    monitor = monitor or Monitor()
    engine = engine or InProcessEngine()
    t_start = time.perf_counter()
    params = normalise_options(algorithm, options)
    if spread_output and "spread" not in spec_of(algorithm, chunked=True).extras:
        writers = [n for n in ALGORITHMS if "spread" in SPECS[n].extras]
        raise DemError(f"{algorithm} has no spread output; only {', '.join(writers)} writes one.")
    kind = check_paths(source, output, cog, spread_output)
    # A destination without extension is a GeoTIFF with .tif added (core.destinations).
    output = os.path.abspath(destinations.resolve(output, allow_vrt=True).path)
    # Every raster the job writes, by the kernel extra it comes from ("" = the result).
    outputs = {"": (output, kind)}
    if spread_output:
        spread_output = os.path.abspath(
            destinations.resolve(spread_output, "The spread output", allow_vrt=True).path)
        outputs["spread"] = (spread_output, _output_kind(spread_output, cog))
    folder = job_folder(output)
    # One run per job folder at a time: a second one is refused at once, naming the holder.
    with job_lock(folder, monitor):
        return _run_locked(algorithm, source, output, params, engine, chunk_size, cog,
                           keep_chunks, overwrite, monitor, spread_output, kind, outputs, folder,
                           t_start, check_nodata)


def _run_locked(algorithm, source, output, params, engine, chunk_size, cog, keep_chunks,
                overwrite, monitor, spread_output, kind, outputs, folder, t_start,
                check_nodata) -> JobResult:
    """run_job's work once the job folder is locked."""
    manifest_path = os.path.join(folder, MANIFEST)

    tiles = list_tiles(source)
    bound_xml = None
    if tiles is not None:
        monitor.info(f"Binding {len(tiles)} tile(s) into a VRT mosaic.")
        bound_xml = bind_tiles(tiles, monitor)
        probe = f"/vsimem/demsr-probe-{uuid.uuid4().hex}.vrt"
        gdal.FileFromMemBuffer(probe, bound_xml.encode("utf-8"))
        read_source = probe
    else:
        read_source = os.path.abspath(str(source))
    try:
        info = read_info(read_source)
        if info.band_count > 1:
            monitor.info(f"The input has {info.band_count} bands; band 1 is used.")
        if check_nodata:
            warn_undeclared_nodata(read_source, "INPUT", monitor)
        kernel, blob = build_kernel(algorithm, params, info, chunk_size, monitor,
                                    spread=bool(spread_output))
        chunks = plan_chunks(info, chunk_size)
        empty = empty_by_coverage(read_source, chunks)
        stamps = input_stamps(read_source)
    finally:
        if bound_xml is not None:
            gdal.Unlink(probe)
    if len(empty) == len(chunks):
        raise DemError(NO_VALID_CELL)
    out_info = replace(info.scaled(kernel.scale), band_count=1, data_type=kernel.data_type)
    out_info = replace(out_info, nodata=kernel.nodata if kernel.nodata is not None
                       else default_nodata(info, kernel.data_type))
    signature = _signature(algorithm, source, params, info, chunk_size, kernel, output, blob,
                           stamps, spread_output)

    manifest = Manifest.load(manifest_path)
    if manifest is not None:
        diff = manifest.differences(signature)
        if diff and not overwrite:
            raise DemError(
                f"The job folder '{folder}' records a job with other parameters or input ("
                + "; ".join(diff[:6]) + (" …" if len(diff) > 6 else "")
                + "). Rerun with the same parameters and input to resume it, or ask to overwrite "
                "(--overwrite) to start over."
            )
        if diff:
            monitor.info(f"Parameters or input changed; discarding the recorded job in '{folder}'.")
            _clear_job_folder(folder)
            manifest = None
    finals = [path for path, _ in outputs.values()]
    # A GeoPackage that exists gets a new table (core.destinations): nothing is replaced.
    existing = [path for path in finals if os.path.exists(path)
                and not destinations.resolve(path, allow_vrt=True).append]
    if manifest is None and existing and not overwrite:
        raise DemError(f"The output '{existing[0]}' already exists; ask to overwrite "
                       "(--overwrite) to replace it.")
    if manifest is not None and manifest.data["final"]["state"] == "done" \
            and len(existing) == len(finals):
        monitor.info(f"'{output}' is complete (recorded in {manifest_path}); nothing to do.")
        return _result(manifest, output, out_info, folder, [], [], t_start, kernel)
    cells = sum(c.height * c.width for c in chunks if c.index not in empty) * kernel.scale ** 2
    single_files = [k for _, k in outputs.values() if k != "vrt"]
    check_free_space(os.path.dirname(output), out_info, cells * len(outputs), bool(single_files))

    # Everything that can be checked here has been: now the workers, then the work.
    source_path = os.path.join(folder, BOUND_INPUT) if bound_xml is not None else read_source
    worker_paths = [tiles[0]] if tiles else [read_source]
    providers = engine.check_workers(blob, kernel, worker_paths, os.path.dirname(output))
    if providers and blob is not None:
        monitor.info(f"Super-resolution providers: {', '.join(sorted(set(providers.values())))}.")
    os.makedirs(folder, exist_ok=True)
    if bound_xml is not None and not os.path.exists(source_path):
        _write_text_atomically(source_path, bound_xml)
    if manifest is None:
        manifest = Manifest.new(manifest_path, signature, chunks, empty)
        manifest.save()
    _remove_partials(folder)
    job = Job(source_path, info, kernel, folder, out_info)
    model = engine.put(blob) if blob is not None else None
    monitor.info(
        f"{len(chunks)} chunk(s) of up to {chunk_size}² input cells ({len(empty)} empty), "
        f"halo {kernel.halo}, {engine.describe()}; job folder {folder}."
    )

    reduced: list[str] = []
    computed: list[str] = []
    records = manifest.chunks
    try:
        moments = None
        if kernel.needs_moments:
            moments = _reduce(job, chunks, records, engine, manifest, monitor.part(0.0, 0.4),
                              reduced)
            monitor.check()
        _map(job, chunks, records, moments, model, engine, manifest, monitor.part(
            0.4 if kernel.needs_moments else 0.0, 0.95 if single_files else 1.0), computed)
    finally:
        manifest.save()
    if not any(r["state"] == "done" for r in records):
        raise DemError(NO_VALID_CELL)

    _bind_outputs(outputs, job, chunks, records, monitor.part(0.95, 1.0))
    manifest.data["final"] = {"state": "done", "output": output, "format": kind,
                              "spread_output": spread_output}
    manifest.save()
    result = _result(manifest, output, out_info, folder, computed, reduced, t_start, kernel)
    # A VRT output binds the chunk files, so the folder stays whenever there is one.
    if len(single_files) == len(outputs) and not keep_chunks:
        shutil.rmtree(folder, ignore_errors=True)
    monitor.report(1.0)
    return result


def _bind_outputs(outputs: dict[str, tuple[str, str]], job: Job, chunks: list[Chunk],
                  records: list[dict], monitor: Monitor) -> None:
    """Each output (kernel extra → path, kind) from the finished chunks: a VRT of them, or a
    GeoTIFF / COG translated from such a VRT in the job folder."""
    single = [extra for extra, (_, kind) in outputs.items() if kind != "vrt"]
    for extra, (path, kind) in outputs.items():
        vrt = path if kind == "vrt" else os.path.join(job.folder,
                                                      _named_for("chunks", extra, ".vrt"))
        write_chunk_vrt(vrt, job, chunks, records, extra)
        if kind != "vrt":
            i = single.index(extra)
            translate(vrt, path, job.out_info.data_type, kind == "cog",
                      monitor.part(i / len(single), (i + 1) / len(single)))


def _remove_partials(folder: str) -> None:
    """Temporary files of chunk writers that died (a killed worker); nobody will finish them."""
    from .raster import PARTIAL_TAG, remove_stale_partials

    names = {n.split(PARTIAL_TAG)[0][1:] for n in os.listdir(folder) if PARTIAL_TAG in n}
    for name in names:
        remove_stale_partials(os.path.join(folder, name))


def _reduce(job, chunks, records, engine, manifest, monitor, reduced) -> list[tpi.Moments]:
    """Reduction pass: every chunk's Moments (kept in the manifest), merged in chunk order."""
    todo = [c for c in chunks if records[c.index]["state"] != "empty"
            and records[c.index].get("moments") is None]
    progress = _Progress("statistics", len(chunks) - len(todo), len(chunks), monitor)
    calls = ((c, (job, c)) for c in todo)
    # closing(): a stop in this loop (cancel, error) cancels the tasks still out at once.
    with contextlib.closing(engine.map(chunk_moments, calls, monitor, threads_arg=True)) as results:
        for chunk, result in results:
            record = records[chunk.index]
            record["moments"] = result["moments"]
            record["statistics"] = {k: result[k] for k in ("seconds", "wall", "worker")
                                    if k in result}
            if result["empty"]:
                record["state"] = "empty"
            reduced.append(chunk.name)
            manifest.save(force=False)
            progress.advance(chunk.height * chunk.width)
    merged = _merge_moments(records)
    if merged is None or merged[0].n == 0:
        raise DemError(NO_VALID_CELL)
    for label, m in zip(job.kernel.moment_labels(), merged):
        tpi.log_moments(monitor, label, m)
    return merged


class _Progress:
    """Chunks done of one pass, told to the monitor as a fraction and as counts."""

    def __init__(self, phase: str, done: int, total: int, monitor: Monitor):
        self.phase, self.done, self.total, self.monitor = phase, done, total, monitor
        self.cells = 0
        monitor.chunks(phase, done, total, 0)

    def advance(self, cells: int) -> None:
        self.done += 1
        self.cells += cells
        self.monitor.report(self.done / self.total)
        self.monitor.chunks(self.phase, self.done, self.total, self.cells)


def _merge_moments(records: list[dict]) -> list[tpi.Moments] | None:
    """The chunks' Moments merged in chunk order, whatever order the chunks finished in."""
    merged: list[tpi.Moments] | None = None
    for record in records:
        for_chunk = record.get("moments") or []
        if not for_chunk:
            continue
        if merged is None:
            merged = [tpi.Moments() for _ in for_chunk]
        for total_m, m in zip(merged, for_chunk):
            total_m.merge(tpi.Moments(**m))
    return merged


def _map(job, chunks, records, moments, model, engine, manifest, monitor, computed) -> None:
    """Map pass: compute and write every pending chunk, recording each as it finishes."""
    todo = [c for c in chunks if records[c.index]["state"] == "pending"]
    progress = _Progress("chunks", len(chunks) - len(todo), len(chunks), monitor)
    plain = [asdict(m) for m in moments] if moments is not None else None
    calls = ((c, (job, c, plain, model)) for c in todo)
    try:
        with contextlib.closing(engine.map(compute_chunk, calls, monitor,
                                           threads_arg=True)) as results:
            for chunk, result in results:
                record = records[chunk.index]
                record["state"] = "empty" if result.pop("empty") else "done"
                record["summary"] = result
                computed.append(chunk.name)
                manifest.save(force=False)
                progress.advance(chunk.height * chunk.width * job.kernel.scale ** 2)
    except ChunkFailed as err:
        chunk = err.key
        finished = sum(r["state"] == "done" for r in records)
        raise DemError(
            f"Chunk {chunk.name} ({describe_bounds(job.info, chunk)}) failed: {err.message}. "
            f"The {finished} finished chunk(s) are kept in '{job.folder}'; fix the cause and "
            "run the same command again to compute only the missing ones."
        ) from err


def write_chunk_vrt(path: str, job: Job, chunks: list[Chunk], records: list[dict],
                    extra: str = "") -> None:
    """A VRT of the whole output grid with one source per finished chunk (empty ones are nodata
    through the VRT's own nodata), written under a temporary name and renamed into place;
    `extra` names one of the kernel's extras to bind instead of the result."""
    info = job.out_info
    s = job.kernel.scale
    gdal_type = {"Byte": "Byte", "Float32": "Float32"}[info.data_type]
    base = os.path.dirname(os.path.abspath(path))
    lines = [f'<VRTDataset rasterXSize="{info.width}" rasterYSize="{info.height}">']
    if info.crs_wkt:
        mapping = ",".join(str(a) for a in _srs(info.crs_wkt).GetDataAxisToSRSAxisMapping())
        lines.append(f'  <SRS dataAxisToSRSAxisMapping="{mapping}">{escape(info.crs_wkt)}</SRS>')
    lines.append("  <GeoTransform>" + ", ".join(repr(float(v)) for v in info.geotransform)
                 + "</GeoTransform>")
    lines.append(f'  <VRTRasterBand dataType="{gdal_type}" band="1">')
    lines.append(f"    <NoDataValue>{_nodata_text(info.nodata)}</NoDataValue>")
    for chunk in chunks:
        if records[chunk.index]["state"] != "done":
            continue
        rel = os.path.relpath(chunk_path(job, chunk, extra), base)
        w, h = chunk.width * s, chunk.height * s
        lines += [
            "    <SimpleSource>",
            f'      <SourceFilename relativeToVRT="1">{escape(rel)}</SourceFilename>',
            "      <SourceBand>1</SourceBand>",
            f'      <SourceProperties RasterXSize="{w}" RasterYSize="{h}" '
            f'DataType="{gdal_type}" BlockXSize="{GeoTiffWriter.TILE}" '
            f'BlockYSize="{GeoTiffWriter.TILE}" />',
            f'      <SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}" />',
            f'      <DstRect xOff="{chunk.col * s}" yOff="{chunk.row * s}" xSize="{w}" '
            f'ySize="{h}" />',
            "    </SimpleSource>",
        ]
    lines += ["  </VRTRasterBand>", "</VRTDataset>", ""]
    partial = partial_path(path)
    try:
        with open(partial, "w", encoding="utf-8") as f:
            f.write("\n".join(lines))
        if not extra:
            job.kernel.describe_output(partial)
        commit_partial(partial, path)
    except (OSError, RuntimeError) as err:
        remove_raster(partial)
        raise DemError(f"Cannot write '{path}': {err}") from err


def _nodata_text(value: float) -> str:
    if value is None or math.isnan(value):
        return "nan"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def translate(vrt: str, output: str, data_type: str, cog: bool, monitor: Monitor) -> None:
    """The bound chunks as one tiled, DEFLATE-compressed GeoTIFF (or COG), made under a temporary
    name and renamed into place; the legend and nodata come from the VRT."""
    predictor = "1" if data_type == "Byte" else "3"
    if cog:
        options = ["COMPRESS=DEFLATE", f"PREDICTOR={'NO' if data_type == 'Byte' else 'YES'}",
                   "BIGTIFF=IF_SAFER", "NUM_THREADS=ALL_CPUS", "OVERVIEWS=AUTO"]
    else:
        options = ["TILED=YES", f"BLOCKXSIZE={GeoTiffWriter.TILE}",
                   f"BLOCKYSIZE={GeoTiffWriter.TILE}", "COMPRESS=DEFLATE",
                   f"PREDICTOR={predictor}", "BIGTIFF=IF_SAFER", "NUM_THREADS=ALL_CPUS"]
    partial = partial_path(output)

    def progress(fraction, _message, _data):
        monitor.report(fraction)
        return 0 if monitor.cancelled() else 1

    try:
        ds = gdal.Translate(partial, vrt, format="COG" if cog else "GTiff",
                            creationOptions=options, callback=progress)
        if ds is None:
            raise DemError(f"GDAL could not write '{output}'.")
        ds = None
        monitor.check()
        destinations.deliver(partial, destinations.resolve(output, allow_vrt=False))
    except RuntimeError as err:
        remove_raster(partial)
        monitor.check()
        raise DemError(f"Cannot write '{output}': {err}") from err
    except BaseException:
        remove_raster(partial)
        raise


def _result(manifest: Manifest, output: str, out_info: RasterInfo, folder: str,
            computed: list[str], reduced: list[str], t_start: float,
            kernel: Kernel) -> JobResult:
    records = manifest.chunks
    summaries = [r.get("summary") or {} for r in records if r["state"] == "done"]
    stats = kernel.stats(summaries)
    return JobResult(
        output=output, info=out_info, folder=folder, chunks_total=len(records),
        chunks_empty=sum(r["state"] == "empty" for r in records), computed=computed,
        reduced=reduced, seconds=time.perf_counter() - t_start, stats=stats,
        states={r["name"]: r["state"] for r in records},
    )


def worker_check(needs: dict) -> dict:
    """What a worker reports before a job: its host, whether it can read the input and write the
    output folder, and for super-resolution whether onnxruntime loads the model."""
    report = {"host": socket.gethostname(), "pid": os.getpid(), "problems": []}
    for path in needs.get("read", []):
        try:
            open_raster(path)
        except DemError as err:
            report["problems"].append(f"cannot read the input ({err})")
    folder = needs.get("write")
    if folder and not (os.path.isdir(folder) and os.access(folder, os.W_OK)):
        report["problems"].append(
            f"cannot write to the output folder '{folder}' (it must be on storage every worker "
            "sees under the same path)")
    blob, kernel = needs.get("model"), needs.get("kernel")
    if blob is not None:
        try:
            session = cached_session(kernel.card, blob, kernel.device, needs.get("threads", 0))
            report["provider"] = session.provider
        except DemError as err:
            report["problems"].append(str(err))
    return report
