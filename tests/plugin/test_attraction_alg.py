"""demsr:attraction through processing.run on the bundled Jacksboro DEM (EPSG:4326, no nodata)."""
import numpy as np
import pytest
from demsr.core import attraction as core_attraction
from demsr.core.grid.raster import read_array
from osgeo import gdal
from qgis.core import QgsProcessingException


def test_attraction_output_grid_and_values(run_alg, jacksboro, tmp_path):
    out = str(tmp_path / "x3.tif")
    res = run_alg("demsr:attraction", {"INPUT": jacksboro, "SCALE": 3, "NEIGHBOURHOOD": 1,
                                       "ASSIGNMENT": 0, "PRESERVE_MEAN": False, "OUTPUT": out})
    src, dst = gdal.Open(jacksboro), gdal.Open(res["OUTPUT"])
    gt_in, gt_out = src.GetGeoTransform(), dst.GetGeoTransform()
    assert gt_out[0] == gt_in[0] and gt_out[3] == gt_in[3]  # same origin
    assert gt_out[1] == pytest.approx(gt_in[1] / 3, rel=1e-12)
    assert gt_out[5] == pytest.approx(gt_in[5] / 3, rel=1e-12)
    assert (dst.RasterXSize, dst.RasterYSize) == (src.RasterXSize * 3, src.RasterYSize * 3)
    assert dst.GetProjection() == src.GetProjection()
    band = dst.GetRasterBand(1)
    assert band.DataType == gdal.GDT_Float32
    # The input declares no nodata: the output's is NaN (no valid value can collide with it).
    assert band.GetNoDataValue() is not None and np.isnan(band.GetNoDataValue())
    got, _ = read_array(res["OUTPUT"])
    dem, _ = read_array(jacksboro)
    np.testing.assert_array_equal(got, core_attraction.upscale(dem, 3, "quadrant",
                                                               "max_attraction", False))


def test_attraction_defaults_keep_nodata_and_mean(run_alg, mandakini, tmp_path):
    res = run_alg("demsr:attraction", {"INPUT": mandakini, "OUTPUT": str(tmp_path / "d.tif")})
    dst = gdal.Open(res["OUTPUT"])
    assert dst.GetRasterBand(1).GetNoDataValue() == -9999.0
    got, _ = read_array(res["OUTPUT"])
    dem, _ = read_array(mandakini)
    h, w = dem.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(np.kron(dem, np.ones((2, 2)))))
    back = got.astype(np.float64).reshape(h, 2, w, 2).mean(axis=(1, 3))
    assert np.nanmax(np.abs(back - dem)) < 5e-4  # Float32 at up to 6741 m: ulp 4.9e-4


@pytest.mark.parametrize("scale", [2.5, 1])
def test_attraction_bad_scale_is_a_message(run_alg, jacksboro, tmp_path, scale):
    out = tmp_path / "bad.tif"
    with pytest.raises(QgsProcessingException, match="(?i)scale"):
        run_alg("demsr:attraction", {"INPUT": jacksboro, "SCALE": scale, "OUTPUT": str(out)})
    assert not out.exists()
