"""The blocked raster core: exact round trips, georeferencing, nodata, cancellation, bad input."""
import math
import os

import numpy as np
import pytest
from osgeo import gdal, osr

from core.errors import Cancelled, DemError
from core.grid import raster, writing
from core.grid.progress import RecordingMonitor

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "data")
UTM_DEM = os.path.join(DATA, "mandakini_srtm90_utm44.tif")  # Float32, -9999 mask
GEO_DEM = os.path.join(DATA, "jacksboro_fault_srtm3.tif")  # Int16, EPSG:4326, no nodata


def _gdal_values(path):
    ds = gdal.Open(path)
    band = ds.GetRasterBand(1)
    return band.ReadAsArray(), band.GetNoDataValue(), ds.GetGeoTransform(), ds.GetProjection()


def _identity_core(halo):
    def func(padded, block):
        return padded[halo : halo + block.height, halo : halo + block.width]

    return func


@pytest.mark.parametrize("block_size,halo", [(100, 0), (77, 3), (1000, 5)])
@pytest.mark.parametrize("src", [UTM_DEM, GEO_DEM])
def test_identity_round_trips_exactly(tmp_path, src, block_size, halo):
    out = str(tmp_path / "identity.tif")
    info = writing.process_blocks(src, out, _identity_core(halo), halo=halo,
                                 block_size=block_size)
    want, want_nodata, want_gt, want_wkt = _gdal_values(src)
    got, got_nodata, got_gt, got_wkt = _gdal_values(out)
    assert got.shape == want.shape == (info.height, info.width)
    assert got_gt == want_gt
    assert osr.SpatialReference(got_wkt).IsSame(osr.SpatialReference(want_wkt))
    if want_nodata is None:
        assert math.isnan(got_nodata)  # none declared: NaN, which no elevation can take
        np.testing.assert_array_equal(got, want.astype(np.float32))
    else:
        assert got_nodata == want_nodata
        np.testing.assert_array_equal(got, want.astype(np.float32))


def test_halo_sees_neighbours_and_nan_outside():
    z, _ = raster.read_array(GEO_DEM)
    halo = 4
    for block, padded in raster.iter_blocks(GEO_DEM, block_size=128, halo=halo):
        r0, c0 = block.row - halo, block.col - halo
        for i in (0, padded.shape[0] - 1):
            for j in (0, padded.shape[1] - 1):
                r, c = r0 + i, c0 + j
                inside = 0 <= r < z.shape[0] and 0 <= c < z.shape[1]
                if inside:
                    assert padded[i, j] == z[r, c]
                else:
                    assert np.isnan(padded[i, j])


def test_blocks_cover_grid_once():
    blocks = raster.block_windows(1001, 257, 100)
    cover = np.zeros((1001, 257), int)
    for b in blocks:
        cover[b.row : b.row + b.height, b.col : b.col + b.width] += 1
    assert (cover == 1).all()
    assert [b.index for b in blocks] == list(range(len(blocks)))
    assert all(b.count == len(blocks) for b in blocks)


def test_nodata_becomes_nan_and_back(tmp_path):
    z, info = raster.read_array(UTM_DEM)
    raw, nodata, _, _ = _gdal_values(UTM_DEM)
    assert nodata == -9999
    assert np.array_equal(np.isnan(z), raw == nodata)
    out = str(tmp_path / "copy.tif")
    writing.write_array(out, z, info)
    back, back_nodata, _, _ = _gdal_values(out)
    assert back_nodata == -9999
    np.testing.assert_array_equal(back, raw)


def test_upscaled_output_is_aligned(tmp_path):
    scale = 3
    out = str(tmp_path / "x3.tif")

    def repeat(padded, block):
        return np.kron(padded, np.ones((scale, scale), np.float32))

    info = writing.process_blocks(UTM_DEM, out, repeat, halo=2, scale=scale, block_size=200)
    src = raster.read_info(UTM_DEM)
    x0, dx, rx, y0, ry, dy = src.geotransform
    ds = gdal.Open(out)
    assert ds.GetGeoTransform() == pytest.approx((x0, dx / 3, rx / 3, y0, ry / 3, dy / 3))
    assert (ds.RasterXSize, ds.RasterYSize) == (src.width * 3, src.height * 3)
    assert (info.width, info.height) == (src.width * 3, src.height * 3)
    got = ds.GetRasterBand(1).ReadAsArray()
    want = np.kron(_gdal_values(UTM_DEM)[0], np.ones((3, 3), np.float32))
    np.testing.assert_array_equal(got, want)


def test_output_is_tiled_and_compressed(tmp_path):
    out = str(tmp_path / "t.tif")
    writing.process_blocks(GEO_DEM, out, _identity_core(0))
    ds = gdal.Open(out)
    meta = ds.GetMetadata("IMAGE_STRUCTURE")
    assert meta["COMPRESSION"] == "DEFLATE"
    assert ds.GetRasterBand(1).GetBlockSize() == [256, 256]


def test_cancel_leaves_no_output(tmp_path):
    out = str(tmp_path / "cancelled.tif")
    monitor = RecordingMonitor(cancel_after=2)
    with pytest.raises(Cancelled):
        writing.process_blocks(UTM_DEM, out, _identity_core(0), block_size=64, monitor=monitor)
    assert not os.path.exists(out)
    assert monitor.fractions == pytest.approx([1 / 110, 2 / 110])


def test_failing_function_leaves_no_output(tmp_path):
    out = str(tmp_path / "failed.tif")

    def boom(padded, block):
        if block.index == 3:
            raise RuntimeError("boom")
        return padded

    with pytest.raises(RuntimeError):
        writing.process_blocks(UTM_DEM, out, boom, block_size=64)
    assert not os.path.exists(out)


def test_progress_reaches_one():
    monitor = RecordingMonitor()
    for _ in raster.iter_blocks(GEO_DEM, block_size=100, monitor=monitor):
        pass
    assert monitor.fractions[-1] == 1.0
    assert monitor.fractions == sorted(monitor.fractions)


def test_not_a_raster(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("this is not a raster")
    with pytest.raises(DemError, match="not a raster"):
        raster.read_info(str(path))
    with pytest.raises(DemError, match="does not exist"):
        raster.read_info(str(tmp_path / "missing.tif"))


def test_unwritable_output(tmp_path):
    with pytest.raises(DemError, match="does not exist"):
        writing.process_blocks(GEO_DEM, str(tmp_path / "no" / "such" / "dir.tif"),
                              _identity_core(0))
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        with pytest.raises(DemError, match="not writable"):
            writing.process_blocks(GEO_DEM, str(locked / "x.tif"), _identity_core(0))
    finally:
        locked.chmod(0o700)


def _make_raster(path, values, gt=(500000.0, 30.0, 0.0, 4000000.0, 0.0, -30.0), epsg=None,
                 bands=1):
    ds = gdal.GetDriverByName("GTiff").Create(str(path), values.shape[1], values.shape[0],
                                              bands, gdal.GDT_Float32)
    ds.SetGeoTransform(gt)
    if epsg:
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(epsg)
        ds.SetProjection(srs.ExportToWkt())
    for b in range(bands):
        ds.GetRasterBand(b + 1).WriteArray(values + 1000 * b)
    ds = None
    return str(path)


def test_multiband_uses_band_one(tmp_path):
    values = np.arange(12, dtype=np.float32).reshape(3, 4)
    path = _make_raster(tmp_path / "three.tif", values, epsg=32633, bands=3)
    z, info = raster.read_array(path)
    assert info.band_count == 3
    np.testing.assert_array_equal(z, values)


def test_no_crs_keeps_cell_units(tmp_path):
    path = _make_raster(tmp_path / "nocrs.tif", np.zeros((3, 3), np.float32),
                        gt=(0.0, 2.0, 0.0, 0.0, 0.0, -2.0))
    info = raster.read_info(path)
    assert not info.has_crs and not info.is_geographic
    assert raster.ground_pixel_size_m(info) == (2.0, 2.0)
    out = str(tmp_path / "out.tif")
    writing.process_blocks(path, out, _identity_core(0))
    assert gdal.Open(out).GetProjection() == ""


def test_ground_pixel_size_projected_and_geographic():
    utm = raster.read_info(UTM_DEM)
    assert raster.ground_pixel_size_m(utm) == pytest.approx(utm.pixel_size)
    # One arc-second on WGS84: 30.715 m of latitude at the equator (meridional radius
    # 6335439 m), 30.922 m at the pole; along a parallel N·cos(φ)·π/648000.
    geo = raster.RasterInfo(1, 1, (0.0, 1 / 3600, 0.0, 0.5 / 3600, 0.0, -1 / 3600),
                            _wgs84_wkt())
    dx, dy = raster.ground_pixel_size_m(geo)
    assert dy == pytest.approx(6335439.327 * math.pi / 648000, rel=1e-6)
    assert dx == pytest.approx(6378137.0 * math.pi / 648000, rel=1e-6)
    lat60 = raster.RasterInfo(1, 1, (0.0, 1 / 3600, 0.0, 60 + 0.5 / 3600, 0.0, -1 / 3600),
                              _wgs84_wkt())
    dx60, _ = raster.ground_pixel_size_m(lat60)
    n60 = 6378137.0 / math.sqrt(1 - 0.00669437999014 * math.sin(math.radians(60)) ** 2)
    assert dx60 == pytest.approx(n60 * math.cos(math.radians(60)) * math.pi / 648000, rel=1e-6)


@pytest.mark.parametrize("lat", [0.0, 45.0, -45.0])
def test_radii_of_curvature_wgs84_by_hand(lat):
    # Independent form: N = a²/√(a²cos²φ + b²sin²φ), M = a²b²/(a²cos²φ + b²sin²φ)^(3/2).
    # At 0°: N = a = 6378137 m, M = b²/a = 6335439.327 m; at ±45°: 6388838.290 m, 6367381.816 m.
    n, m = raster.radii_of_curvature_m(6378137.0, 298.257223563, lat)
    want_n, want_m = {0.0: (6378137.0, 6335439.327), 45.0: (6388838.290, 6367381.816)}[abs(lat)]
    assert n == pytest.approx(want_n, abs=1e-3)
    assert m == pytest.approx(want_m, abs=1e-3)


def test_radii_of_curvature_sphere_and_arrays():
    n, m = raster.radii_of_curvature_m(6371000.0, 0.0, np.array([0.0, 30.0, 89.0]))
    np.testing.assert_array_equal(n, 6371000.0)
    np.testing.assert_array_equal(m, 6371000.0)
    # On the ellipsoid both radii grow towards the poles, M faster (M = N at the pole).
    n, m = raster.radii_of_curvature_m(6378137.0, 298.257223563, np.array([0.0, 30.0, 60.0, 90.0]))
    assert np.all(np.diff(n) > 0) and np.all(np.diff(m) > 0)
    assert m[-1] == pytest.approx(n[-1], rel=1e-12)


def test_geographic_cell_size_is_the_centre_value_of_ground_pixel_size():
    geo = raster.RasterInfo(4, 6, (10.0, 1 / 1200, 0.0, 47.0, 0.0, -1 / 1200), _wgs84_wkt())
    centre = 47.0 - 3 / 1200
    widths, heights = raster.geographic_cell_size_m(geo, np.array([centre, 0.0]))
    assert raster.ground_pixel_size_m(geo) == (widths[0], heights[0])
    n0, m0 = raster.radii_of_curvature_m(6378137.0, 298.257223563, 0.0)
    assert widths[1] == pytest.approx(n0 * math.pi / 180 / 1200, rel=1e-12)
    assert heights[1] == pytest.approx(m0 * math.pi / 180 / 1200, rel=1e-12)


def _wgs84_wkt():
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    return srs.ExportToWkt()


def test_integer_output_needs_nodata(tmp_path):
    with pytest.raises(DemError, match="explicit nodata"):
        writing.process_blocks(GEO_DEM, str(tmp_path / "b.tif"), _identity_core(0),
                              data_type="Byte")


def test_require_valid_refuses_all_nodata_and_leaves_no_file(tmp_path):
    path = _make_raster(tmp_path / "empty.tif", np.full((5, 7), np.nan, np.float32), epsg=32633)
    out = str(tmp_path / "out.tif")
    with pytest.raises(DemError, match="no valid cell"):
        writing.process_blocks(path, out, _identity_core(1), halo=1, block_size=3,
                              require_valid=True)
    assert not os.path.exists(out)
    # Without the flag the same input is a legitimate all-nodata layer.
    writing.process_blocks(path, out, _identity_core(1), halo=1, block_size=3)
    assert np.isnan(gdal.Open(out).ReadAsArray()).all()
