"""The least-squares linear yardstick of benchmarks/bench_linear_bound.py on hand-made grids."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core.superres.scoring import block_mean
from tests.helpers_scripts import load_script
from training.dataset import load_dem

bound = load_script("benchmarks/bench_linear_bound.py")


def test_neighbour_differences_by_hand():
    coarse = np.array([[1.0, 2.0], [4.0, 8.0]])
    x = bound.neighbour_differences(coarse, 1)
    assert x.shape == (2, 2, 8)
    # offsets in row-major order, centre left out: (−1,−1) … (1,1); cell (0,0) sees (1,1) = 8
    assert x[0, 0, 7] == 7.0 and x[0, 0, 4] == 1.0 and np.isnan(x[0, 0, 0])
    assert x[1, 1, 0] == 1.0 - 8.0


def test_phase_targets_and_upsampling_invert_each_other():
    rng = np.random.default_rng(0)
    fine = rng.normal(size=(12, 9))
    coarse = block_mean(fine, 3)
    targets = bound.phase_targets(fine, coarse, 3)
    # weights that ignore the neighbours give back the parent (nearest-neighbour upsampling)
    # wherever the 3 x 3 window is whole, and NaN on the edge cells where it is not
    flat = bound.upsample_linear(coarse, np.zeros((8, 9)), 3, 1)
    inner = (slice(3, -3), slice(3, -3))
    np.testing.assert_allclose(flat[inner], np.kron(coarse, np.ones((3, 3)))[inner])
    assert np.isnan(flat[:3]).all() and np.isnan(flat[:, -3:]).all()
    # and the targets put back on their parents rebuild the fine grid exactly
    rebuilt = (targets + coarse[:, :, None]).reshape(4, 3, 3, 3).transpose(0, 2, 1, 3)
    np.testing.assert_allclose(rebuilt.reshape(12, 9), fine)


def _write_utm(path: Path, z: np.ndarray, cell: float) -> None:
    from osgeo import gdal, osr

    ds = gdal.GetDriverByName("GTiff").Create(str(path), z.shape[1], z.shape[0], 1,
                                              gdal.GDT_Float32)
    ds.SetGeoTransform((500000.0, cell, 0.0, 3400000.0, 0.0, -cell))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32644)
    ds.SetProjection(srs.ExportToWkt())
    ds.GetRasterBand(1).WriteArray(z)
    ds = None


def test_fit_on_planes_is_exact(tmp_path):
    # On a plane the sub-cell offsets are linear in the neighbour differences, so the fit over
    # two files of different slope and cell size rebuilds a third plane exactly.
    y, x = np.mgrid[0:60, 0:60].astype(np.float64)
    _write_utm(tmp_path / "a.tif", 500 + 0.8 * x - 0.3 * y, 30.0)
    _write_utm(tmp_path / "b.tif", 90 - 2.0 * x + 1.1 * y, 90.0)
    scale, radius = 2, 1
    dems = [load_dem(tmp_path / "a.tif"), load_dem(tmp_path / "b.tif")]
    weights = bound.fit(dems, scale, radius, 2000)
    assert weights.shape == (8, 4)
    plane = 1200 + 0.5 * x + 0.25 * y
    pred = bound.upsample_linear(block_mean(plane, scale), weights, scale, radius)
    inner = (slice(2, -2), slice(2, -2))
    np.testing.assert_allclose(pred[inner], plane[inner], atol=1e-6)
