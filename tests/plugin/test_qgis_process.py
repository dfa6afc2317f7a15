"""The command-line front door: qgis_process.bin sees the plugin and runs its algorithms."""
import glob
import json
import os
import shutil
import subprocess

import numpy as np
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


def _survey_gpkg(path, n=40):
    """PointZ survey points over the Mandakini DEM (UTM 44N), heights in the geometry's Z."""
    from osgeo import ogr, osr

    dem = gdal.Open(os.path.join(ROOT, "data", "mandakini_srtm90_utm44.tif"))
    x0, dx, _, y0, _, dy = dem.GetGeoTransform()
    rng = np.random.default_rng(0)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32644)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = ds.CreateLayer("survey", srs, ogr.wkbPoint25D)
    for _ in range(n):
        feat = ogr.Feature(layer.GetLayerDefn())
        point = ogr.Geometry(ogr.wkbPoint25D)
        point.AddPoint(x0 + dx * rng.uniform(0, dem.RasterXSize),
                       y0 + dy * rng.uniform(0, dem.RasterYSize), rng.uniform(1000, 4000))
        feat.SetGeometry(point)
        layer.CreateFeature(feat)
    ds = None
    return str(path)


def _surveyrmse(env, tmp_path, *outputs):
    dem = os.path.join(ROOT, "data", "mandakini_srtm90_utm44.tif")
    points = tmp_path / "survey.gpkg"
    if not points.exists():
        _survey_gpkg(points)
    return _run(env, "--json", "run", "demsr:surveyrmse", "--", f"DEMS={dem}",
                f"POINTS={points}", *outputs)


def test_surveyrmse_with_only_its_mandatory_inputs(qgis_env, tmp_path):
    proc = _surveyrmse(qgis_env, tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    results = json.loads(proc.stdout)["results"]
    assert set(results) == {"RMSE", "ME", "MAE", "NMAD"}
    assert all(np.isfinite(results[k]) and results[k] >= 0 for k in ("RMSE", "MAE", "NMAD"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["survey.gpkg"]  # nothing written
    # one output only: that file and the same numbers
    table = str(tmp_path / "table.csv")
    proc = _surveyrmse(qgis_env, tmp_path, f"OUTPUT_TABLE={table}")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    one = json.loads(proc.stdout)["results"]
    assert one["OUTPUT_TABLE"] == table and one["RMSE"] == results["RMSE"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["survey.gpkg", "table.csv"]
    rows = open(table, encoding="utf-8").read().splitlines()
    assert len(rows) == 2 and rows[0].startswith("dem,source,crs,sampling,prefix,n_points")


def test_surveyrmse_unwritable_report_leaves_nothing(qgis_env, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    proc = _surveyrmse(qgis_env, tmp_path, f"OUTPUT_RESIDUALS={out / 'res.shp'}",
                       f"OUTPUT_TABLE={out / 'table.gpkg'}",
                       f"OUTPUT_HTML={tmp_path / 'missing' / 'report.html'}")
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "OUTPUT_HTML" in text and "does not exist" in text and "Traceback" not in text
    assert list(out.iterdir()) == []
