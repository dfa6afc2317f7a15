"""demsr:superresolution through processing.run and qgis_process, with tiny test models."""
import json
import os

import numpy as np
import pytest
from osgeo import gdal
from qgis.core import QgsProcessingException

from tests.helpers_guard import guarded_run
from tests.helpers_onnx import write_model


@pytest.fixture
def model(tmp_path):
    return write_model(tmp_path / "smooth_x2.onnx", "smooth", 2)


def test_parameters_and_outputs(demsr_provider):
    alg = demsr_provider.algorithm("superresolution")
    names = {p.name() for p in alg.parameterDefinitions()}
    assert names == {"INPUT", "SCALE", "MODEL", "MODEL_FILE", "DEVICE", "TILE_SIZE", "ENSEMBLE",
                     "OUTPUT", "OUTPUT_SPREAD", "ENGINE"}
    assert "DEVICE_USED" in {o.name() for o in alg.outputDefinitions()}
    assert alg.parameterDefinition("DEVICE").options() == ["auto", "cuda", "cpu"]
    assert alg.parameterDefinition("DEVICE").defaultValue() == 0
    assert alg.parameterDefinition("MODEL").options() == ["fastsr", "vdsr30"]
    assert alg.parameterDefinition("MODEL").defaultValue() == 0  # fastsr, the best measured
    scale = alg.parameterDefinition("SCALE")
    assert scale.type() == "number" and scale.defaultValue() == 2 and scale.minimum() == 2
    assert alg.canExecute()[0]


def test_runs_with_a_custom_model(run_alg, mandakini, model, tmp_path):
    out = str(tmp_path / "sr.tif")
    res = run_alg("demsr:superresolution", {
        "INPUT": mandakini, "SCALE": 2, "MODEL_FILE": model, "DEVICE": 2,
        "TILE_SIZE": 200, "OUTPUT": out,
    })
    assert res["DEVICE_USED"] == "CPUExecutionProvider"
    src, dst = gdal.Open(mandakini), gdal.Open(res["OUTPUT"])
    assert (dst.RasterXSize, dst.RasterYSize) == (2 * src.RasterXSize, 2 * src.RasterYSize)
    assert dst.GetGeoTransform()[0] == src.GetGeoTransform()[0]
    assert dst.GetGeoTransform()[1] == pytest.approx(src.GetGeoTransform()[1] / 2)
    assert dst.GetRasterBand(1).GetNoDataValue() == -9999
    z = src.GetRasterBand(1).ReadAsArray()
    y = dst.GetRasterBand(1).ReadAsArray()
    assert np.array_equal(y == -9999, np.kron(z == -9999, np.ones((2, 2), bool)))


def test_errors_reach_the_user(run_alg, jacksboro, model, tmp_path):
    out = str(tmp_path / "sr.tif")
    with pytest.raises(QgsProcessingException, match="does not support scale x3"):
        run_alg("demsr:superresolution", {"INPUT": jacksboro, "SCALE": 3, "MODEL_FILE": model,
                                          "OUTPUT": out})
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(QgsProcessingException, match="DEVICE=cuda"):
            run_alg("demsr:superresolution", {"INPUT": jacksboro, "SCALE": 2,
                                              "MODEL_FILE": model, "DEVICE": 1,
                                              "OUTPUT": out})
    assert not os.path.exists(out)


def test_cannot_execute_without_onnxruntime(demsr_provider, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    ok, message = demsr_provider.algorithm("superresolution").canExecute()
    assert not ok and "onnxruntime" in message and "install" in message


def test_cancel_leaves_no_output(demsr_provider, mandakini, model, tmp_path):
    from qgis.core import QgsProcessingFeedback

    class CancelSoon(QgsProcessingFeedback):
        def setProgress(self, value):  # noqa: N802 (QGIS's name)
            super().setProgress(value)
            if value > 0:
                self.cancel()

    out = str(tmp_path / "sr.tif")
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        guarded_run("demsr:superresolution", {
            "INPUT": mandakini, "SCALE": 2, "MODEL_FILE": model, "TILE_SIZE": 100,
            "OUTPUT": out}, feedback=CancelSoon())
    assert not os.path.exists(out)


def test_qgis_process(mandakini, model, tmp_path, qgis_process):
    out = str(tmp_path / "sr.tif")
    proc = qgis_process("--json", "run", "demsr:superresolution", "--", f"INPUT={mandakini}",
                        "SCALE=2", f"MODEL_FILE={model}", "DEVICE=2", f"OUTPUT={out}")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert result["results"]["DEVICE_USED"] == "CPUExecutionProvider"
    assert gdal.Open(out).RasterXSize == 2 * gdal.Open(mandakini).RasterXSize


def test_ensemble_and_spread_outputs(run_alg, jacksboro, model, tmp_path):
    plain = run_alg("demsr:superresolution", {"INPUT": jacksboro, "MODEL_FILE": model,
                                              "OUTPUT": str(tmp_path / "plain.tif")})
    assert not plain["OUTPUT_SPREAD"]
    res = run_alg("demsr:superresolution", {
        "INPUT": jacksboro, "MODEL_FILE": model, "OUTPUT": str(tmp_path / "mean.tif"),
        "OUTPUT_SPREAD": str(tmp_path / "spread.tif")})
    mean = gdal.Open(res["OUTPUT"]).ReadAsArray()
    spread = gdal.Open(res["OUTPUT_SPREAD"]).ReadAsArray()
    assert spread.shape == mean.shape
    assert spread.min() >= 0 and spread.max() > 0
    # The ensemble changes the result, by about the spread.
    diff = np.abs(mean - gdal.Open(plain["OUTPUT"]).ReadAsArray())
    assert 0 < diff.max() < 10 * spread.max()
