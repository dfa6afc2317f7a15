"""Inputs are never harmed, outputs come in the format asked, bad input is a message,
through the front doors users take: processing.run (the `run_alg` fixture) and qgis_process.
Both go through the inputs guard (tests/helpers_guard.py), which fails a test whose run changed
any input file; the data-loss tests also compare the checksums themselves."""
import os
import shutil

import numpy as np
import pytest
from osgeo import gdal, ogr, osr
from qgis.core import QgsProcessingException

from tests.helpers_guard import checksums, input_files
from tests.helpers_onnx import write_model


@pytest.fixture
def dem(tmp_path, mandakini):
    path = tmp_path / "in" / "dem.tif"
    path.parent.mkdir()
    shutil.copy(mandakini, path)
    shutil.copy(mandakini + ".aux.xml", str(path) + ".aux.xml")
    return str(path)


@pytest.fixture
def model(tmp_path):
    return write_model(tmp_path / "nearest_x2.onnx", "nearest", 2)


def _params(alg, dem, out, model):
    params = {"INPUT": dem, "OUTPUT": out}
    if alg == "superresolution":
        params.update(MODEL_FILE=model, DEVICE=2)
    if alg == "landforms":
        params["OUTPUT_TABLE"] = "TEMPORARY_OUTPUT"
    return params


# --- 1. OUTPUT equal to an input -----------------------------------------------------------


@pytest.mark.parametrize("alg", ["tpi", "landforms", "attraction", "superresolution"])
@pytest.mark.parametrize("engine", ["", "local"])
def test_output_equal_to_the_input_is_refused_under_any_spelling(alg, engine, run_alg, dem,
                                                                 model, tmp_path):
    os.symlink(dem, tmp_path / "link.tif")
    before = checksums(input_files({"INPUT": dem}))
    assert len(before) == 2  # the DEM and its .aux.xml
    for out in (dem, str(tmp_path / "link.tif"), os.path.join(tmp_path, "in", "..", "in",
                                                              "dem.tif")):
        params = _params(alg, dem, out, model)
        if engine:
            params["ENGINE"] = engine
        with pytest.raises(QgsProcessingException, match="never writes over its inputs"):
            run_alg(f"demsr:{alg}", params)
    assert checksums(input_files({"INPUT": dem})) == before


def test_qgis_process_refuses_output_equal_to_input(qgis_process, dem):
    before = checksums(input_files({"INPUT": dem}))
    proc = qgis_process("run", "demsr:tpi", "--", f"INPUT={dem}", f"OUTPUT={dem}")
    assert proc.returncode != 0
    assert "OUTPUT" in proc.stdout + proc.stderr
    assert "never writes over its inputs" in proc.stdout + proc.stderr
    assert checksums(input_files({"INPUT": dem})) == before


def test_the_spread_on_the_output_file_is_refused(run_alg, dem, model, tmp_path):
    out = str(tmp_path / "sr.tif")
    with pytest.raises(QgsProcessingException,
                       match="OUTPUT_SPREAD and OUTPUT name the same file"):
        run_alg("demsr:superresolution", {**_params("superresolution", dem, out, model),
                                          "ENSEMBLE": True, "OUTPUT_SPREAD": out})
    assert not os.path.exists(out)


# --- 2. the format asked for ---------------------------------------------------------------


@pytest.mark.parametrize("name,driver", [("t.asc", "AAIGrid"), ("t.img", "HFA"),
                                         ("t.sdat", "SAGA"), ("t.nc", "netCDF"),
                                         ("t.gpkg", "GPKG"), ("t", "GTiff")])
def test_a_raster_output_is_written_in_the_format_its_extension_names(name, driver, run_alg,
                                                                       dem, tmp_path):
    ref = run_alg("demsr:tpi", {"INPUT": dem, "OUTPUT": str(tmp_path / "ref.tif")})["OUTPUT"]
    out = tmp_path / "out"
    out.mkdir()
    result = run_alg("demsr:tpi", {"INPUT": dem, "OUTPUT": str(out / name)})["OUTPUT"]
    assert result == str(out / (name if "." in name else name + ".tif"))
    ds = gdal.Open(result)
    assert ds.GetDriver().ShortName == driver
    expected = gdal.Open(ref).ReadAsArray()
    np.testing.assert_allclose(ds.ReadAsArray(), expected,
                               atol=1e-3 if driver == "AAIGrid" else 0)
    assert not [n for n in os.listdir(out) if n.startswith(".")]  # no hidden file left


def test_landform_classes_keep_their_colours_in_another_format(run_alg, dem, tmp_path):
    out = str(tmp_path / "lf.img")
    run_alg("demsr:landforms", {"INPUT": dem, "OUTPUT": out})
    ds = gdal.Open(out)  # kept while its band is used (GDAL 3.6 would crash otherwise)
    table = ds.GetRasterBand(1).GetColorTable()
    assert table is not None and table.GetCount() >= 10


def test_an_existing_geopackage_keeps_its_layers_and_gets_a_raster_table(run_alg, dem,
                                                                         tmp_path):
    gpkg = str(tmp_path / "project.gpkg")
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(gpkg)
    layer = ds.CreateLayer("sites", geom_type=ogr.wkbPoint)
    feature = ogr.Feature(layer.GetLayerDefn())
    feature.SetGeometry(ogr.CreateGeometryFromWkt("POINT (1 2)"))
    layer.CreateFeature(feature)
    ds = layer = feature = None
    run_alg("demsr:tpi", {"INPUT": dem, "OUTPUT": gpkg})
    assert ogr.Open(gpkg).GetLayerByName("sites").GetFeatureCount() == 1
    assert gdal.Open(f"GPKG:{gpkg}:project").RasterXSize == gdal.Open(dem).RasterXSize
    before = checksums([gpkg])
    with pytest.raises(QgsProcessingException, match="already holds a table named 'project'"):
        run_alg("demsr:tpi", {"INPUT": dem, "OUTPUT": gpkg})
    assert checksums([gpkg]) == before


def test_an_extension_no_raster_driver_writes_is_refused_with_the_accepted_ones(
        qgis_process, dem, tmp_path):
    out = tmp_path / "t.shp"
    proc = qgis_process("run", "demsr:tpi", "--", f"INPUT={dem}", f"OUTPUT={out}")
    said = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "OUTPUT: GDAL cannot write a raster as '.shp'; use one of the extensions .tif" in said
    assert ".asc" in said and ".gpkg" in said
    assert list(tmp_path.glob("t.*")) == []


def test_qgis_process_writes_an_ascii_grid_with_only_the_mandatory_parameters(qgis_process,
                                                                            dem, tmp_path):
    out = tmp_path / "t.asc"
    proc = qgis_process("run", "demsr:tpi", "--", f"INPUT={dem}", f"OUTPUT={out}")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert gdal.Open(str(out)).GetDriver().ShortName == "AAIGrid"


# --- 3. the survey layer is read-only ------------------------------------------------------


@pytest.fixture
def points_gpkg(tmp_path, mandakini):
    """30 points with their DEM elevation + 1 m in the field elev, layer 'pts'."""
    ds = gdal.Open(mandakini)
    x0, dx, _, y0, _, dy = ds.GetGeoTransform()
    z = ds.ReadAsArray()
    rows, cols = np.nonzero(z > 0)
    path = str(tmp_path / "pts" / "survey.gpkg")
    os.makedirs(os.path.dirname(path))
    out = ogr.GetDriverByName("GPKG").CreateDataSource(path)
    srs = osr.SpatialReference()
    srs.ImportFromWkt(ds.GetProjection())
    layer = out.CreateLayer("pts", srs, ogr.wkbPoint)
    layer.CreateField(ogr.FieldDefn("elev", ogr.OFTReal))
    for i in np.linspace(0, rows.size - 1, 30).astype(int):
        feature = ogr.Feature(layer.GetLayerDefn())
        x, y = x0 + (cols[i] + 0.5) * dx, y0 + (rows[i] + 0.5) * dy
        feature.SetGeometry(ogr.CreateGeometryFromWkt(f"POINT ({x} {y})"))
        feature.SetField("elev", float(z[rows[i], cols[i]]) + 1.0)
        layer.CreateFeature(feature)
    out = layer = feature = None
    return path


@pytest.mark.parametrize("output", ["OUTPUT_RESIDUALS", "OUTPUT_TABLE"])
def test_a_survey_output_on_the_points_file_is_refused_before_any_work(output, run_alg,
                                                                       points_gpkg, mandakini):
    before = checksums([points_gpkg])
    for dest in (points_gpkg, f"ogr:dbname='{points_gpkg}' table=\"pts\" (geom)"):
        with pytest.raises(QgsProcessingException, match=f"{output} .*never writes over"):
            run_alg("demsr:surveyrmse", {"DEMS": [mandakini], "POINTS": points_gpkg,
                                         "ELEVATION_FIELD": "elev", output: dest})
    assert checksums([points_gpkg]) == before
    assert ogr.Open(points_gpkg).GetLayerByName("pts").GetFeatureCount() == 30


def test_a_shapefile_survey_layer_as_output_is_refused(run_alg, points_gpkg, mandakini,
                                                       tmp_path):
    shp = str(tmp_path / "pts.shp")
    gdal.VectorTranslate(shp, points_gpkg)
    before = checksums([shp, shp[:-4] + ".dbf", shp[:-4] + ".shx"])
    with pytest.raises(QgsProcessingException, match="OUTPUT_RESIDUALS .*never writes over"):
        run_alg("demsr:surveyrmse", {"DEMS": [mandakini], "POINTS": shp,
                                     "ELEVATION_FIELD": "elev", "OUTPUT_RESIDUALS": shp})
    assert checksums([shp, shp[:-4] + ".dbf", shp[:-4] + ".shx"]) == before


def test_residuals_go_into_the_points_geopackage_as_new_tables(run_alg, points_gpkg,
                                                               mandakini):
    source = f"{points_gpkg}|layername=pts"
    result = run_alg("demsr:surveyrmse", {
        "DEMS": [mandakini], "POINTS": source, "ELEVATION_FIELD": "elev",
        "OUTPUT_RESIDUALS": f"ogr:dbname='{points_gpkg}' table=\"residuals\" (geom)",
        "OUTPUT_TABLE": f"ogr:dbname='{points_gpkg}' table=\"accuracy\""})
    ds = ogr.Open(points_gpkg)
    assert ds.GetLayerByName("pts").GetFeatureCount() == 30
    assert ds.GetLayerByName("residuals").GetFeatureCount() == 30
    assert ds.GetLayerByName("accuracy").GetFeatureCount() == 1
    assert result["ME"] == pytest.approx(-1.0, abs=1e-6)  # DEM − survey, survey = DEM + 1


# --- 5, 9, 10. unreadable, complex and undeclared-nodata inputs ----------------------------


def test_a_truncated_geotiff_is_a_message_naming_it_and_leaves_no_output(run_alg, tmp_path,
                                                                         mandakini):
    bad = str(tmp_path / "cut.tif")
    gdal.Translate(bad, mandakini, creationOptions=["TILED=YES", "COMPRESS=DEFLATE"])
    with open(bad, "r+b") as f:
        f.truncate(os.path.getsize(bad) // 2)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(QgsProcessingException, match="(?s)Cannot read .*cut.tif.*truncated"):
        run_alg("demsr:tpi", {"INPUT": bad, "OUTPUT": str(out / "t.tif")})
    assert list(out.iterdir()) == []


def test_a_vrt_with_a_missing_source_names_it(run_alg, tmp_path, dem, model):
    vrt = str(tmp_path / "m.vrt")
    gdal.BuildVRT(vrt, [dem]).FlushCache()
    os.remove(dem)
    for alg in ("superresolution", "tpi"):
        with pytest.raises(QgsProcessingException, match="source file\\(s\\) that do not exist"):
            run_alg(f"demsr:{alg}", _params(alg, vrt, str(tmp_path / "o.tif"), model))


def test_complex_data_is_refused(run_alg, tmp_path, mandakini):
    path = str(tmp_path / "c.tif")
    gdal.Translate(path, mandakini, outputType=gdal.GDT_CInt16)
    with pytest.raises(QgsProcessingException, match="holds complex numbers \\(CInt16\\)"):
        run_alg("demsr:tpi", {"INPUT": path, "OUTPUT": str(tmp_path / "o.tif")})
    assert not os.path.exists(tmp_path / "o.tif")


def test_undeclared_nodata_is_warned_with_the_count(run_alg, tmp_path, mandakini,
                                                    log_feedback):
    values = gdal.Open(mandakini).ReadAsArray()
    path = str(tmp_path / "nodecl.tif")
    gdal.Translate(path, mandakini, noData="none")
    n = int(np.count_nonzero(values == -9999))
    run_alg("demsr:tpi", {"INPUT": path, "OUTPUT": str(tmp_path / "o.tif")},
            feedback=log_feedback)
    assert f"INPUT: {n} cells ({100 * n / values.size:.2f} %) hold -9999" in log_feedback.text
    assert "gdal_edit.py -a_nodata -9999" in log_feedback.text
    # Chunked, it is said once too (by the algorithm, not again by the job).
    log_feedback.lines.clear()
    run_alg("demsr:tpi", {"INPUT": path, "OUTPUT": str(tmp_path / "o2.tif"),
                          "ENGINE": "local:1"}, feedback=log_feedback)
    assert log_feedback.text.count("a common nodata marker") == 1


# --- 6. a full disk, checked before the work -----------------------------------------------


def test_too_little_free_space_is_refused_in_process_before_any_work(run_alg, dem, tmp_path,
                                                                     monkeypatch):
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(QgsProcessingException, match="Not enough free disk space"):
        run_alg("demsr:tpi", {"INPUT": dem, "OUTPUT": str(out / "t.tif")})
    assert list(out.iterdir()) == []


# --- 7, 8, 12. user models and tile sizes --------------------------------------------------


def test_a_model_returning_nan_everywhere_fails_instead_of_writing_nodata(run_alg, dem,
                                                                          tmp_path):
    from tests.core.test_safety import _model

    bad = _model(tmp_path / "nan.onnx", ["N", 1, "H", "W"], nan=True)
    out = str(tmp_path / "sr.tif")
    with pytest.raises(QgsProcessingException, match="returned NaN or infinite values"):
        run_alg("demsr:superresolution", {"INPUT": dem, "MODEL_FILE": bad, "DEVICE": 2,
                                          "OUTPUT": out})
    assert not os.path.exists(out)


def test_a_three_channel_model_is_refused_with_the_layout_expected(run_alg, dem, tmp_path):
    from tests.core.test_safety import _model

    rgb = _model(tmp_path / "rgb.onnx", ["N", 3, "H", "W"])
    with pytest.raises(QgsProcessingException, match="takes 3 input channels.*\\(N, 1, H, W\\)"):
        run_alg("demsr:superresolution", {"INPUT": dem, "MODEL_FILE": rgb, "DEVICE": 2,
                                          "OUTPUT": str(tmp_path / "sr.tif")})


def test_a_huge_tile_size_runs_as_a_tile_that_fits(run_alg, dem, model, tmp_path):
    out = str(tmp_path / "sr.tif")
    run_alg("demsr:superresolution", {"INPUT": dem, "MODEL_FILE": model, "DEVICE": 2,
                                      "TILE_SIZE": 10**7, "OUTPUT": out})
    assert gdal.Open(out).RasterXSize == 2 * gdal.Open(dem).RasterXSize


def test_the_dialog_offers_the_formats_written_geotiff_first(demsr_provider):
    offered = demsr_provider.supportedOutputRasterLayerExtensions()
    assert offered[0] == "tif"
    assert {"asc", "img", "sdat", "nc", "gpkg"} <= set(offered)
    assert not {"png", "shp", "vrt"} & set(offered)
    output = demsr_provider.algorithm("tpi").parameterDefinition("OUTPUT")
    assert output.defaultFileExtension() == "tif"


def test_a_chunked_run_writes_the_format_asked_too(run_alg, dem, tmp_path):
    ref = run_alg("demsr:tpi", {"INPUT": dem, "OUTPUT": str(tmp_path / "ref.asc")})["OUTPUT"]
    out = run_alg("demsr:tpi", {"INPUT": dem, "OUTPUT": str(tmp_path / "chunked.asc"),
                                "ENGINE": "local:1"})["OUTPUT"]
    ds = gdal.Open(out)
    assert ds.GetDriver().ShortName == "AAIGrid"
    np.testing.assert_allclose(ds.ReadAsArray(), gdal.Open(ref).ReadAsArray(), atol=1e-3)
    assert sorted(os.listdir(tmp_path)) == ["chunked.asc", "chunked.asc.aux.xml", "chunked.prj",
                                            "in", "ref.asc", "ref.asc.aux.xml", "ref.prj"]


def test_a_name_without_extension_is_loaded_under_its_real_name(demsr_provider, headless_loading,
                                                               dem, tmp_path):
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback, QgsProject

    from tests.helpers_guard import guarded_run

    QgsProject.instance().removeAllMapLayers()
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    out = str(tmp_path / "tpi")
    try:
        guarded_run("demsr:tpi", {"INPUT": dem, "OUTPUT": out}, context=context,
                    feedback=QgsProcessingFeedback(), load=True)
        sources = [lyr.source() for lyr in QgsProject.instance().mapLayers().values()]
        assert sources == [out + ".tif"]
    finally:
        QgsProject.instance().removeAllMapLayers()
