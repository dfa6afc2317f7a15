"""demsr:surveyrmse across vertical references, through the doors users take (processing.run,
qgis_process): points made from the Mandakini DEM's own EGM96 heights and converted by the test
to WGS84 ellipsoidal heights (tests/helpers_vertical.py) agree with it to the millimetre when
the DEM declares its compound CRS and nothing is set, and when the references are stated by
parameters on a DEM that declares none; without any declaration the log names the assumption;
with an empty PROJ data folder the run fails naming the geoid grid."""
import os

import pytest
from osgeo import ogr, osr
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsFeature,
    QgsGeometry,
    QgsPoint,
    QgsProcessingException,
    QgsVectorLayer,
)

from tests.helpers_vertical import declare_egm96, ellipsoidal_points


@pytest.fixture(scope="module")
def points(mandakini_path):
    return ellipsoidal_points(mandakini_path, n=150, seed=2)


@pytest.fixture(scope="module")
def mandakini_path():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.path.join(root, "data", "mandakini_srtm90_utm44.tif")


@pytest.fixture(scope="module")
def declared_dem(mandakini_path, tmp_path_factory):
    return declare_egm96(mandakini_path,
                         str(tmp_path_factory.mktemp("vert") / "mandakini_egm96.tif"))


def layer_of(points, crs="EPSG:4979", z_in_geometry=True):
    """The points as a memory layer: lon/lat with the ellipsoidal height as Z (a 3D CRS that
    declares ellipsoidal heights), or in a 2D CRS with the height in the field `h`."""
    kind = "PointZ" if z_in_geometry else "Point"
    layer = QgsVectorLayer(f"{kind}?crs={crs}&field=name:string(10)&field=h:double", "gnss",
                           "memory")
    feats = []
    for i, (lon, lat, h) in enumerate(zip(points["lon"], points["lat"], points["h"])):
        f = QgsFeature(layer.fields())
        f.setGeometry(QgsGeometry(QgsPoint(lon, lat, h)) if z_in_geometry
                      else QgsGeometry(QgsPoint(lon, lat)))
        f.setAttributes([f"p{i}", float(h)])
        feats.append(f)
    layer.dataProvider().addFeatures(feats)
    assert layer.featureCount() == len(feats) and layer.crs().isValid()
    return layer


def outputs(tmp_path):
    return {"OUTPUT_RESIDUALS": "TEMPORARY_OUTPUT", "OUTPUT_TABLE": "TEMPORARY_OUTPUT",
            "OUTPUT_HTML": str(tmp_path / "report.html")}


def table_row(result):
    table = result["OUTPUT_TABLE"]
    (feat,) = table.getFeatures()
    return dict(zip(table.fields().names(), feat.attributes()))


def test_declared_compound_dem_only_mandatory_parameters(run_alg, points, declared_dem,
                                                         log_feedback):
    res = run_alg("demsr:surveyrmse", {"DEMS": [declared_dem], "POINTS": layer_of(points)},
                  feedback=log_feedback)
    assert res["RMSE"] <= 0.01 and abs(res["ME"]) <= 0.01
    assert ("DEM heights: EGM96 height (EPSG:5773), declared by the DEM; "
            "survey heights: WGS 84 ellipsoidal height (EPSG:4979), declared by the survey "
            "points; survey heights transformed by PROJ, correction mean +2") in log_feedback.text


def test_every_output_says_both_references_and_keeps_both_heights(run_alg, points, declared_dem,
                                                                  tmp_path):
    res = run_alg("demsr:surveyrmse", {"DEMS": [declared_dem], "POINTS": layer_of(points),
                                       **outputs(tmp_path)})
    row = table_row(res)
    assert row["dem_vref"] == "EGM96 height (EPSG:5773), declared by the DEM"
    assert row["pts_vref"] == ("WGS 84 ellipsoidal height (EPSG:4979), declared by the survey "
                               "points")
    shift = points["H"] - points["h"]
    assert row["vcorr_me"] == pytest.approx(shift.mean(), abs=1e-6)
    assert row["vcorr_min"] == pytest.approx(shift.min(), abs=1e-6)
    assert row["vcorr_max"] == pytest.approx(shift.max(), abs=1e-6)
    assert all(len(n) <= 10 for n in res["OUTPUT_TABLE"].fields().names())
    # residual layer: the original ellipsoidal height stays in the geometry's Z, the height in
    # the DEM's reference is <prefix>_h
    prefix = row["prefix"]
    out = res["OUTPUT_RESIDUALS"]
    assert out.fields().names() == ["name", "h", f"{prefix}_z", f"{prefix}_e", f"{prefix}_s",
                                    f"{prefix}_h"]
    by_name = {f["name"]: f for f in out.getFeatures()}
    for i in (0, 17, 149):
        f = by_name[f"p{i}"]
        assert f.geometry().constGet().z() == pytest.approx(points["h"][i], abs=1e-9)
        assert f[f"{prefix}_h"] == pytest.approx(points["H"][i], abs=1e-6)
        assert f[f"{prefix}_e"] == pytest.approx(f[f"{prefix}_z"] - f[f"{prefix}_h"], abs=1e-9)
    page = open(res["OUTPUT_HTML"], encoding="utf-8").read()
    assert "<h2>Vertical references</h2>" in page
    assert f"<td>{shift.mean():+.3f}</td><td>{shift.min():+.3f}</td>" in page


@pytest.mark.parametrize("dem_parameters", [
    {"DEMS_VERTICAL": 2},  # EGM96
    {"DEMS_VERTICAL": 4, "DEMS_VERTICAL_CRS": "EPSG:5773"},  # the same, by code
])
def test_references_stated_by_parameters(run_alg, points, mandakini_path, dem_parameters,
                                         tmp_path, log_feedback):
    layer = layer_of(points, crs="EPSG:4326", z_in_geometry=False)
    res = run_alg("demsr:surveyrmse", {
        "DEMS": [mandakini_path], "POINTS": layer, "ELEVATION_FIELD": "h",
        "POINTS_VERTICAL": 1, **dem_parameters, **outputs(tmp_path)}, feedback=log_feedback)
    assert res["RMSE"] <= 0.01
    row = table_row(res)
    assert row["dem_vref"] == "EGM96 height (EPSG:5773), stated by a parameter"
    assert row["pts_vref"] == "WGS 84 ellipsoidal height (EPSG:4979), stated by a parameter"
    assert "assumed" not in log_feedback.text


def test_without_any_declaration_the_log_names_the_assumption(run_alg, points, mandakini_path,
                                                              tmp_path, log_feedback):
    layer = layer_of(points, crs="EPSG:4326", z_in_geometry=False)
    res = run_alg("demsr:surveyrmse", {"DEMS": [mandakini_path], "POINTS": layer,
                                       "ELEVATION_FIELD": "h", **outputs(tmp_path)},
                  feedback=log_feedback)
    assert res["RMSE"] > 20  # as before: the heights compared as they come
    assert ("Neither the survey points nor mandakini_srtm90_utm44 declare a vertical reference "
            "and none is stated: the heights are compared as they are, assumed to share one."
            ) in log_feedback.text
    row = table_row(res)
    assert (row["dem_vref"], row["pts_vref"], row["vcorr_me"]) == ("undeclared", "undeclared",
                                                                   0.0)
    # nothing known about heights: the residual layer is laid out as before
    assert not any(n.endswith("_h") for n in res["OUTPUT_RESIDUALS"].fields().names())


def test_bad_vertical_parameters_are_clear_errors_before_any_output(run_alg, points,
                                                                    mandakini_path, tmp_path):
    layer = layer_of(points)
    files = {"OUTPUT_TABLE": str(tmp_path / "t.gpkg"), "OUTPUT_HTML": str(tmp_path / "r.html")}
    for extra, message in (
            ({"POINTS_VERTICAL": 4}, "POINTS_VERTICAL = 4 .* needs the code in "
                                     "POINTS_VERTICAL_CRS"),
            ({"DEMS_VERTICAL": 2, "DEMS_VERTICAL_CRS": "EPSG:3855"}, "say two things"),
            ({"DEMS_VERTICAL_CRS": "EPSG:32644"}, "'EPSG:32644' is neither a vertical CRS"),
            ({"DEMS_VERTICAL": 9}, "DEMS_VERTICAL: '9' is not an accepted value")):
        with pytest.raises(QgsProcessingException, match=message):
            run_alg("demsr:surveyrmse", {"DEMS": [mandakini_path], "POINTS": layer, **files,
                                         **extra})
    assert list(tmp_path.iterdir()) == []


def test_parameters_are_advanced_and_optional(demsr_provider):
    from qgis.core import QgsProcessingParameterDefinition

    alg = demsr_provider.algorithm("surveyrmse")
    for name in ("DEMS_VERTICAL", "DEMS_VERTICAL_CRS", "POINTS_VERTICAL", "POINTS_VERTICAL_CRS"):
        p = alg.parameterDefinition(name)
        assert p.flags() & QgsProcessingParameterDefinition.FlagAdvanced, name
        assert p.flags() & QgsProcessingParameterDefinition.FlagOptional, name
    assert alg.parameterDefinition("DEMS_VERTICAL").defaultValue() == 0
    assert alg.parameterDefinition("POINTS_VERTICAL").options()[1] == \
        "WGS84 ellipsoidal height (EPSG:4979)"


def write_gpkg(path, points):
    """The points as a GeoPackage PointZ layer in EPSG:4979 (ellipsoidal heights as Z)."""
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4979)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    lyr = ds.CreateLayer("gnss", srs, ogr.wkbPoint25D)
    for lon, lat, h in zip(points["lon"], points["lat"], points["h"]):
        f = ogr.Feature(lyr.GetLayerDefn())
        g = ogr.Geometry(ogr.wkbPoint25D)
        g.AddPoint(float(lon), float(lat), float(h))
        f.SetGeometry(g)
        lyr.CreateFeature(f)
    ds = None
    assert QgsCoordinateReferenceSystem("EPSG:4979").isValid()


def test_qgis_process_with_an_empty_proj_data_folder_names_the_grid(qgis_process,
                                                                    qgis_process_env, points,
                                                                    declared_dem, tmp_path):
    gpkg = tmp_path / "gnss.gpkg"
    write_gpkg(gpkg, points)
    args = ("run", "demsr:surveyrmse", "--", f"DEMS={declared_dem}", f"POINTS={gpkg}")
    good = qgis_process(*args)
    assert good.returncode == 0, good.stdout + good.stderr
    rmse = next(line for line in good.stdout.splitlines() if line.startswith("RMSE"))
    assert float(rmse.split(":")[1]) <= 0.01, good.stdout
    # the same run where PROJ finds its database but no grid
    empty = tmp_path / "proj"
    empty.mkdir()
    db = next(os.path.join(p, "proj.db") for p in osr.GetPROJSearchPaths()
              if os.path.exists(os.path.join(p, "proj.db")))
    os.symlink(db, empty / "proj.db")
    saved = dict(qgis_process_env)
    qgis_process_env.update(PROJ_DATA=str(empty), PROJ_LIB=str(empty), PROJ_NETWORK="OFF")
    try:
        bad = qgis_process(*args)
    finally:
        qgis_process_env.clear()
        qgis_process_env.update(saved)
    text = bad.stdout + bad.stderr
    assert bad.returncode != 0, text
    assert "us_nga_egm96_15.tif" in text and "RMSE:" not in bad.stdout, text
