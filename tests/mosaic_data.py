"""Tiles cut from a real DEM and in-process reference results, for the large-area tests."""
import json
import os

import numpy as np
from osgeo import gdal

from core import attraction
from core.grid.raster import read_info
from core.superres import inference
from core.terrain import landforms, tpi

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JACKSBORO = os.path.join(ROOT, "data", "jacksboro_fault_srtm3.tif")
MANDAKINI = os.path.join(ROOT, "data", "mandakini_srtm90_utm44.tif")

# The options of each algorithm in the tests (TPI standardised: it needs the global reduction).
OPTIONS = {
    "superresolution": {},
    "attraction": {},
    "tpi": {"radius": 3.0, "shape": "circle", "standardize": True},
    "landforms": {},
}


def cut_edges(n: int, parts: int) -> list[int]:
    """Uneven cut positions 0 … n into `parts` pieces (so tiles are not all one size)."""
    edges = np.linspace(0, n, parts + 1).round().astype(int)
    edges[1:-1] += np.arange(1, parts) % 2 * 3  # nudge every other inner edge by 3 cells
    return edges.tolist()


def cut_tiles(dem: str, folder: str, nx: int = 4, ny: int = 4, skip=()) -> list[str]:
    """Cut `dem` into nx × ny GeoTIFF tiles (GDAL computes each tile's georeferencing); tiles
    whose (row, col) is in `skip` are left out, leaving a gap."""
    os.makedirs(folder, exist_ok=True)
    ds = gdal.Open(dem)
    xs, ys = cut_edges(ds.RasterXSize, nx), cut_edges(ds.RasterYSize, ny)
    paths = []
    for i in range(ny):
        for j in range(nx):
            if (i, j) in skip:
                continue
            path = os.path.join(folder, f"tile_{i}_{j}.tif")
            gdal.Translate(path, ds, srcWin=[xs[j], ys[i], xs[j + 1] - xs[j], ys[i + 1] - ys[i]],
                           creationOptions=["COMPRESS=DEFLATE"])
            paths.append(path)
    return paths


def tile_window(dem: str, nx: int, ny: int, i: int, j: int) -> tuple[slice, slice]:
    ds = gdal.Open(dem)
    xs, ys = cut_edges(ds.RasterXSize, nx), cut_edges(ds.RasterYSize, ny)
    return slice(ys[i], ys[i + 1]), slice(xs[j], xs[j + 1])


def reference(algorithm: str, dem: str, output: str, options: dict | None = None) -> str:
    """The single-raster, in-process result of `algorithm` with the test options."""
    o = {**OPTIONS[algorithm], **(options or {})}
    info = read_info(dem)
    if algorithm == "tpi":
        nb = tpi.neighbourhood(o.get("shape", "square"), o.get("radius", 2.0), 0.0,
                               o.get("units", "cells"), info)
        tpi.tpi_raster(dem, output, nb, o.get("standardize", False))
    elif algorithm == "landforms":
        shape, units = o.get("shape", "square"), o.get("units", "cells")
        settings = landforms.Settings(
            tpi.neighbourhood(shape, o.get("small_radius", 2.0), 0.0, units, info),
            tpi.neighbourhood(shape, o.get("large_radius", 22.0), 0.0, units, info),
            o.get("scheme", "landforms10"), o.get("slope_threshold", 5.0))
        landforms.landforms_raster(dem, output, settings)
    elif algorithm == "attraction":
        attraction.upscale_file(dem, output, o.get("scale", 2))
    else:
        inference.superresolve(dem, output, o.get("scale", 2), device="cpu")
    return output


def read(path: str):
    """(values as float64 with NaN for nodata, nodata, geotransform, projection)."""
    ds = gdal.Open(path)
    band = ds.GetRasterBand(1)
    values = band.ReadAsArray().astype(np.float64)
    nodata = band.GetNoDataValue()
    if nodata is not None and not np.isnan(nodata):
        values[values == nodata] = np.nan
    return values, nodata, ds.GetGeoTransform(), ds.GetProjection()


TOLERANCE = {"superresolution": 1e-3, "tpi": 1e-4, "attraction": 0.0, "landforms": 0.0}


def assert_same(algorithm: str, result: str, ref: str) -> None:
    """The mosaic result equals the reference on every cell, within the algorithm's tolerance
    (exactly for classes and attraction), with the same grid and the same nodata cells."""
    a, _, gt_a, crs_a = read(result)
    b, _, gt_b, crs_b = read(ref)
    assert a.shape == b.shape
    assert gt_a == gt_b
    assert crs_a == crs_b
    assert np.array_equal(np.isnan(a), np.isnan(b))
    valid = ~np.isnan(b)
    assert valid.any()
    diff = np.abs(a[valid] - b[valid]).max()
    assert diff <= TOLERANCE[algorithm], f"{algorithm}: max |Δ| {diff}"


class StopAfterChunks:
    """A monitor that asks to stop once `count` chunks of the map pass are finished (what a user
    pressing Cancel or Ctrl-C mid-run does)."""

    def __new__(cls, count: int):
        from core.grid.progress import RecordingMonitor

        class Stop(RecordingMonitor):
            done = 0

            def chunks(self, phase, done, total, cells):
                if phase == "chunks":
                    self.done = done

            def cancelled(self):
                return self.done >= count

        return Stop()


def job_manifest(output: str) -> dict:
    """The resume manifest of the job writing `output`, as the JSON on disk holds it."""
    from core.largearea import manifest as manifests

    with open(os.path.join(manifests.job_folder(output), manifests.MANIFEST)) as f:
        return json.load(f)


def cancelled_run(algorithm: str, source, output: str, stop_after: int, **kwargs) -> dict:
    """Run a job, cancel it once `stop_after` chunks are done, and return its manifest."""
    import pytest

    from core.errors import Cancelled
    from core.largearea import mosaic

    with pytest.raises(Cancelled):
        mosaic.run_job(algorithm, source, output, {}, monitor=StopAfterChunks(stop_after),
                       **kwargs)
    return job_manifest(output)
