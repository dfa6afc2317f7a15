"""The advanced ENGINE parameter: a Dask LocalCluster run through processing.run equals the
in-process run, and the CLI's defaults are the Processing defaults."""
import numpy as np
import pytest
from osgeo import gdal

pytest.importorskip("distributed")

ALGORITHMS = ("superresolution", "attraction", "tpi", "landforms")


def _values(path):
    ds = gdal.Open(path)
    band = ds.GetRasterBand(1)
    return (band.ReadAsArray(), band.GetNoDataValue(), ds.GetGeoTransform(), ds.GetProjection())


def test_engine_parameter_is_advanced_and_optional(demsr_provider):
    from qgis.core import QgsProcessingParameterDefinition

    for name in ALGORITHMS:
        param = demsr_provider.algorithm(name).parameterDefinition("ENGINE")
        assert param is not None, name
        assert param.flags() & QgsProcessingParameterDefinition.FlagAdvanced
        assert param.flags() & QgsProcessingParameterDefinition.FlagOptional
        assert param.defaultValue() == ""


def test_batch_defaults_are_the_processing_defaults(demsr_provider):
    from demsr.core import attraction
    from demsr.core.declarations import SPECS

    for name in ALGORITHMS:
        alg = demsr_provider.algorithm(name)
        for key, default in SPECS[name].defaults().items():
            param = alg.parameterDefinition(key.upper())
            assert param is not None, (name, key)
            value = param.defaultValue()
            if hasattr(param, "options") and not param.usesStaticStrings():
                value = param.options()[value]
                if name == "attraction" and key == "assignment":
                    value = attraction.ASSIGNMENTS[param.defaultValue()]
            if key == "model":
                value = None  # the bundled default family; the CLI resolves it the same way
            if key == "scale" and name == "superresolution":
                value = int(value)
            assert value == default, (name, key, value, default)


def test_tpi_with_local_engine_equals_in_process(run_alg, jacksboro, tmp_path):
    params = {"INPUT": jacksboro, "RADIUS": 4.0, "STANDARDIZE": True}
    ref = run_alg("demsr:tpi", {**params, "OUTPUT": str(tmp_path / "ref.tif")})["OUTPUT"]
    out = run_alg("demsr:tpi", {**params, "ENGINE": "local:2",
                                "OUTPUT": str(tmp_path / "dask.tif")})["OUTPUT"]
    a, b = _values(out), _values(ref)
    assert a[1:] == b[1:]
    assert np.abs(a[0].astype(float) - b[0]).max() <= 1e-4
    assert not (tmp_path / "dask_chunks").exists()



def test_superresolution_spread_with_local_engine_equals_in_process(run_alg, jacksboro,
                                                                     tmp_path):
    crop = str(tmp_path / "crop.tif")
    gdal.Translate(crop, jacksboro, srcWin=[40, 30, 130, 110])
    runs = {}
    for name, engine in (("ref", ""), ("dask", "local:2")):
        runs[name] = run_alg("demsr:superresolution", {
            "INPUT": crop, "OUTPUT": str(tmp_path / f"{name}.tif"), "ENGINE": engine,
            "OUTPUT_SPREAD": str(tmp_path / f"{name}_spread.tif")})
    for key in ("OUTPUT", "OUTPUT_SPREAD"):
        a, b = _values(runs["dask"][key]), _values(runs["ref"][key])
        assert a[2:] == b[2:], key
        assert np.isnan(a[1]) and np.isnan(b[1]), key  # a Float32 grid from an Int16 without nodata
        assert np.array_equal(np.isnan(a[0]), np.isnan(b[0])), key
        assert np.nanmax(np.abs(a[0].astype(float) - b[0])) <= 1e-3, key
    spread = _values(runs["dask"]["OUTPUT_SPREAD"])[0]
    assert spread.min() >= 0 and spread.max() > 0
    assert not (tmp_path / "dask_chunks").exists()
