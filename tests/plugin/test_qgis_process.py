"""The command-line front door: qgis_process.bin sees the plugin and runs its algorithms."""
import glob
import json
import os
import shutil
import subprocess

import pytest
from osgeo import gdal

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QGIS_PROCESS = "/usr/bin/qgis_process.bin"

pytestmark = pytest.mark.skipif(not os.path.exists(QGIS_PROCESS), reason="no qgis_process.bin")


@pytest.fixture(scope="module")
def qgis_env(tmp_path_factory):
    """A throwaway QGIS profile with the plugin enabled, and the venv's packages visible."""
    profile = tmp_path_factory.mktemp("qgis-profile")
    env = dict(os.environ)
    site = glob.glob(os.path.join(ROOT, ".venv", "lib", "python3*", "site-packages"))
    env.update(
        QT_QPA_PLATFORM="offscreen",
        QGIS_PLUGINPATH=os.path.join(ROOT, "build", "plugins"),
        QGIS_CUSTOM_CONFIG_PATH=str(profile),
        PYTHONPATH=os.pathsep.join(site + [env.get("PYTHONPATH", "")]).strip(os.pathsep),
    )
    enable = subprocess.run([QGIS_PROCESS, "plugins", "enable", "demsr"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert enable.returncode == 0, enable.stdout + enable.stderr
    yield env
    shutil.rmtree(profile, ignore_errors=True)


def _run(env, *args):
    return subprocess.run([QGIS_PROCESS, *args], env=env, capture_output=True, text=True,
                          timeout=300)


def test_list_shows_provider_and_algorithms(qgis_env):
    listing = _run(qgis_env, "list")
    assert listing.returncode == 0, listing.stderr
    for alg in ("superresolution", "attraction", "tpi", "landforms", "surveyrmse"):
        assert f"demsr:{alg}" in listing.stdout


def test_json_run_writes_a_georeferenced_layer(qgis_env, tmp_path):
    src = os.path.join(ROOT, "data", "mandakini_srtm90_utm44.tif")
    out = str(tmp_path / "tpi.tif")
    proc = _run(qgis_env, "--json", "run", "demsr:tpi", "--", f"INPUT={src}", "RADIUS=3",
                f"OUTPUT={out}")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["results"]["OUTPUT"] == out
    ds_in, ds_out = gdal.Open(src), gdal.Open(out)
    assert ds_out.GetGeoTransform() == ds_in.GetGeoTransform()
    assert ds_out.GetProjection() == ds_in.GetProjection()
    assert ds_out.GetRasterBand(1).GetNoDataValue() is not None


def test_bad_input_is_a_message_not_a_traceback(qgis_env, tmp_path):
    not_a_raster = tmp_path / "notes.tif"
    not_a_raster.write_text("not a raster")
    proc = _run(qgis_env, "run", "demsr:tpi", "--", f"INPUT={not_a_raster}",
                f"OUTPUT={tmp_path / 'x.tif'}")
    assert proc.returncode != 0
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (tmp_path / "x.tif").exists()
