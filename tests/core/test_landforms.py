"""Landform classes against explicit per-cell rules, hand-made terrain, blocked = whole."""
import importlib.util
import math
import os

import numpy as np
import pytest
from osgeo import gdal

from core import landforms as lf
from core import tpi as tp
from core.errors import DemError
from core.progress import RecordingMonitor
from core.raster import RasterInfo, read_array, write_array
from core.terrain import slope_degrees

_spec = importlib.util.spec_from_file_location(
    "tpi_reference", os.path.join(os.path.dirname(__file__), "test_tpi.py"))
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)


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
@pytest.mark.parametrize("keep", [0, 10**9])
def test_blocked_file_equals_whole_raster(tmp_path, monkeypatch, scheme, keep):
    z = ref.dem_with_holes(70, 58, seed=11)
    info = RasterInfo(58, 70, (500000, 30.0, 0, 3000000, 0, -30.0), UTM, nodata=-9999.0)
    src = str(tmp_path / "dem.tif")
    write_array(src, z, info, "Float32", -9999.0)
    z32, info32 = read_array(src)
    s = settings(scheme, 2, 9)
    want = lf.classify_array(z32, s, info32)
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
        np.prod(__import__("core.raster", fromlist=["x"]).ground_pixel_size_m(
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
