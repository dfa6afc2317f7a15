"""core.survey.sampling: cell-centre convention, exactness of each method on known surfaces, the
nodata/edge/outside rules, and blocked reads equal to in-memory sampling."""
import numpy as np
import pytest

from core.errors import DemError
from core.grid.raster import RasterInfo, read_info
from core.grid.writing import write_array
from core.survey import sampling

# 1000 m cells, origin (500000, 4000000), north up: cell (r, c) centre = (500500 + 1000c,
# 3999500 − 1000r).
INFO = RasterInfo(width=20, height=15, geotransform=(500000.0, 1000.0, 0.0, 4000000.0, 0.0,
                                                     -1000.0), data_type="Float64")


# reason codes, short so the expected lists line up
OK, OUT, EDG, NOD, POS = (sampling.SAMPLED, sampling.OUTSIDE, sampling.EDGE,
                          sampling.NODATA, sampling.NO_POSITION)


def cell_to_map(col, row):
    return 500000.0 + 1000.0 * (np.asarray(col) + 0.5), 4000000.0 - 1000.0 * (np.asarray(row) + 0.5)


def grid(func):
    r, c = np.mgrid[0:INFO.height, 0:INFO.width].astype(float)
    return func(c, r)


def random_cells(n, margin, seed=0):
    rng = np.random.default_rng(seed)
    col = rng.uniform(margin, INFO.width - 1 - margin, n)
    row = rng.uniform(margin, INFO.height - 1 - margin, n)
    return col, row


def test_cell_centre_convention():
    x, y = cell_to_map([0, 3, -0.5], [0, 2, -0.5])
    col, row = sampling.map_to_cell(INFO, x, y)
    np.testing.assert_allclose(col, [0, 3, -0.5])
    np.testing.assert_allclose(row, [0, 2, -0.5])
    # the upper-left corner of the raster is cell coordinate (−0.5, −0.5)
    col, row = sampling.map_to_cell(INFO, [500000.0], [4000000.0])
    assert (col[0], row[0]) == (-0.5, -0.5)


def test_rotated_geotransform_round_trip():
    info = RasterInfo(10, 10, (100.0, 2.0, 0.5, 200.0, 0.3, -2.0))
    col, row = np.array([1.25, 7.5]), np.array([3.0, 0.75])
    px, py = col + 0.5, row + 0.5
    x = 100.0 + 2.0 * px + 0.5 * py
    y = 200.0 + 0.3 * px - 2.0 * py
    c2, r2 = sampling.map_to_cell(info, x, y)
    np.testing.assert_allclose(c2, col, atol=1e-12)
    np.testing.assert_allclose(r2, row, atol=1e-12)


def test_bilinear_is_exact_on_a_plane():
    z = grid(lambda c, r: 812.0 + 3.5 * c - 1.25 * r)
    col, row = random_cells(500, 0.0)
    x, y = cell_to_map(col, row)
    s = sampling.sample_array(z, INFO, x, y, "bilinear")
    assert s.ok.all()
    np.testing.assert_allclose(s.values, 812.0 + 3.5 * col - 1.25 * row, rtol=0, atol=1e-9)


def test_methods_on_a_quadratic_surface():
    """z = c² + 0.5 r² + c·r (cell units). Keys a = −0.5 reproduces degree-2 polynomials exactly;
    bilinear is exact on c·r but overestimates each squared term by k·t(1 − t); nearest returns
    the value at the nearest cell centre."""
    def f(c, r):
        return c**2 + 0.5 * r**2 + c * r

    z = grid(f)
    col, row = random_cells(400, 1.0, seed=1)
    x, y = cell_to_map(col, row)
    truth = f(col, row)
    cub = sampling.sample_array(z, INFO, x, y, "bicubic")
    np.testing.assert_allclose(cub.values, truth, rtol=0, atol=1e-9)
    lin = sampling.sample_array(z, INFO, x, y, "bilinear")
    tx, ty = col - np.floor(col), row - np.floor(row)
    np.testing.assert_allclose(lin.values - truth, tx * (1 - tx) + 0.5 * ty * (1 - ty),
                               rtol=0, atol=1e-9)
    near = sampling.sample_array(z, INFO, x, y, "nearest")
    np.testing.assert_allclose(near.values, f(np.floor(col + 0.5), np.floor(row + 0.5)))
    # the ranking on this smooth surface: bicubic < bilinear < nearest
    err = {m: np.sqrt(np.mean((s.values - truth) ** 2)) for m, s in
           (("bicubic", cub), ("bilinear", lin), ("nearest", near))}
    assert err["bicubic"] < 1e-9 < err["bilinear"] < err["nearest"]


def test_bicubic_is_not_exact_on_a_cubic():
    # Keys' kernel stops at degree 2: a cubic term leaves an error (shows the test above is tight)
    z = grid(lambda c, r: c**3)
    # (at t = 0.5 the symmetric weights happen to be exact for a cubic, so take t = 0.3)
    x, y = cell_to_map([5.3], [5.0])
    s = sampling.sample_array(z, INFO, x, y, "bicubic")
    assert abs(s.values[0] - 5.3**3) > 1e-3


def test_exact_at_cell_centres_for_every_method():
    z = grid(lambda c, r: np.sin(c) * 100 + r**3)
    col, row = np.array([3, 7, 10]), np.array([4, 2, 9])
    x, y = cell_to_map(col, row)
    for method in sampling.METHODS:
        s = sampling.sample_array(z, INFO, x, y, method)
        np.testing.assert_allclose(s.values, z[row, col], atol=1e-9)


def test_outside_edge_and_nodata_reasons():
    z = grid(lambda c, r: c + r)
    z[5, 5] = np.nan
    col = np.array([-0.5, -0.51, 19.49, 19.5, 0.2, 18.9, 5.0, 5.6, 4.6, 10.0, np.nan])
    row = np.array([3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 5.0, 5.0, 5.0, 10.0, 1.0])
    x, y = cell_to_map(col, row)
    expected = {
        # -0.5 is the raster's left edge (inside); 19.5 its right edge (outside, half-open)
        "nearest": [OK, OUT, OK, OUT, OK, OK, NOD, OK, NOD, OK, POS],
        # bilinear needs a neighbour on each side: within half a cell of the border → edge;
        # (5.6, 5) and (4.6, 5) have the nodata cell (5, 5) in their 2 × 2 stencil
        "bilinear": [EDG, OUT, EDG, OUT, OK, OK, NOD, NOD, NOD, OK, POS],
        # bicubic: 4 × 4 stencil, edge within 1.5 cells of the border
        "bicubic": [EDG, OUT, EDG, OUT, EDG, EDG, NOD, NOD, NOD, OK, POS],
    }
    for method, want in expected.items():
        s = sampling.sample_array(z, INFO, x, y, method)
        assert s.reason.tolist() == want, method
        assert np.isnan(s.values[s.reason != OK]).all()
        assert np.isfinite(s.values[s.reason == OK]).all()


def test_far_away_points_do_not_overflow():
    s = sampling.sample_array(grid(lambda c, r: c), INFO, [1e30, -1e300], [0.0, 0.0], "bicubic")
    assert s.reason.tolist() == [sampling.OUTSIDE, sampling.OUTSIDE]


@pytest.mark.parametrize("method", sampling.METHODS)
def test_blocked_file_sampling_equals_in_memory(tmp_path, method):
    rng = np.random.default_rng(3)
    z = grid(lambda c, r: 1000 + 30 * np.sin(c / 3) * np.cos(r / 4))
    z[rng.random(z.shape) < 0.05] = np.nan
    path = str(tmp_path / "dem.tif")
    write_array(path, z, INFO, "Float64", nodata=-9999.0)
    col = rng.uniform(-2, INFO.width + 1, 3000)
    row = rng.uniform(-2, INFO.height + 1, 3000)
    x, y = cell_to_map(col, row)
    ref = sampling.sample_array(z, INFO, x, y, method)
    for block in (4, 7, 512):  # blocks smaller than the stencil halo and one block for all
        got = sampling.sample_raster(path, x, y, method, block_size=block)
        assert got.reason.tolist() == ref.reason.tolist()
        np.testing.assert_allclose(got.values, ref.values, rtol=0, atol=1e-9, equal_nan=True)
    want = {sampling.OUTSIDE, sampling.NODATA, sampling.SAMPLED}
    if method != "nearest":  # nearest has no stencil beyond the cell: never EDGE
        want.add(sampling.EDGE)
    assert want <= set(ref.reason.tolist())


def test_declared_nodata_value_is_never_sampled(tmp_path):
    z = np.full((6, 6), 100.0)
    z[2, 2] = -9999.0
    info = RasterInfo(6, 6, (0.0, 1.0, 0.0, 6.0, 0.0, -1.0), data_type="Float32", nodata=-9999.0)
    path = str(tmp_path / "n.tif")
    write_array(path, z, info, "Float32", nodata=-9999.0)
    s = sampling.sample_raster(path, [2.5, 3.5], [3.5, 2.5], "nearest")
    assert s.reason.tolist() == [sampling.NODATA, sampling.SAMPLED]
    assert s.values[1] == 100.0


def test_unknown_method_and_reason_names():
    with pytest.raises(DemError, match="Unknown sampling method"):
        sampling.sample_array(np.zeros((3, 3)), INFO, [0], [0], "cubic")
    names = sampling.reason_names(np.array([0, 1, 2, 3, 4, 5], dtype=np.uint8))
    assert names.tolist() == ["ok", "outside", "edge", "nodata", "no_elevation", "no_position"]


def test_a_plan_fits_only_its_grid_and_samples_like_a_fresh_one(tmp_path):
    """(DEMs sharing a plan through survey.assess: tests/core/test_survey.py.)"""
    rng = np.random.default_rng(5)
    z = grid(lambda c, r: 100 + c * r)
    a, b = str(tmp_path / "a.tif"), str(tmp_path / "b.tif")
    write_array(a, z, INFO, "Float64", nodata=-9999.0)
    write_array(b, z + 2.0, INFO, "Float64", nodata=-9999.0)
    other = RasterInfo(10, 10, (500000.0, 2000.0, 0.0, 4000000.0, 0.0, -2000.0),
                       data_type="Float64")
    c = str(tmp_path / "c.tif")
    write_array(c, np.full((10, 10), 7.0), other, "Float64", nodata=-9999.0)
    x, y = cell_to_map(rng.uniform(0, 19, 200), rng.uniform(0, 14, 200))
    plan = sampling.plan_sampling(INFO, x, y, "bicubic", 8)
    assert plan.fits(read_info(a)) and plan.fits(read_info(b)) and not plan.fits(other)
    samples = []
    for path in (a, b):
        shared = sampling.sample_raster(path, x, y, "bicubic", block_size=8, plan=plan)
        fresh = sampling.sample_raster(path, x, y, "bicubic", block_size=8)
        np.testing.assert_array_equal(shared.values, fresh.values)
        np.testing.assert_array_equal(shared.reason, fresh.reason)
        samples.append(shared)
    sa, sb = samples
    assert sa.ok.sum() > 100
    np.testing.assert_allclose(sb.values[sb.ok] - sa.values[sa.ok], 2.0, atol=1e-9)
    # a plan for another grid is not used: c is sampled on its own grid
    sc = sampling.sample_raster(c, x, y, "bicubic", plan=plan)
    assert sc.values[sc.ok] == pytest.approx(7.0)
    assert sc.reason.tolist() == sampling.sample_raster(c, x, y, "bicubic").reason.tolist()


def test_nan_and_inf_cells_without_declared_nodata(tmp_path):
    z = np.full((6, 6), 50.0)
    z[1, 1] = np.nan
    z[4, 4] = np.inf
    info = RasterInfo(6, 6, (0.0, 1.0, 0.0, 6.0, 0.0, -1.0), data_type="Float32")
    path = str(tmp_path / "nan.tif")
    write_array(path, z, info, "Float32")
    from osgeo import gdal

    ds = gdal.Open(path, gdal.GA_Update)
    ds.GetRasterBand(1).DeleteNoDataValue()
    ds.GetRasterBand(1).WriteArray(z.astype(np.float32))
    ds = None
    x, y = [1.5, 4.5, 2.7], [4.5, 1.5, 3.2]  # centres of (1, 1) and (4, 4), then a valid point
    for method in ("nearest", "bilinear"):
        s = sampling.sample_raster(path, x, y, method)
        assert s.reason.tolist() == [NOD, NOD, OK], method
        assert np.isnan(s.values[:2]).all() and s.values[2] == pytest.approx(50.0)
        mem = sampling.sample_array(z, info, x, y, method)
        assert mem.reason.tolist() == [NOD, NOD, OK]
