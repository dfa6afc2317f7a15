"""Outputs loaded into a project get their style: hillshade for DEMs (with a z factor that turns
metres into the CRS's horizontal unit), the TPI ramp, the landform legend."""
import math

import pytest
from osgeo import gdal

from tests.helpers_guard import guarded_run


def _load(alg, params):
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback, QgsProject

    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    output = params["OUTPUT"]  # runAndLoadResults replaces it by a layer definition
    guarded_run(alg, params, context=context, feedback=QgsProcessingFeedback(), load=True)
    layers = [lyr for lyr in QgsProject.instance().mapLayers().values()
              if lyr.source() == output]
    assert len(layers) == 1
    return layers[0]


@pytest.fixture(autouse=True)
def _empty_project(demsr_provider, headless_loading):
    from qgis.core import QgsProject

    QgsProject.instance().removeAllMapLayers()
    yield
    QgsProject.instance().removeAllMapLayers()


@pytest.mark.parametrize("alg", ["demsr:superresolution", "demsr:attraction"])
def test_dem_outputs_load_as_hillshade_in_metres(alg, mandakini, tmp_path):
    layer = _load(alg, {"INPUT": mandakini, "OUTPUT": str(tmp_path / f"{alg[6:]}.tif")})
    renderer = layer.renderer()
    assert renderer.type() == "hillshade"
    assert renderer.multiDirectional()
    assert renderer.zFactor() == pytest.approx(1.0)  # UTM: metres over metres


def test_geographic_dem_gets_a_degree_z_factor(jacksboro, tmp_path):
    layer = _load("demsr:attraction", {"INPUT": jacksboro, "OUTPUT": str(tmp_path / "a.tif")})
    ds = gdal.Open(jacksboro)
    gt = ds.GetGeoTransform()
    lat = math.radians(gt[3] + gt[5] * ds.RasterYSize / 2)
    metres_per_degree_east = math.pi / 180 * 6378137 * math.cos(lat)  # within 0.3 % (ellipsoid)
    assert layer.renderer().zFactor() == pytest.approx(1 / metres_per_degree_east, rel=5e-3)


def test_tpi_loads_with_its_ramp(mandakini, tmp_path):
    layer = _load("demsr:tpi", {"INPUT": mandakini, "STANDARDIZE": True,
                                "OUTPUT": str(tmp_path / "tpi.tif")})
    renderer = layer.renderer()
    assert renderer.type() == "singlebandpseudocolor"
    assert (renderer.classificationMin(), renderer.classificationMax()) == (-2.5, 2.5)


def test_spread_loads_with_a_sequential_ramp_up_to_its_98th_percentile(jacksboro, tmp_path):
    import numpy as np
    from qgis.core import QgsProject

    crop = str(tmp_path / "crop.tif")
    gdal.Translate(crop, jacksboro, srcWin=[60, 40, 150, 120])
    spread = str(tmp_path / "spread.tif")
    _load("demsr:superresolution", {"INPUT": crop, "OUTPUT": str(tmp_path / "sr.tif"),
                                    "OUTPUT_SPREAD": spread})
    layer = next(lyr for lyr in QgsProject.instance().mapLayers().values()
                 if lyr.source() == spread)
    renderer = layer.renderer()
    assert renderer.type() == "singlebandpseudocolor"
    values = gdal.Open(spread).ReadAsArray()
    values = values[np.isfinite(values)]
    assert renderer.classificationMin() == 0.0
    assert renderer.classificationMax() == pytest.approx(np.percentile(values, 98), rel=0.05)
    assert 0 < renderer.classificationMax() < values.max()


def test_stylers_are_released_once_used(mandakini, tmp_path):
    from demsr.algorithms import base

    _load("demsr:attraction", {"INPUT": mandakini, "OUTPUT": str(tmp_path / "a.tif")})
    _load("demsr:tpi", {"INPUT": mandakini, "OUTPUT": str(tmp_path / "t.tif")})
    assert base._PENDING_STYLERS == set()
