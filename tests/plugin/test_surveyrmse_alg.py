"""demsr:surveyrmse through processing.run: numbers equal the core's, points in EPSG:4326
against a UTM DEM equal the same points pre-projected, skipped points are counted and listed,
several DEMs in different CRSs, and clear errors for bad input."""
import math
import os

import numpy as np
import pytest
from demsr.core.grid.raster import read_info
from demsr.core.survey import accuracy as survey
from demsr.core.survey import sampling
from osgeo import gdal
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeature,
    QgsGeometry,
    QgsPoint,
    QgsPointXY,
    QgsProcessingException,
    QgsProject,
    QgsVectorLayer,
)

from tests.helpers_guard import guarded_run

UTM = QgsCoordinateReferenceSystem("EPSG:32644")
WGS84 = QgsCoordinateReferenceSystem("EPSG:4326")


def survey_utm(path, n=300, seed=0):
    """UTM points over the DEM (some on the −9999 mask), 3 far outside, elevations = the
    nearest cell + noise; one NULL elevation."""
    info = read_info(path)
    x0, dx, _, y0, _, dy = info.geotransform
    rng = np.random.default_rng(seed)
    x = x0 + dx * rng.uniform(0, info.width, n)
    y = y0 + dy * rng.uniform(0, info.height, n)
    x[:3] = x0 - 5000.0  # outside, to the west
    near = sampling.sample_raster(path, x, y, "nearest")
    z = np.where(np.isfinite(near.values), near.values, 1000.0) + rng.normal(0, 8, n)
    z = z.tolist()
    z[5] = None
    return x, y, z


def memory_points(crs, x, y, z, kind="Point", extra_field=True):
    layer = QgsVectorLayer(f"{kind}?crs={crs.authid()}&field=name:string(20)&field=elev:double"
                           + ("&field=code:string(5)" if extra_field else ""), "survey", "memory")
    feats = []
    for i, (xi, yi, zi) in enumerate(zip(x, y, z)):
        f = QgsFeature(layer.fields())
        if kind.startswith("PointZ"):
            f.setGeometry(QgsGeometry(QgsPoint(xi, yi, math.nan if zi is None else zi)))
        else:
            f.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(xi, yi)))
        f.setAttributes([f"p{i}", zi] + (["abc"] if extra_field else []))
        feats.append(f)
    layer.dataProvider().addFeatures(feats)
    assert layer.featureCount() == len(feats)
    return layer


def transform(xs, ys, src, dst):
    ct = QgsCoordinateTransform(src, dst, QgsProject.instance().transformContext())
    pts = [ct.transform(QgsPointXY(a, b)) for a, b in zip(xs, ys)]
    return np.array([p.x() for p in pts]), np.array([p.y() for p in pts])


def run_rmse(run_alg, dems, points, tmp_path, field="elev", method=1, feedback=None):
    return run_alg("demsr:surveyrmse", {
        "DEMS": dems, "POINTS": points, "ELEVATION_FIELD": field, "SAMPLING": method,
        "OUTPUT_RESIDUALS": "TEMPORARY_OUTPUT", "OUTPUT_TABLE": "TEMPORARY_OUTPUT",
        "OUTPUT_HTML": str(tmp_path / "report.html")}, feedback=feedback)


def table_rows(result):
    table = result["OUTPUT_TABLE"]
    return [f.attributes() for f in table.getFeatures()], table.fields().names()


def test_outputs_equal_core_numbers_and_skips_are_listed(run_alg, mandakini, tmp_path,
                                                         log_feedback):
    x, y, z = survey_utm(mandakini)
    layer = memory_points(UTM, x, y, z)
    fb = log_feedback
    res = run_rmse(run_alg, [mandakini], layer, tmp_path, method=2, feedback=fb)
    # the core on the same arrays gives the same numbers
    obs = np.array([np.nan if v is None else v for v in z])
    comp = survey.compare(sampling.sample_raster(mandakini, x, y, "bicubic"), obs)
    st = comp.stats
    for key, attr in (("RMSE", "rmse"), ("ME", "me"), ("MAE", "mae"), ("NMAD", "nmad")):
        assert res[key] == pytest.approx(getattr(st, attr), rel=1e-12)
    assert st.n_outside == 3 and st.n_no_elevation == 1 and st.n_nodata > 20
    assert st.n_used + st.n_skipped == 300
    rows, names = table_rows(res)
    assert len(rows) == 1
    row = dict(zip(names, rows[0]))
    assert row["dem"] == "mandakini_srtm90_utm44" and row["sampling"] == "bicubic"
    assert row["crs"] == "EPSG:32644"
    for key, field in (("n_used", "n_used"), ("n_nodata", "n_nodata"), ("n_edge", "n_edge"),
                       ("n_no_elevation", "n_no_elev"), ("le95", "le95"), ("sd", "sd"),
                       ("nssda95", "nssda95"), ("max_abs", "max_abs")):
        assert row[field] == pytest.approx(getattr(st, key))
    # the residual layer: every input attribute + <prefix>_z/_e/_s, the layer's name as prefix
    # (a memory layer keeps long names; shapefiles: test_shapefile_residuals_get_short_prefixes)
    out = res["OUTPUT_RESIDUALS"]
    prefix = row["prefix"]
    assert prefix == "mandakini_srtm90_utm44"
    assert out.fields().names() == ["name", "elev", "code", f"{prefix}_z", f"{prefix}_e",
                                    f"{prefix}_s"]
    feats = list(out.getFeatures())
    assert len(feats) == 300
    status = [f[f"{prefix}_s"] for f in feats]
    assert status.count("outside") == 3 and status.count("no_elevation") == 1
    assert status.count("ok") == st.n_used
    f0 = next(f for f in feats if f[f"{prefix}_s"] == "ok")
    assert f0["code"] == "abc"
    assert f0[f"{prefix}_e"] == pytest.approx(f0[f"{prefix}_z"] - f0["elev"])
    # every skipped point is listed in the log with its id and reason
    assert "3 point(s) skipped outside the raster: ids 1, 2, 3" in fb.text
    assert "1 point(s) skipped without a survey elevation (NULL/NaN): ids 6" in fb.text
    assert f"{st.n_nodata} point(s) skipped with nodata" in fb.text
    html = open(res["OUTPUT_HTML"], encoding="utf-8").read()
    assert html.count("<svg") == 2 and "mandakini_srtm90_utm44" in html


def test_wgs84_points_equal_preprojected_points(run_alg, mandakini, tmp_path):
    x, y, z = survey_utm(mandakini, seed=1)
    lon, lat = transform(x, y, UTM, WGS84)
    geo = memory_points(WGS84, lon, lat, z)
    ux, uy = transform(lon, lat, WGS84, UTM)  # the same points, pre-projected
    utm = memory_points(UTM, ux, uy, z)
    for method in (0, 1, 2):
        a = run_rmse(run_alg, [mandakini], geo, tmp_path, method=method)
        b = run_rmse(run_alg, [mandakini], utm, tmp_path, method=method)
        for key in ("RMSE", "ME", "MAE", "NMAD"):
            assert a[key] == pytest.approx(b[key], rel=1e-9, abs=1e-9), (method, key)
        ra, names = table_rows(a)
        rb, _ = table_rows(b)
        stats_a = dict(zip(names[5:], ra[0][5:]))  # after dem, source, crs, sampling, prefix
        stats_b = dict(zip(names[5:], rb[0][5:]))
        assert stats_a["n_used"] > 100 and stats_a["n_outside"] == 3
        assert stats_a == pytest.approx(stats_b, rel=1e-9, abs=1e-9), method


def test_several_dems_in_different_crs_and_geometry_z(run_alg, mandakini, tmp_path):
    geo_dem = str(tmp_path / "mandakini_wgs84.tif")
    gdal.Warp(geo_dem, mandakini, dstSRS="EPSG:4326", resampleAlg="bilinear")
    x, y, z = survey_utm(mandakini, seed=2)
    zlayer = memory_points(UTM, x, y, z, kind="PointZ", extra_field=False)
    res = run_rmse(run_alg, [mandakini, geo_dem], zlayer, tmp_path, field=None)
    rows, names = table_rows(res)
    by = [dict(zip(names, r)) for r in rows]
    assert [r["crs"] for r in by] == ["EPSG:32644", "EPSG:4326"]
    assert by[0]["rmse"] == pytest.approx(res["RMSE"])
    # the warped copy is close to the original at these points but not identical
    assert by[1]["n_used"] > 150
    assert abs(by[1]["rmse"] - by[0]["rmse"]) < 0.5 * by[0]["rmse"]
    # geometry Z equals the same values in a field
    flayer = memory_points(UTM, x, y, z)
    res_f = run_rmse(run_alg, [mandakini], flayer, tmp_path)
    assert res_f["RMSE"] == pytest.approx(res["RMSE"], rel=1e-12)
    fields = res["OUTPUT_RESIDUALS"].fields().names()
    assert len(set(n.lower() for n in fields)) == len(fields) == 2 + 6


def test_bad_inputs_are_clear_errors(run_alg, mandakini, tmp_path):
    x, y, z = survey_utm(mandakini, n=20, seed=3)
    layer = memory_points(UTM, x, y, z)
    with pytest.raises(QgsProcessingException, match="not numeric"):
        run_rmse(run_alg, [mandakini], layer, tmp_path, field="name")
    with pytest.raises(QgsProcessingException, match="no Z"):
        run_rmse(run_alg, [mandakini], layer, tmp_path, field=None)
    line = QgsVectorLayer("LineString?crs=EPSG:32644&field=elev:double", "lines", "memory")
    f = QgsFeature(line.fields())
    f.setGeometry(QgsGeometry.fromPolylineXY([QgsPointXY(x[5], y[5]), QgsPointXY(x[6], y[6])]))
    f.setAttributes([100.0])
    line.dataProvider().addFeatures([f])
    with pytest.raises(QgsProcessingException, match="must hold points"):
        run_rmse(run_alg, [mandakini], line, tmp_path)
    far = memory_points(UTM, x - 1e6, y, z)
    with pytest.raises(QgsProcessingException, match="No survey point can be used"):
        run_rmse(run_alg, [mandakini], far, tmp_path)
    empty = memory_points(UTM, x, y, [None] * 20)
    with pytest.raises(QgsProcessingException, match="20 without a survey elevation"):
        run_rmse(run_alg, [mandakini], empty, tmp_path)
    # every failure happens before anything is written: no report left behind
    assert not (tmp_path / "report.html").exists()


def test_multipoints_one_part_used_several_parts_listed(run_alg, mandakini, tmp_path,
                                                        log_feedback):
    x, y, z = survey_utm(mandakini, n=40, seed=4)
    single = memory_points(UTM, x, y, z)
    multi = QgsVectorLayer("MultiPoint?crs=EPSG:32644&field=name:string(20)&field=elev:double"
                           "&field=code:string(5)", "multi", "memory")
    feats = []
    for f in single.getFeatures():
        m = QgsFeature(multi.fields())
        m.setGeometry(QgsGeometry.fromMultiPointXY([f.geometry().asPoint()]))
        m.setAttributes(f.attributes())
        feats.append(m)
    # feature 11 gets a second part: one survey height cannot belong to two positions
    feats[10].setGeometry(QgsGeometry.fromMultiPointXY([QgsPointXY(x[10], y[10]),
                                                        QgsPointXY(x[11], y[11])]))
    multi.dataProvider().addFeatures(feats)
    ref = run_rmse(run_alg, [mandakini], single, tmp_path)
    got = run_rmse(run_alg, [mandakini], multi, tmp_path, feedback=log_feedback)
    rows_ref, names = table_rows(ref)
    rows_got, _ = table_rows(got)
    st_ref, st_got = dict(zip(names, rows_ref[0])), dict(zip(names, rows_got[0]))
    assert st_got["n_no_pos"] == 1
    assert "1 point(s) skipped without a single position" in log_feedback.text
    assert "ids 11" in log_feedback.text  # memory-layer ids start at 1
    status_ref = residual_status(ref, st_ref["prefix"])
    status_got = residual_status(got, st_got["prefix"])
    assert status_got.pop(11) == "no_position"
    status_ref.pop(11)
    assert status_got == status_ref  # every single-part multipoint is sampled like a point
    assert st_got["n_used"] == list(status_got.values()).count("ok")


def residual_status(result, prefix):
    return {f.id(): f[f"{prefix}_s"] for f in result["OUTPUT_RESIDUALS"].getFeatures()}


def test_cancel_stops_the_run(mandakini, demsr_provider, tmp_path):
    from qgis.core import QgsProcessingFeedback

    class CancelSoon(QgsProcessingFeedback):
        def setProgress(self, value):  # noqa: N802 (QGIS's name)
            super().setProgress(value)
            if value > 0:
                self.cancel()

    x, y, z = survey_utm(mandakini, n=30000, seed=5)
    layer = memory_points(UTM, x, y, z)
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        guarded_run("demsr:surveyrmse", {
            "DEMS": [mandakini], "POINTS": layer, "ELEVATION_FIELD": "elev", "SAMPLING": 1,
            "OUTPUT_RESIDUALS": "TEMPORARY_OUTPUT", "OUTPUT_TABLE": "TEMPORARY_OUTPUT",
            "OUTPUT_HTML": str(tmp_path / "report.html")}, feedback=CancelSoon())
    assert not (tmp_path / "report.html").exists()


# Optional outputs and all-or-nothing -------------------------------------------------------

NUMBERS = {"RMSE", "ME", "MAE", "NMAD"}


def z_points(path, n=60, seed=6):
    x, y, z = survey_utm(path, n=n, seed=seed)
    return memory_points(UTM, x, y, z, kind="PointZ", extra_field=False)


def test_only_the_mandatory_inputs_or_one_output(run_alg, mandakini, tmp_path):
    layer = z_points(mandakini)
    full = run_alg("demsr:surveyrmse", {
        "DEMS": [mandakini], "POINTS": layer, "OUTPUT_RESIDUALS": "TEMPORARY_OUTPUT",
        "OUTPUT_TABLE": "TEMPORARY_OUTPUT", "OUTPUT_HTML": str(tmp_path / "full.html")})
    bare = run_alg("demsr:surveyrmse", {"DEMS": [mandakini], "POINTS": layer})
    assert set(bare) == NUMBERS  # no output asked for: the numbers only
    for key in NUMBERS:
        assert bare[key] == full[key] and math.isfinite(bare[key])
    assert [p.name for p in tmp_path.iterdir()] == ["full.html"]
    for name, dest in (("OUTPUT_RESIDUALS", str(tmp_path / "res.gpkg")),
                       ("OUTPUT_TABLE", str(tmp_path / "table.csv")),
                       ("OUTPUT_HTML", str(tmp_path / "only.html"))):
        one = run_alg("demsr:surveyrmse", {"DEMS": [mandakini], "POINTS": layer, name: dest})
        assert set(one) == NUMBERS | {name}, name
        assert one["RMSE"] == full["RMSE"]
        written = {p.name for p in tmp_path.iterdir()} - {"full.html"}
        assert written == {os.path.basename(dest)}, (name, written)
        os.remove(dest)
    assert full["OUTPUT_TABLE"].featureCount() == 1
    assert full["OUTPUT_RESIDUALS"].featureCount() == 60


def files_in(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("residuals", ["res.gpkg", "res.shp"])
def test_an_unwritable_report_fails_before_anything_is_left(run_alg, mandakini, tmp_path,
                                                            residuals):
    layer = z_points(mandakini)
    out = tmp_path / "out"
    out.mkdir()
    params = {"DEMS": [mandakini], "POINTS": layer, "OUTPUT_RESIDUALS": str(out / residuals),
              "OUTPUT_TABLE": str(out / "table.gpkg"),
              "OUTPUT_HTML": str(tmp_path / "missing" / "report.html")}
    with pytest.raises(QgsProcessingException,
                       match=r"accuracy report \(OUTPUT_HTML\).*does not exist"):
        run_alg("demsr:surveyrmse", params)
    assert files_in(out) == []  # neither the residual layer (nor its side-cars) nor the table
    # an unwritable table: named, and the residual layer created before it is removed
    params.update(OUTPUT_TABLE=str(tmp_path / "missing" / "table.shp"),
                  OUTPUT_HTML=str(out / "report.html"))
    with pytest.raises(QgsProcessingException, match=r"accuracy table \(OUTPUT_TABLE\)"):
        run_alg("demsr:surveyrmse", params)
    assert files_in(out) == []
    # with good destinations every file is there
    params.update(OUTPUT_TABLE=str(out / "table.gpkg"))
    run_alg("demsr:surveyrmse", params)
    assert {residuals, "table.gpkg", "report.html"} <= set(files_in(out))


def test_a_failure_during_the_work_removes_the_outputs(run_alg, mandakini, tmp_path):
    x, y, z = survey_utm(mandakini, n=20, seed=3)
    far = memory_points(UTM, x - 1e6, y, z)  # no point on the DEM: assess fails
    params = {"DEMS": [mandakini], "POINTS": far, "ELEVATION_FIELD": "elev",
              "OUTPUT_RESIDUALS": str(tmp_path / "res.shp"),
              "OUTPUT_TABLE": str(tmp_path / "table.gpkg"),
              "OUTPUT_HTML": str(tmp_path / "report.html")}
    with pytest.raises(QgsProcessingException, match="No survey point can be used"):
        run_alg("demsr:surveyrmse", params)
    assert files_in(tmp_path) == []


def test_cancel_leaves_no_file(mandakini, demsr_provider, tmp_path):
    from qgis.core import QgsProcessingFeedback

    class CancelInSampling(QgsProcessingFeedback):
        def setProgress(self, value):  # noqa: N802 (QGIS's name)
            super().setProgress(value)
            if value > 10:  # past reading the points: the outputs exist by now
                self.cancel()

    x, y, z = survey_utm(mandakini, n=30000, seed=5)
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        guarded_run("demsr:surveyrmse", {
            "DEMS": [mandakini], "POINTS": memory_points(UTM, x, y, z),
            "ELEVATION_FIELD": "elev", "OUTPUT_RESIDUALS": str(tmp_path / "res.gpkg"),
            "OUTPUT_TABLE": str(tmp_path / "table.csv"),
            "OUTPUT_HTML": str(tmp_path / "report.html")}, feedback=CancelInSampling())
    assert files_in(tmp_path) == []


# Reprojection: QGIS's own operation, vectorised --------------------------------------------


@pytest.mark.parametrize("src,dst,box", [
    ("EPSG:4326", "EPSG:32644", (78, 25, 84, 35)),
    ("EPSG:32644", "EPSG:4326", (200e3, 2.5e6, 800e3, 4e6)),
    ("EPSG:4326", "EPSG:27700", (-5, 50, 1, 58)),  # OSGB36: a datum shift
    ("EPSG:4267", "EPSG:3857", (-110, 30, -80, 48)),  # NAD27: another
])
def test_reprojection_agrees_with_qgis_within_a_millimetre(src, dst, box):
    from demsr.algorithms.surveyrmse import _crs_wkt, _operation
    from demsr.core.survey.reproject import reproject_points

    a, b = QgsCoordinateReferenceSystem(src), QgsCoordinateReferenceSystem(dst)
    context = QgsProject.instance().transformContext()
    rng = np.random.default_rng(0)
    xs, ys = rng.uniform(box[0], box[2], 300), rng.uniform(box[1], box[3], 300)
    operation, inverse = _operation(a, b, context)
    assert operation  # QGIS's pipeline is handed over, not re-chosen by PROJ
    gx, gy = reproject_points(xs, ys, _crs_wkt(a), _crs_wkt(b), operation, inverse)
    ct = QgsCoordinateTransform(a, b, context)
    ref = np.array([[p.x(), p.y()] for p in (ct.transform(QgsPointXY(u, v))
                                             for u, v in zip(xs, ys))])
    tol = 1e-8 if b.isGeographic() else 1e-3  # 1e-8 degrees ≈ 1 mm
    np.testing.assert_allclose(gx, ref[:, 0], rtol=0, atol=tol)
    np.testing.assert_allclose(gy, ref[:, 1], rtol=0, atol=tol)


def test_the_projects_datum_transformation_is_used(run_alg, mandakini, tmp_path):
    """A transformation chosen in the project (here a deliberate 180 m shift east) is what
    the points go through, as QGIS's own transform would do."""
    x, y, z = survey_utm(mandakini, n=200, seed=8)
    lon, lat = transform(x, y, UTM, WGS84)
    geo = memory_points(WGS84, lon, lat, z)
    shifted = memory_points(UTM, x + 180.0, y, z)
    pipeline = ("+proj=pipeline +step +proj=unitconvert +xy_in=deg +xy_out=rad "
                "+step +proj=utm +zone=44 +ellps=WGS84 +step +proj=affine +xoff=180")
    project = QgsProject.instance()
    before = project.transformContext()
    context = project.transformContext()
    assert context.addCoordinateOperation(WGS84, UTM, pipeline)
    project.setTransformContext(context)
    try:
        got = run_rmse(run_alg, [mandakini], geo, tmp_path)
    finally:
        project.setTransformContext(before)
    want = run_rmse(run_alg, [mandakini], shifted, tmp_path)
    plain = run_rmse(run_alg, [mandakini], geo, tmp_path)
    for key in NUMBERS:
        assert got[key] == pytest.approx(want[key], rel=1e-6), key
    assert abs(plain["RMSE"] - got["RMSE"]) > 1e-3  # the shift changes the answer


def test_a_failed_run_drops_only_the_layer_it_added_to_an_existing_geopackage(
        run_alg, mandakini, tmp_path):
    from osgeo import ogr

    gpkg = str(tmp_path / "survey.gpkg")
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(gpkg)
    kept = ds.CreateLayer("benchmarks", geom_type=ogr.wkbPoint)
    kept.CreateFeature(ogr.Feature(kept.GetLayerDefn()))
    ds = None
    x, y, z = survey_utm(mandakini, n=20, seed=3)
    params = {"DEMS": [mandakini], "ELEVATION_FIELD": "elev",
              "OUTPUT_RESIDUALS": f"ogr:dbname='{gpkg}' table=\"residuals\" (geom)",
              "OUTPUT_TABLE": str(tmp_path / "table.gpkg")}
    with pytest.raises(QgsProcessingException, match="No survey point can be used"):
        run_alg("demsr:surveyrmse", {**params, "POINTS": memory_points(UTM, x - 1e6, y, z)})
    assert files_in(tmp_path) == ["survey.gpkg"]
    ds = ogr.Open(gpkg)
    assert [ds.GetLayerByIndex(i).GetName() for i in range(ds.GetLayerCount())] == ["benchmarks"]
    assert ds.GetLayerByName("benchmarks").GetFeatureCount() == 1
    ds = None
    # The same destination on good points adds the layer beside the one already there.
    run_alg("demsr:surveyrmse", {**params, "POINTS": memory_points(UTM, x, y, z)})
    ds = ogr.Open(gpkg)
    assert ds.GetLayerByName("residuals").GetFeatureCount() == 20
    assert ds.GetLayerByName("benchmarks").GetFeatureCount() == 1


@pytest.mark.parametrize("name, prefix", [("residuals.gpkg", "mandakini_srtm90_utm44"),
                                          ("residuals.shp", "mandaki")])
def test_field_prefixes_are_readable_except_in_a_shapefile(run_alg, mandakini, tmp_path, name,
                                                           prefix):
    layer = z_points(mandakini)
    res = run_alg("demsr:surveyrmse", {
        "DEMS": [mandakini, mandakini], "POINTS": layer,
        "OUTPUT_RESIDUALS": str(tmp_path / name), "OUTPUT_TABLE": "TEMPORARY_OUTPUT"})
    rows, names = table_rows(res)
    # the second copy of the same DEM gets a numbered prefix within the same length
    second = "mandakini_srtm90_utm441" if prefix.startswith("mandakini_") else "mandak1"
    assert [dict(zip(names, r))["prefix"] for r in rows] == [prefix, second]
    written = QgsVectorLayer(res["OUTPUT_RESIDUALS"], "residuals", "ogr")
    assert written.fields().names()[-6:] == [f"{p}_{s}" for p in (prefix, second)
                                             for s in ("z", "e", "s")]
