"""Bad input common to every raster algorithm reaches the user as a message, never a traceback.

demsr:tpi stands in for all of them: they share algorithms/base.py's input and output handling.
"""
import os

import numpy as np
import pytest
from osgeo import gdal, osr
from qgis.core import QgsProcessingException


def _write(path, bands=1, epsg=32633):
    rng = np.random.default_rng(1)
    ds = gdal.GetDriverByName("GTiff").Create(str(path), 40, 30, bands, gdal.GDT_Float32)
    ds.SetGeoTransform((500000.0, 30.0, 0.0, 4000000.0, 0.0, -30.0))
    if epsg:
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(epsg)
        ds.SetProjection(srs.ExportToWkt())
    for b in range(bands):
        ds.GetRasterBand(b + 1).WriteArray(rng.normal(500, 50, (30, 40)) + 1000 * b)
    ds = None
    return str(path)


def test_not_a_raster(run_alg, tmp_path):
    bogus = tmp_path / "bogus.tif"
    bogus.write_text("no raster here")
    # QGIS itself refuses to load it as a layer, before the algorithm starts.
    with pytest.raises(QgsProcessingException):
        run_alg("demsr:tpi", {"INPUT": str(bogus), "OUTPUT": str(tmp_path / "o.tif")})
    assert not (tmp_path / "o.tif").exists()


def test_multiband_uses_band_one_and_says_so(run_alg, tmp_path, log_feedback):
    src = _write(tmp_path / "rgb.tif", bands=3)
    feedback = log_feedback
    out = str(tmp_path / "tpi.tif")
    run_alg("demsr:tpi", {"INPUT": src, "RADIUS": 1, "OUTPUT": out}, feedback)
    assert any("band 1 is used" in line for line in feedback.lines)
    single = _write(tmp_path / "one.tif", bands=1)
    out_single = str(tmp_path / "tpi1.tif")
    run_alg("demsr:tpi", {"INPUT": single, "RADIUS": 1, "OUTPUT": out_single})
    np.testing.assert_array_equal(gdal.Open(out).ReadAsArray(),
                                  gdal.Open(out_single).ReadAsArray())


def test_no_crs_warns_and_works_in_cells(run_alg, tmp_path, log_feedback):
    src = _write(tmp_path / "nocrs.tif", epsg=None)
    feedback = log_feedback
    out = str(tmp_path / "tpi.tif")
    run_alg("demsr:tpi", {"INPUT": src, "RADIUS": 1, "OUTPUT": out}, feedback)
    assert any("no coordinate reference system" in line for line in feedback.lines)
    assert gdal.Open(out).GetProjection() == ""


def test_unwritable_output_is_a_clear_message(run_alg, tmp_path):
    src = _write(tmp_path / "dem.tif")
    with pytest.raises(QgsProcessingException, match="the folder .* does not exist"):
        run_alg("demsr:tpi", {"INPUT": src, "RADIUS": 1,
                              "OUTPUT": str(tmp_path / "missing" / "dir" / "o.tif")})


def test_no_crs_map_units_are_the_geotransforms_units_and_the_log_says_so(run_alg, tmp_path,
                                                                         log_feedback):
    src = _write(tmp_path / "nocrs.tif", epsg=None)  # 30 × 30 geotransform units per cell
    in_map_units = str(tmp_path / "map.tif")
    run_alg("demsr:tpi", {"INPUT": src, "RADIUS": 90.0, "UNITS": 1, "OUTPUT": in_map_units},
            log_feedback)
    assert any("geotransform's own units" in line for line in log_feedback.lines)
    assert not any("cell units" in line for line in log_feedback.lines)
    in_cells = str(tmp_path / "cells.tif")
    run_alg("demsr:tpi", {"INPUT": src, "RADIUS": 3.0, "UNITS": 0, "OUTPUT": in_cells})
    np.testing.assert_array_equal(gdal.Open(in_map_units).ReadAsArray(),
                                  gdal.Open(in_cells).ReadAsArray())


def test_landforms_with_an_unwritable_table_writes_nothing(run_alg, tmp_path):
    src = _write(tmp_path / "dem.tif")
    out = tmp_path / "lf.tif"
    with pytest.raises(QgsProcessingException):
        run_alg("demsr:landforms", {"INPUT": src, "SMALL_RADIUS": 1, "LARGE_RADIUS": 5,
                                    "OUTPUT": str(out),
                                    "OUTPUT_TABLE": str(tmp_path / "no" / "such" / "t.gpkg")})
    assert not out.exists()
    assert sorted(os.listdir(tmp_path)) == ["dem.tif"]


def test_landforms_table_is_optional(run_alg, tmp_path):
    src = _write(tmp_path / "dem.tif")
    res = run_alg("demsr:landforms", {"INPUT": src, "SMALL_RADIUS": 1, "LARGE_RADIUS": 5,
                                      "OUTPUT": str(tmp_path / "lf.tif"), "OUTPUT_TABLE": None})
    assert gdal.Open(res["OUTPUT"]).GetRasterBand(1).DataType == gdal.GDT_Byte
    assert not res["OUTPUT_TABLE"]
