"""core.survey and core.report: statistics equal hand-computed values, skipped points are
counted by reason, zero usable points is a clear error, and the HTML report is well formed."""
import math
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from core import report, sampling, survey
from core.errors import DemError

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
