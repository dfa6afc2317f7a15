"""core.survey.reproject: hand-known UTM coordinates, lon/lat axis order, failures as NaN, a given
operation (and its inverse) run as written with the default as fallback, and the vectorised
path equal to osr point by point."""
import math

import numpy as np
import pytest
from osgeo import osr

from core.errors import DemError
from core.survey import reproject

WGS84, UTM44 = "EPSG:4326", "EPSG:32644"
A, F = 6378137.0, 1 / 298.257223563  # WGS84 ellipsoid
K0 = 0.9996  # UTM scale on the central meridian


@pytest.fixture(params=[True, False], ids=["osr-exceptions", "osr-error-codes"])
def osr_mode(request):
    """Both ways osr reports errors: core.grid.raster turns exceptions on, a caller may not."""
    before = osr.GetUseExceptions()
    (osr.UseExceptions if request.param else osr.DontUseExceptions)()
    yield
    (osr.UseExceptions if before else osr.DontUseExceptions)()


def meridian_arc(lat_deg: float) -> float:
    """Distance from the equator along the WGS84 meridian (the usual series to e⁶, < 0.1 mm)."""
    e2 = F * (2 - F)
    e4, e6 = e2 * e2, e2 * e2 * e2
    p = math.radians(lat_deg)
    return A * ((1 - e2 / 4 - 3 * e4 / 64 - 5 * e6 / 256) * p
                - (3 * e2 / 8 + 3 * e4 / 32 + 45 * e6 / 1024) * math.sin(2 * p)
                + (15 * e4 / 256 + 45 * e6 / 1024) * math.sin(4 * p)
                - (35 * e6 / 3072) * math.sin(6 * p))


def test_points_on_the_central_meridian_equal_hand_computed_utm():
    # UTM zone 44 has its central meridian at 81° E: easting 500 000 m, northing k0 · M(φ)
    lon = np.array([81.0, 81.0, 81.0])
    lat = np.array([0.0, 30.0, 45.0])
    x, y = reproject.reproject_points(lon, lat, WGS84, UTM44)
    np.testing.assert_allclose(x, 500000.0, rtol=0, atol=1e-6)
    np.testing.assert_allclose(y, [K0 * meridian_arc(v) for v in lat], rtol=0, atol=1e-3)
    assert y[1] == pytest.approx(3318785.353, abs=1e-3)
    # and back: x is the longitude, y the latitude (traditional GIS order, not EPSG's lat/lon)
    lon2, lat2 = reproject.reproject_points(x, y, UTM44, WGS84)
    np.testing.assert_allclose(lon2, lon, rtol=0, atol=1e-9)
    np.testing.assert_allclose(lat2, lat, rtol=0, atol=1e-9)


def test_off_the_meridian_east_and_west_are_mirror_images():
    x, y = reproject.reproject_points([78.0, 84.0], [30.0, 30.0], WGS84, UTM44)
    assert x[0] < 500000.0 < x[1]
    assert x[0] + x[1] == pytest.approx(1e6, abs=1e-6) and y[0] == pytest.approx(y[1], abs=1e-6)


def test_failures_and_non_finite_input_are_nan(monkeypatch, osr_mode):
    # small chunks, so a failing point has to be split out of a call with good ones
    monkeypatch.setattr(reproject, "CHUNK", 7)
    n = 40
    lon = np.full(n, 81.0)
    lat = np.linspace(10, 40, n)
    bad = [3, 4, 17, 39]
    lat[bad[:3]] = 95.0  # no such latitude
    lon[bad[3]] = np.nan
    x, y = reproject.reproject_points(lon, lat, WGS84, UTM44)
    assert np.flatnonzero(np.isnan(x)).tolist() == bad
    assert np.flatnonzero(np.isnan(y)).tolist() == bad
    good = np.setdiff1d(np.arange(n), bad)
    np.testing.assert_allclose(y[good], [K0 * meridian_arc(v) for v in lat[good]], atol=1e-3)


def test_vectorised_equals_osr_point_by_point():
    rng = np.random.default_rng(0)
    lon, lat = rng.uniform(77, 86, 500), rng.uniform(25, 35, 500)
    x, y = reproject.reproject_points(lon, lat, WGS84, UTM44)
    src, dst = osr.SpatialReference(), osr.SpatialReference()
    src.ImportFromEPSG(4326)
    dst.ImportFromEPSG(32644)
    ct = osr.CoordinateTransformation(src, dst)  # EPSG axis order: latitude first
    ref = np.array([ct.TransformPoint(b, a)[:2] for a, b in zip(lon, lat)])
    np.testing.assert_allclose(x, ref[:, 0], rtol=0, atol=1e-6)
    np.testing.assert_allclose(y, ref[:, 1], rtol=0, atol=1e-6)


def test_a_given_operation_is_run_as_written_and_backwards():
    shift = "+proj=affine +xoff=100 +yoff=-20"
    x, y = reproject.reproject_points([1.0, 2.0], [3.0, 4.0], "", "", operation=shift)
    np.testing.assert_allclose(x, [101.0, 102.0])
    np.testing.assert_allclose(y, [-17.0, -16.0])
    x, y = reproject.reproject_points([101.0], [-17.0], "", "", operation=shift, inverse=True)
    np.testing.assert_allclose([x[0], y[0]], [1.0, 3.0])
    # a pipeline in lon/lat order (as QGIS writes them) gives what the CRSs give
    utm = ("+proj=pipeline +step +proj=unitconvert +xy_in=deg +xy_out=rad "
           "+step +proj=utm +zone=44 +ellps=WGS84")
    got = reproject.reproject_points([81.0, 83.0], [30.0, 31.0], WGS84, UTM44, operation=utm)
    ref = reproject.reproject_points([81.0, 83.0], [30.0, 31.0], WGS84, UTM44)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6)


def test_points_the_operation_cannot_transform_fall_back_to_the_default():
    # an orthographic view centred on 81° E 30° N fails for points on the far side of the
    # globe; those take PROJ's default WGS84 → UTM instead, as QGIS's fallback does
    ortho = ("+proj=pipeline +step +proj=unitconvert +xy_in=deg +xy_out=rad "
             "+step +proj=ortho +lon_0=81 +lat_0=30 +ellps=WGS84")
    lon, lat = np.array([81.0, -99.0]), np.array([30.0, -30.0])
    x, y = reproject.reproject_points(lon, lat, WGS84, UTM44, operation=ortho)
    assert (x[0], y[0]) == pytest.approx((0.0, 0.0), abs=1e-6)  # the ortho centre
    dx, dy = reproject.reproject_points(lon[1:], lat[1:], WGS84, UTM44)
    assert np.isfinite(dx[0]) and (x[1], y[1]) == (dx[0], dy[0])


def test_same_crs_and_bad_input(osr_mode):
    wkt = osr.SpatialReference()
    wkt.ImportFromEPSG(32644)
    assert reproject.same_crs(wkt.ExportToWkt(), UTM44)
    assert not reproject.same_crs(WGS84, UTM44)
    with pytest.raises(DemError, match="cannot be read"):
        reproject.reproject_points([1.0], [2.0], "not a CRS", UTM44)
    with pytest.raises(DemError, match="cannot create the operation"):  # nothing to fall to
        reproject.reproject_points([1.0], [2.0], "", "", operation="+proj=nonsense")
    with pytest.raises(DemError, match="same length"):
        reproject.reproject_points([1.0, 2.0], [2.0], WGS84, UTM44)


def test_an_operation_proj_cannot_create_falls_back_to_the_default_with_a_warning():
    from core.grid.progress import Monitor

    class Recorder(Monitor):
        def __init__(self):
            self.warnings = []

        def warn(self, message):
            self.warnings.append(message)

    # a datum shift whose grid is not installed: QGIS warns and uses the default operation
    missing_grid = ("+proj=pipeline +step +proj=axisswap +order=2,1 "
                    "+step +proj=hgridshift +grids=no_such_grid_installed.gsb")
    monitor = Recorder()
    x, y = reproject.reproject_points([81.0, 82.0], [30.0, 31.0], WGS84, UTM44,
                                      operation=missing_grid, monitor=monitor)
    dx, dy = reproject.reproject_points([81.0, 82.0], [30.0, 31.0], WGS84, UTM44)
    np.testing.assert_array_equal(x, dx)
    np.testing.assert_array_equal(y, dy)
    assert len(monitor.warnings) == 1 and "default transformation" in monitor.warnings[0]
