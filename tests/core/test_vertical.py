"""core.survey.vertical and survey.assess across vertical references: survey points made from the
Mandakini DEM's own EGM96 heights and converted by the test to WGS84 ellipsoidal heights
(tests/helpers_vertical.py) agree with it to the millimetre whether the references are declared
or stated; without any the log names the assumption; the correction itself equals PROJ's
command-line tools' figures; a missing geoid grid is an error naming it, never a zero
correction."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from core.errors import DemError
from core.grid.progress import RecordingMonitor
from core.survey import accuracy as survey
from core.survey import report, vertical
from tests.helpers_vertical import declare_egm96, ellipsoidal_points, srs, wkt

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MANDAKINI = os.path.join(ROOT, "data", "mandakini_srtm90_utm44.tif")
WGS84_2D = wkt("EPSG:4326")
WGS84_3D = wkt("EPSG:4979")


@pytest.fixture(scope="module")
def points():
    return ellipsoidal_points(MANDAKINI, n=200, seed=1)


@pytest.fixture(scope="module")
def declared_dem(tmp_path_factory):
    return declare_egm96(MANDAKINI, str(tmp_path_factory.mktemp("vert") / "mandakini_egm96.tif"))


def grid_installed(*names):
    return any(os.path.exists(os.path.join(p, n)) for p in vertical._search_paths()
               for n in names)


# The correction itself against PROJ's own command-line tools ---------------------------------

# Computed outside the plugin with PROJ 9.1.1 (Debian 12's proj-bin, egm96_15.gtx from its
# proj-data), latitude, longitude and ellipsoidal height in, EGM96 height out:
#   printf "30.5 79.0 0\n5.0 78.0 0\n-5.0 147.0 0\n47.0 8.0 0\n-60.0 -60.0 0\n" |
#       cs2cs -d 4 EPSG:4979 EPSG:4326+5773
# `projinfo -s EPSG:4979 -t EPSG:4326+5773 -o PROJ --hide-ballpark` names the one operation,
# "WGS 84 to EGM96 height (1)": +inv +proj=vgridshift +grids=us_nga_egm96_15.tif.
CS2CS_EGM96 = [  # lon, lat, EGM96 height of a point at ellipsoidal height 0 (= −N)
    (79.0, 30.5, 27.1295),  # Mandakini, Himalaya
    (78.0, 5.0, 104.6826),  # south of Sri Lanka: the geoid's deepest low
    (147.0, -5.0, -73.5134),  # New Guinea: one of its highs
    (8.0, 47.0, -48.3887),  # Switzerland
    (-60.0, -60.0, -20.1986),  # Drake Passage
]


def test_the_correction_equals_cs2cs_figures():
    lon, lat, want = (np.array(c) for c in zip(*CS2CS_EGM96))
    src = vertical.stated("EPSG:4979", WGS84_2D, "the points")
    dst = vertical.stated("EPSG:5773", WGS84_2D, "the DEM")
    got = vertical.transform_heights(lon, lat, np.zeros(lon.size), WGS84_2D, src, dst)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)  # cs2cs printed 4 decimals
    # and back: printf "30.5 79.0 1000\n5.0 78.0 50\n" | cs2cs -d 4 EPSG:4326+5773 EPSG:4979
    back = vertical.transform_heights([79.0, 78.0], [30.5, 5.0], [1000.0, 50.0], WGS84_2D,
                                      dst, src)
    np.testing.assert_allclose(back, [972.8705, -54.6826], rtol=0, atol=1e-4)


def test_egm2008_is_used_where_installed_and_named_where_not():
    src = vertical.stated("EPSG:4979", WGS84_2D, "the points")
    dst = vertical.stated("EPSG:3855", WGS84_2D, "the DEM")
    if grid_installed("us_nga_egm08_25.tif", "egm08_25.gtx"):
        egm08 = vertical.transform_heights([79.0], [30.5], [0.0], WGS84_2D, src, dst)[0]
        assert abs(egm08 - CS2CS_EGM96[0][2]) < 10.0  # the two geoids agree within metres
        assert egm08 != CS2CS_EGM96[0][2]
    else:  # Debian's proj-data (12 and 13) has no EGM2008
        with pytest.raises(DemError, match=r"us_nga_egm08_25\.tif.*projsync"):
            vertical.transform_heights([79.0], [30.5], [0.0], WGS84_2D, src, dst)


# The case: points from the DEM's own heights -----------------------------------------

def test_declared_compound_dem_and_3d_points_agree_to_the_millimetre(points, declared_dem):
    monitor = RecordingMonitor()
    (comp,) = survey.assess([survey.DemSource(declared_dem, "dem")], points["lon"],
                            points["lat"], points["h"], "bilinear", WGS84_3D, monitor=monitor)
    assert comp.stats.n_used == 200
    assert comp.stats.rmse <= 0.01
    np.testing.assert_allclose(comp.observed, points["H"], rtol=0, atol=1e-6)
    link = comp.vertical
    assert link.transformed and not link.note
    shift = points["H"] - points["h"]
    assert (link.mean, link.min, link.max) == pytest.approx(
        (shift.mean(), shift.min(), shift.max()), abs=1e-6)
    assert 20 < link.min < link.max < 34  # the geoid lies 20–34 m below the ellipsoid here
    text = "\n".join(monitor.infos)
    assert ("dem: DEM heights: EGM96 height (EPSG:5773), declared by the DEM; "
            "survey heights: WGS 84 ellipsoidal height (EPSG:4979), declared by the survey "
            "points; survey heights transformed by PROJ, correction mean "
            f"{link.mean:+.3f} m") in text
    assert not monitor.warnings


def test_references_stated_by_parameter_on_a_dem_that_declares_none(points):
    comps = survey.assess([survey.DemSource(MANDAKINI, "dem", vertical="EPSG:5773")],
                          points["lon"], points["lat"], points["h"], "bicubic", WGS84_2D,
                          points_vertical="EPSG:4979")
    assert comps[0].stats.rmse <= 0.01
    assert comps[0].vertical.dem == "EGM96 height (EPSG:5773), stated by a parameter"
    # UTM points with an ellipsoidal height stated: converted to lon/lat for the geoid
    utm = survey.assess([survey.DemSource(MANDAKINI, vertical="EPSG:5773")], points["x"],
                        points["y"], points["h"], "nearest", wkt("EPSG:32644"),
                        points_vertical="EPSG:4979")
    assert utm[0].stats.rmse <= 0.01


def test_without_any_declaration_the_log_names_the_assumption(points, declared_dem):
    monitor = RecordingMonitor()
    (comp,) = survey.assess([survey.DemSource(MANDAKINI, "dem")], points["lon"], points["lat"],
                            points["h"], "bilinear", WGS84_2D, monitor=monitor)
    # heights compared as they come: off by the geoid undulation, as before this change
    assert comp.stats.rmse == pytest.approx(np.sqrt(np.mean((points["H"] - points["h"]) ** 2)),
                                            abs=1e-6)
    assert comp.stats.rmse > 20
    assert not comp.vertical.transformed
    assert any("Neither the survey points nor dem declare a vertical reference" in w
               and "assumed to share one" in w for w in monitor.warnings)
    # one side declared: the other is assumed to share it, and the log says so
    monitor = RecordingMonitor()
    (comp,) = survey.assess([survey.DemSource(declared_dem, "dem")], points["lon"],
                            points["lat"], points["h"], "bilinear", WGS84_2D, monitor=monitor)
    assert not comp.vertical.transformed and comp.stats.rmse > 20
    assert any("The survey points declare no vertical reference: their heights are assumed "
               "to be in dem's, EGM96 height (EPSG:5773)" in w for w in monitor.warnings)
    assert comp.vertical.points == "EGM96 height (EPSG:5773), assumed: the points declare none"


def test_a_missing_geoid_grid_fails_naming_it(points, declared_dem, tmp_path):
    """An empty PROJ data folder (its database alone): the run fails naming the EGM96 grid,
    where PROJ's ballpark would have given RMSE 25.9 m with a zero correction."""
    empty = tmp_path / "proj"
    empty.mkdir()
    db = next(os.path.join(p, "proj.db") for p in vertical._search_paths()
              if os.path.exists(os.path.join(p, "proj.db")))
    os.symlink(db, empty / "proj.db")
    np.save(tmp_path / "pts.npy", np.vstack([points["lon"], points["lat"], points["h"]]))
    script = textwrap.dedent(f"""
        import numpy as np
        from core.survey import accuracy as survey
        from core.errors import DemError
        lon, lat, h = np.load({str(tmp_path / "pts.npy")!r})
        try:
            c = survey.assess([survey.DemSource({declared_dem!r})], lon, lat, h, "bilinear",
                              "EPSG:4979")
            print("RMSE", c[0].stats.rmse)
        except DemError as err:
            print("DemError:", err)
        """)
    env = dict(os.environ, PROJ_DATA=str(empty), PROJ_LIB=str(empty), PROJ_NETWORK="OFF",
               HOME=str(tmp_path))  # no user PROJ folder either
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "RMSE" not in run.stdout
    assert "DemError: PROJ cannot transform heights from WGS 84 ellipsoidal height " \
           "(EPSG:4979) to EGM96 height (EPSG:5773)" in run.stdout
    assert "us_nga_egm96_15.tif (formerly egm96_15.gtx)" in run.stdout
    assert "projsync --file us_nga_egm96_15.tif" in run.stdout


def test_a_transformation_that_changes_no_height_is_refused(monkeypatch):
    """Should PROJ ever hand back an operation that leaves the heights alone between two
    different references (a ballpark in disguise), the run stops instead of comparing."""
    def identity(src, dst):
        return vertical.osr.CoordinateTransformation(srs("EPSG:4979"), srs("EPSG:4979"))

    monkeypatch.setattr(vertical, "_transformation", identity)
    src = vertical.stated("EPSG:4979", WGS84_2D, "the points")
    dst = vertical.stated("EPSG:5773", WGS84_2D, "the DEM")
    with pytest.raises(DemError, match="PROJ changed no height .* zero correction, refused"):
        vertical.transform_heights([79.0, 80.0], [30.5, 30.0], [0.0, 10.0], WGS84_2D, src, dst)


# References: declared, stated, compared, chosen by option ------------------------------------

def test_declared_references():
    assert vertical.declared(wkt("EPSG:32644"), "x") is None
    assert vertical.declared("", "x") is None
    assert vertical.declared(wkt("EPSG:32644+5773"), "x").label == "EGM96 height (EPSG:5773)"
    assert vertical.declared(wkt("EPSG:4979"), "x").label == \
        "WGS 84 ellipsoidal height (EPSG:4979)"
    utm3d = srs("EPSG:32644")
    utm3d.PromoteTo3D()
    assert "ellipsoidal height" in vertical.declared(utm3d.ExportToWkt(["FORMAT=WKT2_2018"]),
                                                     "x").label
    a = vertical.declared(wkt("EPSG:32644+5773"), "a")
    assert vertical.same_reference(a, vertical.stated("EPSG:5773", WGS84_2D, "b"))
    assert not vertical.same_reference(a, vertical.stated("EPSG:3855", WGS84_2D, "b"))
    assert not vertical.same_reference(a, vertical.stated("EPSG:4979", WGS84_2D, "b"))
    assert vertical.horizontal_wkt(wkt("EPSG:32644")) == wkt("EPSG:32644")
    assert srs(vertical.horizontal_wkt(wkt("EPSG:32644+5773"))).IsSame(srs("EPSG:32644"))
    assert srs(vertical.horizontal_wkt(WGS84_3D)).IsSame(srs("EPSG:4326"))


def test_stated_references_are_checked():
    with pytest.raises(DemError, match="'EPSG:32644' is neither a vertical CRS"):
        vertical.stated("EPSG:32644", WGS84_2D, "the DEM")
    with pytest.raises(DemError, match="'nonsense' is neither"):
        vertical.stated("nonsense", WGS84_2D, "the DEM")
    with pytest.raises(DemError, match="stated for the DEM, which has no CRS"):
        vertical.stated("EPSG:5773", "", "the DEM")
    navd = vertical.stated("EPSG:5703", wkt("EPSG:4269"), "the DEM")
    assert navd.label == "NAVD88 height (EPSG:5703)" and srs(navd.crs).IsCompound()


@pytest.mark.parametrize("option,code,want", [
    (0, "", ""), (1, "", "EPSG:4979"), (2, "", "EPSG:5773"), (3, "", "EPSG:3855"),
    (4, " EPSG:5703 ", "EPSG:5703"), (0, "EPSG:5703", "EPSG:5703"),
])
def test_options_give_the_stated_code(option, code, want):
    assert vertical.choice_code(option, code, "DEMS_VERTICAL") == want


def test_contradictory_or_incomplete_options_are_clear_errors():
    with pytest.raises(DemError, match=r"POINTS_VERTICAL = 4 .* needs the code in "
                                       r"POINTS_VERTICAL_CRS"):
        vertical.choice_code(4, "", "POINTS_VERTICAL")
    with pytest.raises(DemError, match=r"DEMS_VERTICAL = 2 \(EPSG:5773\) and DEMS_VERTICAL_CRS "
                                       r"= EPSG:3855 say two things"):
        vertical.choice_code(2, "EPSG:3855", "DEMS_VERTICAL")
    with pytest.raises(DemError, match="DEMS_VERTICAL: 7 is not an accepted value"):
        vertical.choice_code(7, "", "DEMS_VERTICAL")


def test_the_report_gives_both_references_and_the_correction(points, declared_dem):
    comps = survey.assess([survey.DemSource(declared_dem, "srtm"),
                           survey.DemSource(MANDAKINI, "plain")], points["lon"], points["lat"],
                          points["h"], "bilinear", WGS84_3D)
    page = report.render_html(["srtm", "plain"], comps, points["h"], "bilinear")
    assert "<h2>Vertical references</h2>" in page
    link = comps[0].vertical
    assert (f"<td>srtm</td><td>EGM96 height (EPSG:5773), declared by the DEM</td>"
            f"<td>WGS 84 ellipsoidal height (EPSG:4979), declared by the survey points</td>"
            f"<td>{link.mean:+.3f}</td><td>{link.min:+.3f}</td><td>{link.max:+.3f}</td>") in page
    # the plain DEM declares nothing: it is assumed to share the points' reference
    assert "plain declares no vertical reference" in page
    assert comps[1].vertical.dem.endswith("assumed: the DEM declares none")
