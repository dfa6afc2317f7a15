"""The command-line front door: qgis_process.bin sees the plugin and runs its algorithms."""
import json
import os

import pytest
from osgeo import gdal

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QGIS_PROCESS = "/usr/bin/qgis_process.bin"

pytestmark = pytest.mark.skipif(not os.path.exists(QGIS_PROCESS), reason="no qgis_process.bin")


def test_list_shows_provider_and_algorithms(qgis_process):
    listing = qgis_process("list")
    assert listing.returncode == 0, listing.stderr
    for alg in ("superresolution", "attraction", "tpi", "landforms", "surveyrmse"):
        assert f"demsr:{alg}" in listing.stdout


def test_json_run_writes_a_georeferenced_layer(qgis_process, tmp_path):
    src = os.path.join(ROOT, "data", "mandakini_srtm90_utm44.tif")
    out = str(tmp_path / "tpi.tif")
    proc = qgis_process("--json", "run", "demsr:tpi", "--", f"INPUT={src}", "RADIUS=3",
                f"OUTPUT={out}")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["results"]["OUTPUT"] == out
    ds_in, ds_out = gdal.Open(src), gdal.Open(out)
    assert ds_out.GetGeoTransform() == ds_in.GetGeoTransform()
    assert ds_out.GetProjection() == ds_in.GetProjection()
    assert ds_out.GetRasterBand(1).GetNoDataValue() is not None


def test_bad_input_is_a_message_not_a_traceback(qgis_process, tmp_path):
    not_a_raster = tmp_path / "notes.tif"
    not_a_raster.write_text("not a raster")
    proc = qgis_process("run", "demsr:tpi", "--", f"INPUT={not_a_raster}",
                f"OUTPUT={tmp_path / 'x.tif'}")
    assert proc.returncode != 0
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (tmp_path / "x.tif").exists()
