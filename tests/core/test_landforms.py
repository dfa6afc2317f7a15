"""Landform classes against explicit per-cell rules, hand-made terrain, blocked = whole."""
import math
import os

import numpy as np
import pytest
from osgeo import gdal

from core.errors import DemError
from core.grid.progress import RecordingMonitor
from core.grid.raster import RasterInfo, read_array
from core.grid.writing import write_array
from core.terrain import landforms as lf
from core.terrain import tpi as tp
from core.terrain.slope import slope_degrees
from tests.helpers_scripts import load_script

ref = load_script("tests/core/test_tpi.py")


def rule_landform(sn, ln, slope, thr):
    """DESIGN §5 table, one cell at a time."""
    if sn <= -1:
        return 1 if ln <= -1 else (2 if ln < 1 else 3)
    if sn < 1:
        if ln <= -1:
            return 4
        if ln < 1:
            return 5 if slope <= thr else 6
        return 7
    return 8 if ln <= -1 else (9 if ln < 1 else 10)


def rule_position(t, slope, thr):
    if t < -1:
        return 1
    if t < -0.5:
        return 2
    if t <= 0.5:
        return 3 if slope <= thr else 4
    return 5 if t <= 1 else 6


def std(t):
    v = t[np.isfinite(t)]
    return (t - v.mean()) / v.std()


def brute_classes(z, scheme, shape, r_small, r_large, cell, thr=5.0):
    sn = std(ref.brute_tpi(z, shape, r_small, cell=cell))
    ln = std(ref.brute_tpi(z, shape, r_large, cell=cell))
    slope = slope_degrees(z, *cell)
    out = np.zeros(z.shape, np.uint8)
    for (r, c), v in np.ndenumerate(z):
        if np.isnan(v):
            continue
        if scheme == "landforms10":
            out[r, c] = rule_landform(sn[r, c], ln[r, c], slope[r, c], thr)
        else:
            out[r, c] = rule_position(ln[r, c], slope[r, c], thr)
    return out


UTM = ref.UTM


@pytest.mark.parametrize("scheme", lf.SCHEMES)
@pytest.mark.parametrize("shape,units", [("square", "cells"), ("circle", "cells"),
                                         ("circle", "map units"), ("square", "map units")])
def test_classes_match_explicit_rules(scheme, shape, units):
    z = ref.dem_with_holes(24, 26, seed=5) * 1.5
    cell = 20.0
    info = RasterInfo(26, 24, (0, cell, 0, 0, 0, -cell), UTM)
    small, large = (1, 4) if units == "cells" else (25.0, 90.0)
    s = lf.Settings(tp.neighbourhood(shape, small, 0, units, info),
                   tp.neighbourhood(shape, large, 0, units, info), scheme, 5.0)
    got = lf.classify_array(z, s, info)
    scale = 1.0 if units == "cells" else cell
    want = brute_classes(z, scheme, shape, small * (cell / scale) if units == "cells" else small,
                         large * (cell / scale) if units == "cells" else large, (cell, cell))
    np.testing.assert_array_equal(got, want)
    assert set(np.unique(got)) - {0} <= set(lf.CLASSES[scheme])
    assert np.all((got == 0) == np.isnan(z))


def test_annulus_classes_match_explicit_rules():
    z = ref.dem_with_holes(24, 26, seed=9)
    s = lf.Settings(tp.neighbourhood("annulus", 2, 1), tp.neighbourhood("annulus", 5, 3))
    sn = std(ref.brute_tpi(z, "annulus", 2, 1))
    ln = std(ref.brute_tpi(z, "annulus", 5, 3))
    slope = slope_degrees(z, 1.0, 1.0)
    want = np.zeros(z.shape, np.uint8)
    for (r, c), v in np.ndenumerate(z):
        if not np.isnan(v):
            want[r, c] = rule_landform(sn[r, c], ln[r, c], slope[r, c], 5.0)
    np.testing.assert_array_equal(lf.classify_array(z, s, None), want)


def grid(n=41, cell=10.0):
    y, x = np.mgrid[0:n, 0:n] * cell
    return y, x, RasterInfo(n, n, (0, cell, 0, n * cell, 0, -cell), UTM)


def settings(scheme="landforms10", small=2, large=6, shape="circle"):
    return lf.Settings(tp.neighbourhood(shape, small), tp.neighbourhood(shape, large), scheme)


def test_cone_top_is_mountain_top_and_ridge():
    y, x, info = grid()
    z = 1000 - 0.5 * np.hypot(x - 200, y - 200)
    assert lf.classify_array(z, settings(), info)[20, 20] == 10
    assert lf.classify_array(z, settings("slopeposition6"), info)[20, 20] == 6


def test_trench_is_canyon_and_valley():
    y, x, info = grid()
    z = 500 + 0.6 * np.abs(x - 200) + 0.01 * y
    classes = lf.classify_array(z, settings(), info)
    assert np.all(classes[8:-8, 20] == 1)
    # The trench's straight flanks (30°) are open slopes once both windows are off the floor.
    assert np.all(classes[8:-8, 30] == 6)
    assert np.all(lf.classify_array(z, settings("slopeposition6"), info)[8:-8, 20] == 1)


@pytest.mark.parametrize("degrees,landform,position", [(3, 5, 3), (8, 6, 4)])
def test_tilted_plane(degrees, landform, position):
    y, x, info = grid()
    z = 300 + math.tan(math.radians(degrees)) * (x + 0.5 * y) / math.hypot(1, 0.5)
    inner = (slice(8, -8), slice(8, -8))  # off the edges, where clipped windows bias the TPI
    assert np.all(lf.classify_array(z, settings(), info)[inner] == landform)
    assert np.all(lf.classify_array(z, settings("slopeposition6"), info)[inner] == position)


def test_constant_raster_is_plain_and_flat():
    z = np.full((30, 30), 250.0)
    z[3, 4] = np.nan
    mon = RecordingMonitor()
    got = lf.classify_array(z, settings(), None, mon)
    assert np.all(got[np.isfinite(z)] == 5) and got[3, 4] == 0
    assert any("no spread" in w for w in mon.warnings)
    assert np.all(lf.classify_array(z, settings("slopeposition6"), None)[np.isfinite(z)] == 3)


@pytest.mark.parametrize("scheme", lf.SCHEMES)
@pytest.mark.parametrize("in_memory,keep", [(10**9, 0), (0, 10**9), (0, 0)],
                         ids=["whole", "blocked-kept", "blocked-recomputed"])
def test_file_equals_whole_raster(tmp_path, monkeypatch, scheme, in_memory, keep):
    z = ref.dem_with_holes(70, 58, seed=11)
    info = RasterInfo(58, 70, (500000, 30.0, 0, 3000000, 0, -30.0), UTM, nodata=-9999.0)
    src = str(tmp_path / "dem.tif")
    write_array(src, z, info, "Float32", -9999.0)
    z32, info32 = read_array(src)
    s = settings(scheme, 2, 9)
    want = lf.classify_array(z32, s, info32)
    monkeypatch.setattr(lf, "_IN_MEMORY_CELLS", in_memory)
    monkeypatch.setattr(tp, "_KEEP_CELLS", keep)
    out = str(tmp_path / "lf.tif")
    result = lf.landforms_raster(src, out, s, block_size=16)
    ds = gdal.Open(out)
    band = ds.GetRasterBand(1)
    got = band.ReadAsArray()
    np.testing.assert_array_equal(got, want)
    assert band.DataType == gdal.GDT_Byte and band.GetNoDataValue() == 0
    assert ds.GetGeoTransform() == info.geotransform
    names = band.GetCategoryNames()
    assert names[1] == lf.CLASSES[scheme][1][0]
    assert band.GetDefaultRAT().GetRowCount() == len(lf.CLASSES[scheme])
    assert band.GetColorTable().GetColorEntry(1)[:3] == lf.CLASSES[scheme][1][1]
    rows = result["rows"]
    assert sum(r[2] for r in rows) == np.isfinite(z32).sum()
    assert lf.percent_check(rows) == pytest.approx(100.0)
    assert rows[0][3] == pytest.approx(rows[0][2] * 0.0009)


def test_geographic_areas_follow_latitude():
    info = RasterInfo(10, 600, (0.0, 1 / 1200, 0, 60.0, 0, -1 / 12), ref.WGS84)
    areas = lf.row_cell_areas_km2(info)
    assert areas[0] < areas[-1]  # rows further south are wider
    assert areas[300] == pytest.approx(
        np.prod(__import__("core.grid.raster", fromlist=["x"]).ground_pixel_size_m(
            RasterInfo(10, 1, (0.0, 1 / 1200, 0, 60.0 - 300.5 / 12 + 1 / 24, 0, -1 / 12),
                       ref.WGS84))) / 1e6, rel=1e-3)


def test_too_small_and_empty(tmp_path):
    z = np.random.default_rng(0).normal(size=(20, 30))
    with pytest.raises(DemError, match="large neighbourhood window"):
        lf.classify_array(z, settings(large=22))
    src = str(tmp_path / "nan.tif")
    info = RasterInfo(30, 30, (0, 30.0, 0, 0, 0, -30.0), UTM)
    write_array(src, np.full((30, 30), np.nan), info, "Float32", -9999.0)
    with pytest.raises(DemError, match="no valid cell"):
        lf.landforms_raster(src, str(tmp_path / "o.tif"), settings())
    assert not (tmp_path / "o.tif").exists()


# --- the fast path (float32 TPI, class bounds on the raw TPI) against explicit standardising ---

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "data")
DATA_TESTS = os.path.join(os.path.dirname(__file__), "data")
MANDAKINI = os.path.join(DATA, "mandakini_srtm90_utm44.tif")
JACKSBORO = os.path.join(DATA, "jacksboro_fault_srtm3.tif")


def explicit_classes(z, s, cell, stored=np.float32):
    """The straightforward way: TPI grids stored as `stored` (float32: what a Float32 grid and
    SAGA hold), each standardised explicitly with numpy's mean and population sd and stored the
    same way, then DESIGN §5's rules one cell at a time on slope in degrees."""
    std = []
    for nb in s.neighbourhoods:
        t = tp.tpi(z, nb).astype(stored)
        v = t[np.isfinite(t)].astype(np.float64)
        std.append(((t.astype(np.float64) - v.mean()) / v.std()).astype(stored))
    slope = slope_degrees(z, *cell)
    out = np.zeros(z.shape, np.uint8)
    for (r, c), v in np.ndenumerate(z):
        if np.isnan(v) or any(np.isnan(g[r, c]) for g in std):
            continue
        if s.scheme == "landforms10":
            out[r, c] = rule_landform(std[0][r, c], std[1][r, c], slope[r, c], s.slope_threshold)
        else:
            out[r, c] = rule_position(std[0][r, c], slope[r, c], s.slope_threshold)
    return out


def crop(path, rows, cols):
    z, info = read_array(path)
    x0, dx, rx, y0, ry, dy = info.geotransform
    gt = (x0 + cols.start * dx, dx, rx, y0 + rows.start * dy, ry, dy)
    part = z[rows, cols]
    return part, RasterInfo(part.shape[1], part.shape[0], gt, info.crs_wkt, info.nodata)


@pytest.mark.parametrize("scheme", lf.SCHEMES)
@pytest.mark.parametrize("shape,small,large", [
    ("circle", (2, 0), (6, 0)), ("square", (1, 0), (5, 0)), ("annulus", (2, 1), (7, 3))])
@pytest.mark.parametrize("seed", [3, 4])
def test_fast_path_equals_explicit_standardising_on_random_dems(scheme, shape, small, large,
                                                                 seed):
    z = ref.dem_with_holes(31, 37, seed=seed).astype(np.float32)  # holes at an edge, a corner
    s = lf.Settings(tp.neighbourhood(shape, *small), tp.neighbourhood(shape, *large), scheme)
    got = lf.classify_array(z, s, None)
    np.testing.assert_array_equal(got, explicit_classes(z, s, (1.0, 1.0)))
    assert len(np.unique(got)) >= 4  # the DEM really spreads over the classes


@pytest.mark.parametrize("scheme", lf.SCHEMES)
@pytest.mark.parametrize("path,rows,cols,radii", [
    # UTM 89 m cells, a quarter of the crop outside the basin mask (nodata).
    (MANDAKINI, slice(60, 180), slice(120, 250), (180.0, 900.0)),
    # Geographic 3" cells, about 67 × 93 m: radii in metres give elliptical windows in cells.
    (JACKSBORO, slice(100, 190), slice(100, 210), (150.0, 700.0)),
])
def test_fast_path_equals_explicit_standardising_on_real_dems(scheme, path, rows, cols, radii):
    z, info = crop(path, rows, cols)
    s = lf.Settings(tp.neighbourhood("circle", radii[0], 0, "map units", info),
                    tp.neighbourhood("circle", radii[1], 0, "map units", info), scheme)
    got = lf.classify_array(z, s, info)
    np.testing.assert_array_equal(got, explicit_classes(z, s, lf.metric_cell(info)))
    assert np.all((got == 0) == np.isnan(z))


@pytest.mark.parametrize("mean,sd,ties", [
    (0.25, 0.5, True),  # std = 2t − 0.5 exactly: float32 TPIs standardised exactly onto ±1, ±0.5
    (0.37131, 2.30017, False),  # std rounded to float32 on the way
])
def test_classes_at_exact_class_boundaries(mean, sd, ties):
    # TPI values on, just below and just above every float32 value where the stored
    # standardised TPI crosses a class boundary: the bounds must split them exactly as the
    # explicit comparisons of the standardised values do, equality included.
    m = tp.Moments(n=10, mean=mean, m2=10 * sd**2)
    edges = []
    for level, strict in lf.LANDFORM_BOUNDARIES + lf.POSITION_BOUNDARIES:
        b = np.float32(tp.float32_tpi_bound(m, level, strict))
        edges += [np.nextafter(b, np.float32(-np.inf)), b, np.nextafter(b, np.float32(np.inf))]
    t = np.array(edges, dtype=np.float32)
    std = tp.standardised_float32(t, m)
    if ties:
        for level in (-1.0, -0.5, 0.5, 1.0):
            assert np.any(std == level)  # cells standardised exactly onto each level
    small, large = np.meshgrid(t, t, indexing="ij")  # every pair of SN and LN cells
    steep = np.zeros(small.shape, bool)
    steep[::2] = True  # plains and flats on every other row are steep
    slope = np.where(steep, 10.0, 0.0)
    bounds = lf.class_bounds(m, lf.LANDFORM_BOUNDARIES)
    got = lf.classify_landforms10(small, large, bounds, bounds, steep)
    want = np.vectorize(rule_landform)(tp.standardised_float32(small, m),
                                       tp.standardised_float32(large, m), slope, 5.0)
    np.testing.assert_array_equal(got, want)
    assert set(np.unique(got)) == set(range(1, 11))
    got = lf.classify_slopeposition6(small, lf.class_bounds(m, lf.POSITION_BOUNDARIES), steep)
    want = np.vectorize(rule_position)(tp.standardised_float32(small, m), slope, 5.0)
    np.testing.assert_array_equal(got, want)
    assert set(np.unique(got)) == set(range(1, 7))


@pytest.mark.parametrize("mean,sd", [(0.37, 2.3), (-1500.0, 1e-3), (3.0, 3.0), (2.0, 1e-10)])
def test_float32_bound_is_the_last_value_on_its_side(mean, sd):
    m = tp.Moments(n=10, mean=mean, m2=10 * sd**2)
    for level, strict in lf.LANDFORM_BOUNDARIES + lf.POSITION_BOUNDARIES:
        b = tp.float32_tpi_bound(m, level, strict)
        if sd <= tp.SD_NEGLIGIBLE:  # flat: every standardised value is 0
            assert b == (np.inf if (0 < level or (0 == level and not strict)) else -np.inf)
            continue
        after = np.nextafter(np.float32(b), np.float32(np.inf))
        inside = tp.standardised_float32(np.array([b, after], np.float32), m)
        below = inside < level if strict else inside <= level
        assert below.tolist() == [True, False]
        assert b == pytest.approx(mean + level * sd, rel=1e-6, abs=1e-6 * sd)


def checkerboard_dem(n=100):
    """±10 m checkerboard on 500 m plus a millimetre-scale integer-hash ripple (the same values
    on every machine): most standardised TPIs cluster near ±1, so float rounding decides."""
    i, j = np.mgrid[0:n, 0:n]
    ripple = ((i * 73856093) ^ (j * 19349663)) & 0xFFFF
    return (500 + 10.0 * (-1.0) ** (i + j) + 3e-3 * (ripple / 65535.0 - 0.5)).astype(np.float32)


def test_classes_equal_saga_where_float32_rounding_decides():
    # SAGA 8.5's classes of checkerboard_dem() (20 m cells, radii 40 / 60 m), recorded once with
    # saga_cmd ta_morphometry 19 (command stored in the file).
    saga = np.load(os.path.join(DATA_TESTS, "saga_landforms_checkerboard.npz"))["classes"]
    z = checkerboard_dem()
    info = RasterInfo(100, 100, (500000, 20.0, 0, 5000000, 0, -20.0), UTM)
    s = lf.Settings(tp.neighbourhood("circle", 40.0, 0, "map units", info),
                    tp.neighbourhood("circle", 60.0, 0, "map units", info))
    np.testing.assert_array_equal(lf.classify_array(z, s, info), saga)
    np.testing.assert_array_equal(explicit_classes(z, s, (20.0, 20.0)), saga)
    # The same rules on float64 grids put a few cells on the other side of a boundary: what
    # SAGA does here depends on its float32 grids.
    assert np.count_nonzero(explicit_classes(z, s, (20.0, 20.0), np.float64) != saga) >= 1
