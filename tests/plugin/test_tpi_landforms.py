"""demsr:tpi and demsr:landforms through processing.run on the bundled Mandakini DEM."""
import numpy as np
import pytest
from demsr.core.terrain.landforms import CLASSES
from osgeo import gdal
from qgis.core import QgsProcessingException, QgsVectorLayer

from tests.helpers_guard import guarded_run


def _ref(path):
    ds = gdal.Open(path)
    return ds.GetProjection(), ds.GetGeoTransform(), ds.RasterXSize, ds.RasterYSize


def test_tpi_standardised_circle(run_alg, mandakini, tmp_path):
    out = str(tmp_path / "tpi.tif")
    res = run_alg("demsr:tpi", {"INPUT": mandakini, "RADIUS": 300.0, "SHAPE": 1, "UNITS": 1,
                                "STANDARDIZE": True, "OUTPUT": out})
    ds = gdal.Open(res["OUTPUT"])
    assert (ds.GetProjection(), ds.GetGeoTransform(), ds.RasterXSize, ds.RasterYSize) == \
        _ref(mandakini)
    band = ds.GetRasterBand(1)
    assert band.GetNoDataValue() == -9999.0
    v = band.ReadAsArray()
    dem = gdal.Open(mandakini).ReadAsArray()
    assert np.all((v == -9999.0) == (dem == -9999.0))
    valid = v[v != -9999.0]
    assert abs(valid.mean()) < 1e-3 and abs(valid.std() - 1) < 1e-3


@pytest.mark.parametrize("scheme", [0, 1])
def test_landforms_defaults(run_alg, mandakini, tmp_path, scheme):
    out = str(tmp_path / "lf.tif")
    table = str(tmp_path / "areas.gpkg")
    res = run_alg("demsr:landforms", {"INPUT": mandakini, "SCHEME": scheme, "OUTPUT": out,
                                      "OUTPUT_TABLE": table})
    ds = gdal.Open(res["OUTPUT"])
    assert (ds.GetProjection(), ds.GetGeoTransform(), ds.RasterXSize, ds.RasterYSize) == \
        _ref(mandakini)
    band = ds.GetRasterBand(1)
    assert band.DataType == gdal.GDT_Byte and band.GetNoDataValue() == 0
    codes = band.ReadAsArray()
    dem = gdal.Open(mandakini).ReadAsArray()
    assert np.all((codes == 0) == (dem == -9999.0))
    name = ["landforms10", "slopeposition6"][scheme]
    assert set(np.unique(codes)) - {0} <= set(CLASSES[name])
    assert band.GetCategoryNames()[1] == CLASSES[name][1][0]
    layer = QgsVectorLayer(res["OUTPUT_TABLE"], "areas", "ogr")
    rows = [[f[k] for k in ("code", "class", "cells", "area_km2", "percent")]
            for f in layer.getFeatures()]
    assert [r[0] for r in rows] == list(CLASSES[name])
    assert sum(r[2] for r in rows) == int((dem != -9999.0).sum())
    assert sum(r[4] for r in rows) == pytest.approx(100.0, abs=1e-6)
    cell_km2 = (gdal.Open(mandakini).GetGeoTransform()[1] / 1000) ** 2
    assert sum(r[3] for r in rows) == pytest.approx(sum(r[2] for r in rows) * cell_km2)


def test_landforms_window_larger_than_raster(run_alg, mandakini, tmp_path):
    with pytest.raises(QgsProcessingException, match="smaller than the large neighbourhood"):
        run_alg("demsr:landforms", {"INPUT": mandakini, "LARGE_RADIUS": 400,
                                    "OUTPUT": str(tmp_path / "x.tif"),
                                    "OUTPUT_TABLE": "TEMPORARY_OUTPUT"})


def test_landforms_failure_drops_only_its_table_layer_in_an_existing_geopackage(
        run_alg, mandakini, tmp_path):
    from osgeo import ogr

    gpkg = str(tmp_path / "project.gpkg")
    ogr.GetDriverByName("GPKG").CreateDataSource(gpkg).CreateLayer("sites", geom_type=ogr.wkbPoint)
    params = {"INPUT": mandakini, "OUTPUT": str(tmp_path / "lf.tif"),
              "OUTPUT_TABLE": f"ogr:dbname='{gpkg}' table=\"areas\" (geom)"}

    def layers():
        ds = ogr.Open(gpkg)
        return sorted(ds.GetLayerByIndex(i).GetName() for i in range(ds.GetLayerCount()))

    with pytest.raises(QgsProcessingException, match="smaller than the large neighbourhood"):
        run_alg("demsr:landforms", {**params, "LARGE_RADIUS": 400})
    assert layers() == ["sites"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project.gpkg"]
    run_alg("demsr:landforms", params)
    assert layers() == ["areas", "sites"]
    assert ogr.Open(gpkg).GetLayerByName("areas").GetFeatureCount() == 10  # a row per class


def test_style_applied_on_load(demsr_provider, headless_loading, mandakini, tmp_path):
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback, QgsProject

    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    out = str(tmp_path / "styled.tif")
    guarded_run(
        "demsr:landforms", {"INPUT": mandakini, "OUTPUT": out,
                            "OUTPUT_TABLE": "TEMPORARY_OUTPUT"},
        context=context, feedback=QgsProcessingFeedback(), load=True)
    layers = [lyr for lyr in QgsProject.instance().mapLayers().values()
              if lyr.source() == out]
    assert layers
    renderer = layers[0].renderer()
    assert renderer.type() == "paletted"
    labels = {c.value: c.label for c in renderer.classes()}
    assert labels[10].endswith("Mountain tops, high ridges")
    QgsProject.instance().removeAllMapLayers()
