"""TPI against an explicit loop over every window, blocked against whole-raster results."""
import math

import numpy as np
import pytest

from core.errors import DemError
from core.grid.raster import RasterInfo, read_array
from core.grid.writing import write_array
from core.terrain import tpi as tp

UTM = 'PROJCS["WGS 84 / UTM zone 44N",GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],PARAMETER["latitude_of_origin",0],PARAMETER["central_meridian",81],PARAMETER["scale_factor",0.9996],PARAMETER["false_easting",500000],PARAMETER["false_northing",0],UNIT["metre",1]]'  # noqa: E501
WGS84 = 'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]]'  # noqa: E501


def dem_with_holes(h=23, w=29, seed=1):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    z = 500 + 40 * np.sin(x / 4.0) * np.cos(y / 5.0) + rng.normal(0, 3, (h, w))
    z[5:8, 10:14] = np.nan
    z[0, 0] = np.nan
    z[-1, 7] = np.nan
    return z


def brute_tpi(z, shape, radius, inner=0.0, cell=(1.0, 1.0)):
    """Mean over the window by explicit loops; distances measured on the ground (cell sizes)."""
    dx, dy = cell
    h, w = z.shape
    hx = int(math.floor(radius / dx + 1e-9))
    hy = int(math.floor(radius / dy + 1e-9))
    out = np.full(z.shape, np.nan)
    for r in range(h):
        for c in range(w):
            if np.isnan(z[r, c]):
                continue
            total, n = 0.0, 0
            for i in range(-hy, hy + 1):
                for j in range(-hx, hx + 1):
                    rr, cc = r + i, c + j
                    if not (0 <= rr < h and 0 <= cc < w) or np.isnan(z[rr, cc]):
                        continue
                    d = math.hypot(j * dx, i * dy)
                    if shape != "square" and d > radius * (1 + 1e-9):
                        continue
                    if shape == "annulus" and inner > 0 and d < inner * (1 - 1e-9):
                        continue
                    total += z[rr, cc]
                    n += 1
            if n:
                out[r, c] = z[r, c] - total / n
    return out


@pytest.mark.parametrize("shape,radius,inner", [
    ("square", 2, 0), ("square", 4, 0), ("circle", 2, 0), ("circle", 5, 0),
    ("annulus", 5, 2), ("annulus", 3, 3),
])
def test_cells_match_brute_force(shape, radius, inner):
    z = dem_with_holes()
    got = tp.tpi(z, tp.neighbourhood(shape, radius, inner, "cells"))
    want = brute_tpi(z, shape, radius, inner)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, atol=1e-8, equal_nan=True)


@pytest.mark.parametrize("shape,radius,inner", [
    ("square", 95.0, 0), ("circle", 130.0, 0), ("annulus", 150.0, 70.0),
])
def test_map_units_projected_match_brute_force(shape, radius, inner):
    z = dem_with_holes()
    info = RasterInfo(z.shape[1], z.shape[0], (0, 30.0, 0, 0, 0, -30.0), UTM)
    got = tp.tpi(z, tp.neighbourhood(shape, radius, inner, "map units", info))
    want = brute_tpi(z, shape, radius, inner, cell=(30.0, 30.0))
    np.testing.assert_allclose(got, want, atol=1e-8, equal_nan=True)


def test_geographic_map_units_are_metres_and_elliptical():
    z = dem_with_holes(25, 31)
    # 3 arc-second cells at 60° N: about 46 m wide, 93 m tall.
    info = RasterInfo(31, 25, (10.0, 1 / 1200, 0, 60.5, 0, -1 / 1200), WGS84)
    nb = tp.neighbourhood("circle", 200.0, 0, "map units", info)
    from core.grid.raster import ground_pixel_size_m

    dx, dy = ground_pixel_size_m(info)
    assert 45 < dx < 47 and 92 < dy < 94
    assert nb.half_x == int(200 // dx) and nb.half_y == int(200 // dy)
    got = tp.tpi(z, nb)
    want = brute_tpi(z, "circle", 200.0, cell=(dx, dy))
    np.testing.assert_allclose(got, want, atol=1e-8, equal_nan=True)


def test_fft_path_for_large_disc_matches_brute_force():
    z = dem_with_holes(40, 44, seed=3)
    nb = tp.neighbourhood("circle", 9, 0, "cells")
    assert nb.kernel().sum() > tp._DIRECT_MAX_CELLS  # the FFT branch
    np.testing.assert_allclose(tp.tpi(z, nb), brute_tpi(z, "circle", 9), atol=1e-7,
                               equal_nan=True)


def test_no_nodata_edge_counts_shortcut():
    z = dem_with_holes()
    z[np.isnan(z)] = 480.0
    for shape in ("square", "circle"):
        for r in (2, 9, 20):
            np.testing.assert_allclose(tp.tpi(z, tp.neighbourhood(shape, r)),
                                       brute_tpi(z, shape, r), atol=1e-7)


def test_precision_at_high_elevation():
    # 8000 m plus centimetre detail: the reference level keeps the running sums exact.
    z = 8000 + dem_with_holes() / 100
    np.testing.assert_allclose(tp.tpi(z, tp.neighbourhood("square", 4)),
                               brute_tpi(z, "square", 4), atol=1e-9, equal_nan=True)


@pytest.mark.parametrize("standardise", [False, True])
def test_blocked_file_equals_whole_raster(tmp_path, standardise, monkeypatch):
    z = dem_with_holes(61, 53, seed=7)
    info = RasterInfo(53, 61, (0, 30.0, 0, 0, 0, -30.0), UTM, nodata=-9999.0)
    src = str(tmp_path / "dem.tif")
    write_array(src, z, info, "Float32", -9999.0)
    z32, _ = read_array(src)
    nb = tp.neighbourhood("circle", 7)
    want = tp.tpi(z32, nb)
    if standardise:
        v = want[np.isfinite(want)]
        want = (want - v.mean()) / v.std()
    for keep_cells in (0, 10**9):  # recompute per block / keep the first pass's grids
        monkeypatch.setattr(tp, "_KEEP_CELLS", keep_cells)
        out = str(tmp_path / f"tpi{keep_cells}.tif")
        stats = tp.tpi_raster(src, out, nb, standardise, block_size=16)
        got, oinfo = read_array(out)
        assert oinfo.nodata == -9999.0 and oinfo.geotransform == info.geotransform
        np.testing.assert_allclose(got, want, atol=1e-5, equal_nan=True)
        assert stats["cells"] == np.isfinite(z32).sum()


def test_bad_input(tmp_path):
    with pytest.raises(DemError, match="inner radius"):
        tp.neighbourhood("annulus", 3, 5)
    with pytest.raises(DemError, match="positive"):
        tp.neighbourhood("circle", 0)
    info = RasterInfo(10, 10, (0, 30.0, 0, 0, 0, -30.0), UTM)
    with pytest.raises(DemError, match="smaller than one cell"):
        tp.neighbourhood("circle", 10.0, units="map units", info=info)
    with pytest.raises(DemError, match="smaller than the"):
        tp.check_fits(tp.neighbourhood("square", 22), 30, 60)
    src = str(tmp_path / "empty.tif")
    write_array(src, np.full((20, 20), np.nan), RasterInfo(20, 20, info.geotransform, UTM),
                "Float32", -9999.0)
    with pytest.raises(DemError, match="no valid cell"):
        tp.tpi_raster(src, str(tmp_path / "o.tif"), tp.neighbourhood("square", 2))
    assert not (tmp_path / "o.tif").exists()


def test_constant_raster_standardises_to_zero():
    z = np.full((12, 12), 1234.5)
    t = tp.tpi(z, tp.neighbourhood("circle", 8))
    assert np.all(t == 0)
    m = tp.Moments()
    m.add(t)
    assert m.sd == 0
    assert np.all(tp.standardised(t, m) == 0)


@pytest.mark.parametrize("nodata", [True, False])
def test_tpis_of_several_windows_equal_one_at_a_time_and_round_once_to_float32(nodata):
    z = dem_with_holes(30, 34, seed=4)
    if not nodata:
        z[np.isnan(z)] = 505.0
    # A 13-cell disc (summed directly alone, sharing the FFT of the 97-cell ring when together),
    # a square (summed-area table), a ring and a 5-cell disc (always direct).
    nbs = [tp.neighbourhood("circle", 2), tp.neighbourhood("square", 3),
           tp.neighbourhood("annulus", 7, 2), tp.neighbourhood("circle", 1)]
    together = tp.tpis(z, nbs)
    single32 = tp.tpis(z, nbs, np.float32)
    for nb, t, t32 in zip(nbs, together, single32):
        np.testing.assert_allclose(t, tp.tpi(z, nb), atol=1e-10, equal_nan=True)
        np.testing.assert_allclose(t, brute_tpi(z, nb.shape, nb.radius, nb.inner), atol=1e-8,
                                   equal_nan=True)
        assert t32.dtype == np.float32
        np.testing.assert_array_equal(t32, t.astype(np.float32))  # float64 sums, one rounding


def test_moments_merged_over_blocks_equal_numpy():
    rng = np.random.default_rng(2)
    values = rng.normal(3.5, 2.0, (40, 50)).astype(np.float32)
    values[rng.random(values.shape) < 0.1] = np.nan
    m = tp.Moments()
    for rows in (slice(0, 7), slice(7, 8), slice(8, 40)):  # uneven blocks, one without NaN
        m.add(values[rows])
    v = values[np.isfinite(values)].astype(np.float64)
    assert m.n == v.size
    assert m.mean == pytest.approx(v.mean(), rel=1e-13)
    assert m.sd == pytest.approx(v.std(), rel=1e-12)


def test_reference_level_is_the_midrange_of_valid_cells():
    z = np.array([[np.nan, 120.5, 7.25], [3000.0, np.nan, 64.0]], dtype=np.float32)
    assert tp.reference_level(z) == (7.25 + 3000.0) / 2
    assert tp.reference_level(np.full((2, 2), np.nan)) == 0.0
    assert tp.reference_level(np.array([1.0, np.inf, 5.0, -np.inf])) == 3.0  # ±inf are nodata
