"""core.survey.accuracy and core.survey.report: statistics equal hand-computed values, skipped
points are counted by reason, zero usable points is a clear error, and the HTML report is well
formed."""
import dataclasses
import html
import math
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from osgeo import gdal, osr

from core.errors import DemError
from core.grid.progress import RecordingMonitor
from core.grid.raster import RasterInfo, read_array
from core.grid.writing import write_array
from core.survey import accuracy as survey
from core.survey import report, sampling

# reason codes, short so the expected lists line up
OK, OUT, EDG, NOD, POS = (sampling.SAMPLED, sampling.OUTSIDE, sampling.EDGE,
                          sampling.NODATA, sampling.NO_POSITION)


def test_statistics_equal_hand_computed_values_odd_n():
    e = np.array([-2.0, -1.0, 0.0, 1.0, 3.0, 5.0, 10.0])
    s = survey.residual_statistics(e)
    assert s["me"] == pytest.approx(16 / 7)
    assert s["mae"] == pytest.approx(22 / 7)
    assert s["rmse"] == pytest.approx(math.sqrt(140 / 7))  # sqrt(20)
    # sample SD: Σ(e − ē)² = 140 − 7·(16/7)² = 724/7, divided by n − 1 = 6
    assert s["sd"] == pytest.approx(math.sqrt(724 / 42))
    # median(e) = 1; |e − 1| = 3 2 1 0 2 4 9 → median 2
    assert s["nmad"] == pytest.approx(1.4826 * 2)
    # |e| sorted 0 1 1 2 3 5 10; rank h = 6p: LE90 h = 5.4 → 5 + 0.4·5, LE95 h = 5.7 → 5 + 0.7·5
    assert s["le90"] == pytest.approx(7.0)
    assert s["le95"] == pytest.approx(8.5)
    assert s["max_abs"] == 10.0
    assert s["nssda95"] == pytest.approx(1.96 * math.sqrt(20))


def test_statistics_equal_hand_computed_values_even_n():
    e = np.array([4.0, 1.0, 3.0, 2.0])
    s = survey.residual_statistics(e)
    assert s["me"] == pytest.approx(2.5)
    assert s["mae"] == pytest.approx(2.5)
    assert s["rmse"] == pytest.approx(math.sqrt(30 / 4))
    assert s["sd"] == pytest.approx(math.sqrt(5 / 3))
    # median 2.5; |e − 2.5| = 1.5 .5 .5 1.5 → median 1
    assert s["nmad"] == pytest.approx(1.4826)
    assert s["le90"] == pytest.approx(3.7)  # h = 2.7
    assert s["le95"] == pytest.approx(3.85)  # h = 2.85


def test_nmad_is_robust_to_one_blunder():
    e = np.array([-1.0, -0.5, 0.0, 0.5, 1.0, 500.0])
    s = survey.residual_statistics(e)
    assert s["nmad"] == pytest.approx(1.4826 * 0.75)  # median .25; |e − .25| → median .75
    assert s["rmse"] > 200


def test_single_point_has_undefined_sd_but_other_statistics():
    s = survey.residual_statistics(np.array([2.0]))
    assert math.isnan(s["sd"])
    assert s["rmse"] == 2.0 and s["nmad"] == 0.0 and s["le95"] == 2.0


def make_sample(values, reason, method="bilinear"):
    return sampling.Sample(np.array(values, float), np.array(reason, np.uint8), method)


def test_compare_counts_every_skipped_point():
    smp = make_sample([11, 12, np.nan, np.nan, np.nan, 15, np.nan, 20],
                      [OK, OK, OUT, EDG, NOD, OK, POS, OK])
    observed = [10, 10, 10, 10, 10, np.nan, 10, 10]
    comp = survey.compare(smp, observed)
    st = comp.stats
    assert (st.n_points, st.n_used, st.n_skipped) == (8, 3, 5)
    assert (st.n_outside, st.n_edge, st.n_nodata, st.n_no_elevation, st.n_no_position) == (
        1, 1, 1, 1, 1)
    assert st.n_used + st.n_skipped == st.n_points
    np.testing.assert_allclose(comp.residuals, [1, 2, np.nan, np.nan, np.nan, np.nan, np.nan, 10])
    assert st.rmse == pytest.approx(math.sqrt((1 + 4 + 100) / 3))
    # the sampled value is kept for the residual layer even when the survey has no elevation
    assert comp.predicted[5] == 15
    ids = np.arange(100, 108)
    listed = survey.skipped_ids(ids, comp.reason)
    assert listed == {OUT: ([102], 1), EDG: ([103], 1), NOD: ([104], 1), sampling.NO_ELEVATION:
                      ([105], 1), POS: ([106], 1)}
    assert survey.skipped_ids(np.arange(10), np.full(10, OUT, np.uint8), limit=3) == {
        OUT: ([0, 1, 2], 10)}


def test_zero_usable_points_is_a_clear_error():
    smp = make_sample([np.nan, np.nan, 5.0], [sampling.OUTSIDE, sampling.NODATA, 0])
    with pytest.raises(DemError, match=r"No survey point can be used against dem\.tif.*"
                                       r"1 outside.*1 on nodata.*1 without a survey elevation"):
        survey.compare(smp, [1.0, 2.0, np.nan], name="dem.tif")
    with pytest.raises(DemError, match="No usable point"):
        survey.residual_statistics(np.array([]))


def test_stats_never_nan_with_points():
    rng = np.random.default_rng(0)
    e = rng.normal(0.5, 3, 1000)
    s = survey.residual_statistics(e)
    assert all(np.isfinite(v) for v in s.values())
    assert s["le90"] <= s["le95"] <= s["max_abs"]
    # for normal errors NMAD ≈ SD and RMSE² ≈ ME² + SD²
    assert s["nmad"] == pytest.approx(s["sd"], rel=0.1)
    assert s["rmse"] ** 2 == pytest.approx(s["me"] ** 2 + s["sd"] ** 2 * 999 / 1000)


@pytest.mark.parametrize("n", [50, 20000])  # circles, then a density plot
def test_report_html_has_table_and_wellformed_svgs(n):
    rng = np.random.default_rng(1)
    observed = rng.uniform(500, 3000, n)
    comps = []
    for bias in (0.0, 4.0):
        pred = observed + rng.normal(bias, 5, n)
        reason = np.zeros(n, np.uint8)
        reason[:3] = sampling.OUTSIDE
        pred[:3] = np.nan
        comps.append(survey.compare(sampling.Sample(pred, reason, "bicubic"), observed))
    text = report.render_html(["srtm <90 m>", "sr x2"], comps, observed, "bicubic")
    assert "<table>" in text and "srtm &lt;90 m&gt;" in text and "a = -0.5" in text
    assert f"{comps[1].stats.rmse:.3f}" in text
    svgs = re.findall(r"<svg.*?</svg>", text, flags=re.S)
    assert len(svgs) == 4
    for svg in svgs:
        ET.fromstring(svg)  # well-formed XML
    assert ("density" in text) == (n > report.SCATTER_POINTS_MAX)


def test_write_html_to_a_bad_folder_is_a_clear_error(tmp_path):
    comp = survey.compare(make_sample([1.0, 2.0], [0, 0]), [1.5, 1.0])
    with pytest.raises(DemError, match="Cannot write the report"):
        report.write_html(str(tmp_path / "nope" / "r.html"), ["a"], [comp], [1.5, 1.0], "nearest")
    report.write_html(str(tmp_path / "r.html"), ["a"], [comp], [1.5, 1.0], "nearest")
    assert (tmp_path / "r.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


# The statistics list and the whole assessment ---------------------------------------------


def test_one_statistics_list_orders_the_stats_the_table_and_the_report():
    attributes = [st.attribute for st in survey.STATISTICS]
    assert [f.name for f in dataclasses.fields(survey.AccuracyStats)] == attributes
    fields = [st.field for st in survey.STATISTICS]
    assert all(len(f) <= 10 for f in fields)  # shapefile (DBF) field names
    assert len({f.lower() for f in fields}) == len(fields)
    comp = survey.compare(make_sample([11.0, 12.0, np.nan], [OK, OK, OUT]), [10.0, 10.0, 10.0])
    for st in survey.STATISTICS:
        assert type(getattr(comp.stats, st.attribute)) is st.kind, st
    text = report.render_html(["a"], [comp], np.array([10.0, 10.0, 10.0]), "nearest")
    header = re.search(r"<tr><th>DEM</th>(.*?)</tr>", text).group(1)
    assert re.findall(r"<th>(.*?)</th>", header) == [html.escape(st.label)
                                                     for st in survey.STATISTICS]


def srs_wkt(epsg):
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    return srs.ExportToWkt()


@pytest.fixture
def three_dems(tmp_path):
    """a: a UTM 44N grid with a nodata hole; b: a + 2 m on the same grid; c: a warped to
    WGS84 lon/lat (another CRS and grid)."""
    info = RasterInfo(60, 50, (600000.0, 90.0, 0.0, 3300000.0, 0.0, -90.0), srs_wkt(32644),
                      data_type="Float32")
    r, c = np.mgrid[0:50, 0:60].astype(float)
    z = 1000.0 + 3.0 * c + 2.0 * r + 0.05 * c * r
    z[20:24, 30:35] = np.nan
    a, b, geo = (str(tmp_path / n) for n in ("a.tif", "b.tif", "c_wgs84.tif"))
    write_array(a, z, info, nodata=-9999.0)
    write_array(b, z + 2.0, info, nodata=-9999.0)
    gdal.Warp(geo, a, dstSRS="EPSG:4326", resampleAlg="bilinear")
    return a, b, geo, info


def lonlat_survey(info, n=400, seed=7):
    """Points over the UTM grid (a few beyond it) as WGS84 lon/lat, with survey heights."""
    rng = np.random.default_rng(seed)
    x0, dx, _, y0, _, dy = info.geotransform
    x = x0 + dx * rng.uniform(-3, info.width + 3, n)
    y = y0 + dy * rng.uniform(-3, info.height + 3, n)
    to_geo = osr.CoordinateTransformation(_srs(32644), _srs(4326))
    latlon = np.array([to_geo.TransformPoint(a, b)[:2] for a, b in zip(x, y)])
    observed = 1000.0 + rng.normal(0, 30, n) + 0.03 * (x - x0)
    observed[[5, 6]] = np.nan
    return latlon[:, 1], latlon[:, 0], observed


def _srs(epsg):
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)  # EPSG axis order (lat, lon for 4326): brute force, no shortcuts
    return srs


def test_assess_equals_brute_force_per_dem(three_dems, monkeypatch):
    a, b, geo, info = three_dems
    lon, lat, observed = lonlat_survey(info)
    # brute force: every point through osr one by one, each DEM sampled and compared alone
    to_utm = osr.CoordinateTransformation(_srs(4326), _srs(32644))
    utm = np.array([to_utm.TransformPoint(p, q)[:2] for p, q in zip(lat, lon)])
    expected = [survey.compare(sampling.sample_raster(a, utm[:, 0], utm[:, 1], "bicubic"),
                               observed),
                survey.compare(sampling.sample_raster(b, utm[:, 0], utm[:, 1], "bicubic"),
                               observed),
                survey.compare(sampling.sample_raster(geo, lon, lat, "bicubic"), observed)]
    calls = {"reproject": 0, "plan": 0}

    def counting(name, function):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(survey, "reproject_points", counting("reproject",
                                                               survey.reproject_points))
    monkeypatch.setattr(survey, "plan_sampling", counting("plan", survey.plan_sampling))
    monitor = RecordingMonitor()
    dems = [survey.DemSource(a, "a"), survey.DemSource(b, "b"), survey.DemSource(geo)]
    got = survey.assess(dems, lon, lat, observed, "bicubic", srs_wkt(4326),
                        ids=np.arange(100, 500), monitor=monitor)
    assert calls == {"reproject": 1, "plan": 2}  # once per CRS; a and b share one plan
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g.reason, e.reason)
        np.testing.assert_allclose(g.residuals, e.residuals, rtol=0, atol=1e-6)
        assert g.stats.as_dict() == pytest.approx(e.stats.as_dict(), rel=1e-9, abs=1e-9)
    st = got[0].stats
    assert st.n_outside > 0 and st.n_nodata > 0 and st.n_no_elevation == 2
    assert got[1].stats.me == pytest.approx(st.me + 2.0)
    assert got[2].stats.n_used > 250
    log = "\n".join(monitor.infos + monitor.warnings)
    assert f"a: N used {st.n_used} of 400" in log and "c_wgs84.tif: N used" in log
    assert "b: 2 point(s) skipped without a survey elevation (NULL/NaN): ids 105, 106" in log


def test_assess_without_crs_uses_the_coordinates_as_they_are(three_dems, tmp_path):
    a, _, _, info = three_dems
    x0, dx, _, y0, _, dy = info.geotransform
    rng = np.random.default_rng(3)
    x, y = x0 + dx * rng.uniform(0, 60, 50), y0 + dy * rng.uniform(0, 50, 50)
    observed = np.full(50, 1100.0)
    direct = survey.compare(sampling.sample_raster(a, x, y, "nearest"), observed)
    nocrs = str(tmp_path / "nocrs.tif")
    write_array(nocrs, read_array(a)[0], RasterInfo(60, 50, info.geotransform))
    for dem, points_crs, warning in (
            (survey.DemSource(a, "a"), "", "survey points have no CRS"),
            (survey.DemSource(nocrs, "n"), srs_wkt(4326), "n has no CRS"),
            (survey.DemSource(a, "a", crs_wkt=""), srs_wkt(4326), "a has no CRS")):
        monitor = RecordingMonitor()
        (got,) = survey.assess([dem], x, y, observed, "nearest", points_crs, monitor=monitor)
        assert any(warning in w for w in monitor.warnings), (warning, monitor.warnings)
        assert got.stats.as_dict() == direct.stats.as_dict()
    with pytest.raises(DemError, match="at least one DEM"):
        survey.assess([], x, y, observed)


def test_check_writable_names_the_reason(tmp_path):
    report.check_writable(str(tmp_path / "r.html"))  # a writable folder: no error
    assert list(tmp_path.iterdir()) == []  # and the check leaves nothing behind
    with pytest.raises(DemError, match=r"Cannot write the report \(X\) to .*nope.*: the "
                                       r"folder .* does not exist"):
        report.check_writable(str(tmp_path / "nope" / "r.html"), "the report (X)")
    with pytest.raises(DemError, match="that is a folder"):
        report.check_writable(str(tmp_path))
    (tmp_path / "file").write_text("x")
    with pytest.raises(DemError, match="does not exist"):  # a file is not a folder
        report.check_writable(str(tmp_path / "file" / "r.html"))


def test_field_prefixes_are_unique_and_short():
    got = survey.field_prefixes(["SRTM 90m UTM", "srtm_90m_utm_x2", "2024 lidar", "éé"],
                         ["SRTM_90_z", "id"])
    # SRTM_90_z is an input field (DBF compares case-insensitively) → numbered prefixes
    assert got[:2] == ["SRTM_91", "srtm_92"]
    assert got[2] == "d2024_l" and got[3] == "dem"
    names = [p + s for p in got for s in ("_z", "_e", "_s")]
    assert all(len(n) <= 10 for n in names)
    assert len({n.lower() for n in names}) == len(names)
    assert not {n.lower() for n in names} & {"srtm_90_z", "id"}


def test_field_prefixes_are_readable_where_the_format_allows():
    names = ["SRTM 90m UTM (2024 reprocessing)", "SRTM 90m UTM (2024 reprocessing) copy"]
    assert survey.prefix_length("/data/out.shp") == survey.prefix_length("x.DBF") == 7
    assert survey.prefix_length("/data/out.gpkg") == survey.prefix_length("") == 28
    got = survey.field_prefixes(names, ["id"], survey.prefix_length("out.gpkg"))
    assert got == ["SRTM_90m_UTM__2024_reprocess", "SRTM_90m_UTM__2024_reproces1"]
    assert survey.field_prefixes(names, ["id"], survey.prefix_length("out.shp")) == \
        ["SRTM_90", "SRTM_91"]
