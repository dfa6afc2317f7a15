"""What a new user hits first on the command line: every algorithm runs with only its mandatory
inputs, every enum value the help lists is accepted (and nothing else), and a killed or
interrupted run leaves nothing under the output name."""
import json
import os
import re
import signal
import subprocess
import time

import pytest
from osgeo import gdal, ogr, osr

from tests.helpers_guard import untouched

from .conftest import QGIS_PROCESS

ALGORITHMS = ("superresolution", "attraction", "tpi", "landforms", "surveyrmse")


@pytest.fixture(scope="module")
def survey_points(tmp_path_factory):
    """20 points with a Z inside the bundled Mandakini DEM, as a GeoPackage."""
    from .conftest import DATA

    dem = os.path.join(DATA, "mandakini_srtm90_utm44.tif")
    ds = gdal.Open(dem)
    x0, dx, _, y0, _, dy = ds.GetGeoTransform()
    z = ds.ReadAsArray()
    path = str(tmp_path_factory.mktemp("points") / "survey.gpkg")
    out = ogr.GetDriverByName("GPKG").CreateDataSource(path)
    srs = osr.SpatialReference()
    srs.ImportFromWkt(ds.GetProjection())
    layer = out.CreateLayer("survey", srs, ogr.wkbPoint25D)
    for i in range(20):
        row, col = 100 + 20 * i, 80 + 15 * i
        feature = ogr.Feature(layer.GetLayerDefn())
        point = ogr.Geometry(ogr.wkbPoint25D)
        point.AddPoint(x0 + (col + 0.5) * dx, y0 + (row + 0.5) * dy, float(z[row, col]) + 1.0)
        feature.SetGeometry(point)
        layer.CreateFeature(feature)
    out = None
    return dem, path


def _mandatory_only(alg, dem, points, tmp_path):
    if alg == "surveyrmse":
        return [f"DEMS={dem}", f"POINTS={points}"]
    return [f"INPUT={dem}", f"OUTPUT={tmp_path / (alg + '.tif')}"]


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_every_algorithm_runs_with_only_its_mandatory_inputs(alg, qgis_process, survey_points,
                                                             tmp_path):
    dem, points = survey_points
    proc = qgis_process("--json", "run", f"demsr:{alg}", "--",
                        *_mandatory_only(alg, dem, points, tmp_path))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(proc.stdout[proc.stdout.index("{"):])["results"]
    if alg == "surveyrmse":
        assert results["RMSE"] == pytest.approx(1.0, abs=1e-3)  # every point 1 m above
    else:
        assert gdal.Open(results["OUTPUT"]) is not None


def _listed_enum_values(help_text):
    """{parameter: [listed option numbers]} from `qgis_process help`."""
    listed = {}
    for block in re.split(r"\n(?=[A-Z_]+: )", help_text):
        name = block.split(":", 1)[0]
        if "Argument type:\tenum" in block:
            listed[name] = [int(v) for v in re.findall(r"^\t\t- (\d+): ", block, re.M)]
    return listed


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_enum_values_the_help_lists_are_the_accepted_ones(alg, qgis_process, demsr_provider,
                                                          survey_points, tmp_path):
    from qgis.core import QgsProcessingContext

    help_text = qgis_process("help", f"demsr:{alg}").stdout
    listed = _listed_enum_values(help_text)
    algorithm = demsr_provider.algorithm(alg)
    enums = {p.name(): p for p in algorithm.parameterDefinitions() if p.type() == "enum"}
    assert set(listed) == set(enums)
    dem, points = survey_points
    base = dict(a.split("=", 1) for a in _mandatory_only(alg, dem, points, tmp_path))
    context = QgsProcessingContext()
    for name, values in listed.items():
        assert values == list(range(len(enums[name].options())))
        for value in values:
            ok, message = algorithm.checkParameterValues({**base, name: str(value)}, context)
            assert ok, (name, value, message)
        for bad in (str(len(values)), "-1", "nonsense"):
            ok, message = algorithm.checkParameterValues({**base, name: bad}, context)
            assert not ok
            accepted = ", ".join(f"{i} ({o})" for i, o in enumerate(enums[name].options()[:-1]))
            assert name in message and accepted in message, message


def test_a_wrong_enum_value_on_the_command_line_lists_the_accepted_ones(qgis_process,
                                                                        mandakini, tmp_path):
    out = tmp_path / "t.tif"
    proc = qgis_process("run", "demsr:tpi", "--", f"INPUT={mandakini}", "SHAPE=circle",
                        f"OUTPUT={out}")
    assert proc.returncode != 0
    said = proc.stdout + proc.stderr
    assert "SHAPE: 'circle' is not an accepted value" in said
    assert "0 (square), 1 (circle) or 2 (annulus)" in said
    assert not out.exists()


def _start_long_run(qgis_process_env, mandakini, out):
    """Super-resolution x4 in 16-cell tiles: several seconds, with progress to wait for."""
    proc = subprocess.Popen(
        [QGIS_PROCESS, "run", "demsr:superresolution", "--", f"INPUT={mandakini}", "SCALE=4",
         "TILE_SIZE=16", "DEVICE=2", f"OUTPUT={out}"],
        env=qgis_process_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen = b""
    deadline = time.time() + 120
    while b"10..." not in seen and time.time() < deadline:  # the run is well under way
        chunk = proc.stdout.read1(256)
        if not chunk:
            break
        seen += chunk
    assert b"10..." in seen, seen.decode(errors="replace")
    return proc, seen


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_killed_or_interrupted_run_leaves_no_file_under_the_output_name(
        sig, qgis_process_env, mandakini, tmp_path):
    out = tmp_path / "sr.tif"
    with untouched({"INPUT": mandakini}):  # the inputs guard, for this run outside the fixture
        proc, seen = _start_long_run(qgis_process_env, mandakini, out)
        proc.send_signal(sig)
        rest, _ = proc.communicate(timeout=120)
    said = (seen + rest).decode(errors="replace")
    assert proc.returncode != 0, said
    assert not out.exists()
    if sig == signal.SIGINT:
        # qgis_process turns Ctrl-C into a cancel; the plugin stops at the next tile.
        assert "Cancelled by the user; no output was written." in said
        assert "DEVICE_USED" not in said.split("Cancelled")[-1]
        assert os.listdir(tmp_path) == []


def _surveyrmse(qgis_process, survey_points, *outputs):
    dem, points = survey_points
    proc = qgis_process("--json", "run", "demsr:surveyrmse", "--", f"DEMS={dem}",
                        f"POINTS={points}", *outputs)
    results = (json.loads(proc.stdout[proc.stdout.index("{"):])["results"]
               if proc.returncode == 0 else None)
    return proc, results


def test_surveyrmse_without_outputs_or_with_one_writes_only_that(qgis_process, survey_points,
                                                                 tmp_path):
    proc, bare = _surveyrmse(qgis_process, survey_points)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert set(bare) == {"RMSE", "ME", "MAE", "NMAD"}  # the numbers always, no layer
    assert bare["ME"] == pytest.approx(-1.0, abs=1e-3)  # e = DEM − survey, survey 1 m above
    table = str(tmp_path / "table.csv")
    proc, one = _surveyrmse(qgis_process, survey_points, f"OUTPUT_TABLE={table}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert set(one) == {"RMSE", "ME", "MAE", "NMAD", "OUTPUT_TABLE"}
    assert one["OUTPUT_TABLE"] == table and one["RMSE"] == bare["RMSE"]
    assert os.listdir(tmp_path) == ["table.csv"]
    rows = open(table, encoding="utf-8").read().splitlines()
    assert len(rows) == 2 and rows[0].startswith("dem,source,crs,sampling,prefix,n_points")


def test_surveyrmse_with_an_unwritable_report_leaves_nothing(qgis_process, survey_points,
                                                             tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    proc, _ = _surveyrmse(qgis_process, survey_points, f"OUTPUT_RESIDUALS={out / 'res.shp'}",
                          f"OUTPUT_TABLE={out / 'table.gpkg'}",
                          f"OUTPUT_HTML={tmp_path / 'missing' / 'report.html'}")
    assert proc.returncode != 0
    said = proc.stdout + proc.stderr
    assert "accuracy report (OUTPUT_HTML)" in said and "does not exist" in said
    assert "Traceback" not in said
    assert os.listdir(out) == []  # neither the residual layer (nor its side-cars) nor the table
