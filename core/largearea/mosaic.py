"""Large-area jobs: one algorithm over a raster, a VRT mosaic, or a folder or list of tiles.

The output grid is cut into chunks (about 2048² input cells by default). Each chunk is read with
the halo its algorithm needs and written as its own tiled, compressed GeoTIFF (under a temporary
name, then renamed), by this process or by Dask workers (core.largearea.cluster); a VRT binds the
chunks, and a single GeoTIFF or Cloud-Optimized GeoTIFF can be made from it. A manifest in the job
folder records the job's parameters, the chunk grid and each chunk's state, so the same job run
again computes only what is missing.

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

import contextlib
import os
import shutil
import time
import uuid
from dataclasses import asdict, replace

from osgeo import gdal

from ..declarations import RASTER_ALGORITHMS, SPECS, spec_of
from ..errors import DemError
from ..grid import destinations
from ..grid.progress import Monitor
from ..grid.raster import (
    NO_VALID_CELL,
    RasterInfo,
    block_windows,
    open_raster,
    read_info,
    warn_undeclared_nodata,
)
from ..grid.writing import default_nodata
from ..terrain import tpi
from .chunks import (
    Chunk,
    Job,
    Kernel,
    ModelBlob,
    chunk_moments,
    compute_chunk,
)
from .engine import ChunkFailed, InProcessEngine, JobResult
from .inputs import BOUND_INPUT, _write_text_atomically, bind_tiles, input_stamps, list_tiles
from .manifest import (
    MANIFEST,
    Manifest,
    _clear_job_folder,
    _signature,
    describe_bounds,
    job_folder,
    job_lock,
)
from .outputs import _bind_outputs, _output_kind, _remove_partials, check_free_space, check_paths

DEFAULT_CHUNK = 2048




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


def run_job(algorithm: str, source, output: str, options: dict | None = None, *,
            engine=None, chunk_size: int = DEFAULT_CHUNK, cog: bool = False,
            keep_chunks: bool = False, overwrite: bool = False,
            monitor: Monitor | None = None, spread_output: str | None = None,
            check_nodata: bool = True) -> JobResult:
    """Run one algorithm over a raster, VRT, folder or list of tiles, chunk by chunk.

    `engine`: None or an InProcessEngine (this process), or a core.largearea.cluster.DaskEngine.
    OUTPUT
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
        writers = [n for n in RASTER_ALGORITHMS if "spread" in SPECS[n].extras]
        raise DemError(f"{algorithm} has no spread output; only {', '.join(writers)} writes one.")
    kind = check_paths(source, output, cog, spread_output)
    # A destination without extension is a GeoTIFF with .tif added (core.grid.destinations).
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
    # A GeoPackage that exists gets a new table (core.grid.destinations): nothing is replaced.
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
