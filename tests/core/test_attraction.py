"""Attraction model (docs/DESIGN.md §4): the paper's numbers, exact geometry, a brute-force
reference."""
import math
import os
from fractions import Fraction

import numpy as np
import pytest
from osgeo import gdal

from core import attraction as at
from core.errors import DemError
from core.grid.raster import RasterInfo, read_array, read_info
from core.grid.writing import write_array

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "data")
JACKSBORO = os.path.join(DATA, "jacksboro_fault_srtm3.tif")
MODES = [
    (nb, asg, pm)
    for nb in at.NEIGHBOURHOODS
    for asg in at.ASSIGNMENTS
    for pm in (False, True)
]


# ---- independent geometric construction (exact fractions, closed squares) --------------------

def _square(x0, y0, side):
    return (x0, x0 + side, y0, y0 + side)


def _meet(p, q):
    """Closed squares share at least a point (an edge or a corner counts)."""
    return max(p[0], q[0]) <= min(p[1], q[1]) and max(p[2], q[2]) <= min(p[3], q[3])


def geometric_set(scale, a, b, neighbourhood):
    half = Fraction(1, 2)
    sub = _square(Fraction(b, scale) - half, Fraction(a, scale) - half, Fraction(1, scale))
    cells = {o: _square(o[1] - half, o[0] - half, 1) for o in at.OFFSETS}
    if neighbourhood == "touching":
        return {o for o, sq in cells.items() if _meet(sub, sq)}
    if neighbourhood == "quadrant":
        cx, cy = (sub[0] + sub[1]) / 2, (sub[2] + sub[3]) / 2
        quadrants = [
            _square(qx, qy, half) for qx in (-half, Fraction(0)) for qy in (-half, Fraction(0))
        ]
        holding = [q for q in quadrants if q[0] <= cx <= q[1] and q[2] <= cy <= q[3]]
        return {o for o, sq in cells.items() if any(_meet(q, sq) for q in holding)}
    return set(at.OFFSETS)


def brute_force(z, scale, neighbourhood, assignment, preserve_mean):
    """One sub-pixel at a time, straight from the definitions (float64)."""
    h, w = z.shape
    out = np.full((h * scale, w * scale), np.nan)
    for i in range(h):
        for j in range(w):
            z0 = z[i, j]
            if np.isnan(z0):
                continue
            window = {
                (di, dj): z[i + di, j + dj]
                for di in (-1, 0, 1) for dj in (-1, 0, 1)
                if 0 <= i + di < h and 0 <= j + dj < w and not np.isnan(z[i + di, j + dj])
            }
            m = min(0.0, min(window.values()))
            for a in range(scale):
                for b in range(scale):
                    x, y = (b + 0.5) / scale - 0.5, (a + 0.5) / scale - 0.5
                    near = [
                        (window[o], math.hypot(x - o[1], y - o[0]))
                        for o in geometric_set(scale, a, b, neighbourhood) if o in window
                    ]
                    d0 = math.hypot(x, y)
                    if assignment == "max_attraction":
                        # highest attraction, then nearest, then highest value
                        v = min(near, key=lambda c: (-(c[0] - m) / c[1], c[1], -c[0]))[0] \
                            if near else z0
                    elif d0 == 0:
                        v = z0
                    else:
                        num = z0 / d0 + sum(zk / d for zk, d in near)
                        v = num / (1 / d0 + sum(1 / d for _, d in near))
                    out[i * scale + a, j * scale + b] = v
            if preserve_mean:
                blk = out[i * scale:(i + 1) * scale, j * scale:(j + 1) * scale]
                blk += z0 - blk.mean()
    return out


def _rough(h, w, seed, nodata=0.15, offset=500.0):
    rng = np.random.default_rng(seed)
    z = offset + 200 * rng.random((h, w)) + np.add.outer(np.arange(h), np.arange(w)) * 3.7
    z[rng.random((h, w)) < nodata] = np.nan
    return z


# ---- the worked example of Mokarram and Hojati (2018) ----------------------------------------

def test_seed_worked_example_distances_and_attraction():
    edge = at.neighbour_distance(2, 0, 0, -1, 0)
    corner = at.neighbour_distance(2, 0, 0, -1, -1)
    assert round(edge, 6) == 0.790569
    assert round(corner, 5) == 1.06066
    assert round(1700 / edge, 2) == 2150.35
    # Sub-pixel (0, 0) of a centre cell: the north neighbour (1700, edge) attracts 2150.35; a
    # corner at 2200 attracts 2074.2 and loses, at 2300 it attracts 2168.4 and wins.
    for corner_z, expected in ((2200.0, 1700.0), (2300.0, 2300.0)):
        z = np.full((3, 3), 1000.0)
        z[0, 1], z[1, 0], z[0, 0] = 1700.0, 1600.0, corner_z
        out = at.upscale(z, 2, "touching", "max_attraction", preserve_mean=False)
        assert out[2, 2] == expected


def test_s2_touching_equals_quadrant():
    z = _rough(23, 31, seed=1)
    for asg in at.ASSIGNMENTS:
        for pm in (False, True):
            a = at.upscale(z, 2, "touching", asg, pm)
            b = at.upscale(z, 2, "quadrant", asg, pm)
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("scale", [2, 3, 4, 5])
@pytest.mark.parametrize("neighbourhood", at.NEIGHBOURHOODS)
def test_neighbour_sets_equal_geometric_construction(scale, neighbourhood):
    for a in range(scale):
        for b in range(scale):
            got = set(at.neighbour_set(scale, a, b, neighbourhood))
            assert got == geometric_set(scale, a, b, neighbourhood), (a, b)


def test_quadrant_counts_and_touching_inner_subpixels():
    # docs/DESIGN.md §4: three neighbours, five on an axis (odd S), eight for the centre sub-pixel.
    assert len(at.neighbour_set(3, 0, 0, "quadrant")) == 3
    assert len(at.neighbour_set(3, 0, 1, "quadrant")) == 5
    assert len(at.neighbour_set(3, 1, 1, "quadrant")) == 8
    assert at.neighbour_set(3, 1, 1, "touching") == []
    # An inner sub-pixel (touching, S ≥ 3) keeps z0.
    z = _rough(5, 5, seed=2, nodata=0)
    out = at.upscale(z, 3, "touching", "max_attraction", preserve_mean=False)
    np.testing.assert_array_equal(out[1::3, 1::3], z)


# ---- the vectorised result equals the definitions -----------------------------------------------

@pytest.mark.parametrize("scale", [2, 3, 4])
def test_vectorised_equals_brute_force_with_nodata(scale):
    z = _rough(9, 11, seed=scale)
    z[3, :] -= 700  # negative elevations in some windows
    for nb, asg, pm in MODES:
        got = at.upscale(z, scale, nb, asg, pm)
        want = brute_force(z, scale, nb, asg, pm)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9, err_msg=f"{nb} {asg} {pm}")


def test_float32_input_matches_float64():
    z = _rough(40, 37, seed=7)
    for nb, asg, pm in MODES:
        got = at.upscale(z.astype(np.float32), 3, nb, asg, pm)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, at.upscale(z, 3, nb, asg, pm), atol=2e-3)


def test_tie_goes_to_the_nearer_neighbour():
    # S = 2, sub-pixel (0, 0): d(SE) / d(NW) = 5 / 3 exactly, so 300 at NW and 500 at SE attract
    # the same; the nearer (NW, 300) must win.
    d_nw, d_se = at.neighbour_distance(2, 0, 0, -1, -1), at.neighbour_distance(2, 0, 0, 1, 1)
    assert 300 / d_nw == 500 / d_se
    z = np.zeros((3, 3))
    z[0, 0], z[2, 2] = 300.0, 500.0
    out = at.upscale(z, 2, "surrounding", "max_attraction", preserve_mean=False)
    assert out[2, 2] == 300.0


def test_negative_elevations():
    # Raw z/d would let the deeper, farther corner (−11) beat the nearer, higher edge (−10);
    # ranking (z − m)/d with m = min(0, window) gives "higher and nearer attracts more".
    z = np.full((3, 3), -20.0)
    z[0, 1], z[0, 0] = -10.0, -11.0
    out = at.upscale(z, 2, "touching", "max_attraction", preserve_mean=False)
    assert out[2, 2] == -10.0
    # Where the window is non-negative, the paper's raw z/d rule is applied unchanged.
    pos = _rough(12, 12, seed=3, nodata=0)
    lifted = at.upscale(pos + 0.0, 2, "surrounding", "max_attraction", False)
    assert brute_force(pos, 2, "surrounding", "max_attraction", False) == pytest.approx(lifted)
    # The weighted mean is shift-invariant, so below sea level behaves like above.
    z = _rough(12, 14, seed=4)
    a = at.upscale(z - 1000.0, 3, "surrounding", "weighted_mean", True)
    np.testing.assert_allclose(a, at.upscale(z, 3, "surrounding", "weighted_mean", True) - 1000,
                               atol=1e-9)


def test_nodata_stays_nodata_and_isolated_cells_keep_z0():
    z = _rough(10, 10, seed=5, nodata=0.4)
    for nb, asg, pm in MODES:
        out = at.upscale(z, 3, nb, asg, pm)
        np.testing.assert_array_equal(np.isnan(out), np.isnan(np.kron(z, np.ones((3, 3)))))
    lone = np.full((3, 3), np.nan)
    lone[1, 1] = 42.0
    for nb, asg, pm in MODES:
        np.testing.assert_array_equal(at.upscale(lone, 4, nb, asg, pm)[4:8, 4:8], 42.0)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_mean_preservation(scale):
    z = _rough(30, 30, seed=scale, offset=4000.0)
    for nb in at.NEIGHBOURHOODS:
        for asg in at.ASSIGNMENTS:
            out = at.upscale(z, scale, nb, asg, preserve_mean=True)
            back = out.reshape(30, scale, 30, scale).mean(axis=(1, 3))
            assert np.nanmax(np.abs(back - z)) < 1e-4
    # A real DEM in float32 (the plugin's working type) too.
    dem, _ = read_array(JACKSBORO)
    out = at.upscale(dem, scale, "surrounding", "weighted_mean", preserve_mean=True)
    h, w = dem.shape
    back = out.astype(np.float64).reshape(h, scale, w, scale).mean(axis=(1, 3))
    assert np.max(np.abs(back - dem)) < 1e-4


# ---- blocked files, bad input -------------------------------------------------------------------

def _write(path, z, nodata=-9999.0):
    info = RasterInfo(z.shape[1], z.shape[0], (500000.0, 30.0, 0.0, 4000000.0, 0.0, -30.0),
                      "", nodata)
    write_array(str(path), z, info, "Float32", nodata)
    return str(path)


def test_blocked_file_equals_whole_raster(tmp_path):
    z = _rough(37, 29, seed=9).astype(np.float32)
    src = _write(tmp_path / "in.tif", z)
    for nb, asg, pm in [("quadrant", "max_attraction", False), ("surrounding", "weighted_mean",
                                                                True)]:
        dst = str(tmp_path / f"out_{nb}.tif")
        info = at.upscale_file(src, dst, 3, nb, asg, pm, block_size=7)
        got, got_info = read_array(dst)
        np.testing.assert_array_equal(got, at.upscale(z, 3, nb, asg, pm))
        assert got_info.geotransform == (500000.0, 10.0, 0.0, 4000000.0, 0.0, -10.0)
        assert info.nodata == -9999.0 and got_info.nodata == -9999.0


@pytest.mark.parametrize("bad", [1, 0, -2, 2.5, "2", True, float("nan"), None])
def test_bad_scale_is_a_clear_error(bad):
    with pytest.raises(DemError, match="scale"):
        at.check_scale(bad)
    assert at.check_scale(3.0) == 3 and at.check_scale(np.int64(4)) == 4


def test_bad_choices_are_clear_errors():
    with pytest.raises(DemError, match="neighbourhood"):
        at.upscale(np.ones((2, 2)), 2, "rook")
    with pytest.raises(DemError, match="assignment"):
        at.upscale(np.ones((2, 2)), 2, "touching", "median")


def test_one_cell_raster_is_a_constant_block(tmp_path):
    for nb, asg, pm in MODES:
        np.testing.assert_array_equal(at.upscale(np.array([[7.5]]), 3, nb, asg, pm), 7.5)
    src = _write(tmp_path / "one.tif", np.array([[7.5]], dtype=np.float32))
    at.upscale_file(src, str(tmp_path / "one_x4.tif"), 4)
    got, info = read_array(str(tmp_path / "one_x4.tif"))
    assert got.shape == (4, 4) and np.all(got == 7.5)


def test_all_nodata_is_a_clear_error_and_leaves_no_file(tmp_path):
    src = _write(tmp_path / "void.tif", np.full((20, 20), -9999.0, dtype=np.float32))
    dst = tmp_path / "void_x2.tif"
    with pytest.raises(DemError, match="no valid cell"):
        at.upscale_file(src, str(dst), 2, block_size=8)
    assert not dst.exists()
    assert np.isnan(at.upscale(np.full((3, 3), np.nan), 2)).all()


def test_output_beyond_gdal_limits_is_refused_and_large_ones_are_bigtiff(tmp_path):
    src = _write(tmp_path / "wide.tif", np.ones((1, 3000), dtype=np.float32))
    with pytest.raises(DemError, match="cannot address"):
        at.upscale_file(src, str(tmp_path / "huge.tif"), 800_000)
    # The writer's BIGTIFF=IF_SAFER switches to BigTIFF above 2 GB uncompressed, so a compressed
    # output (never much larger than uncompressed) cannot pass classic TIFF's 4 GB. 3601² at
    # S = 7 is 2.5 GB of Float32; at S = 6, 1.9 GB.
    from core.grid.writing import GeoTiffWriter

    for side, magic in ((3601 * 6, 42), (3601 * 7, 43)):
        info = RasterInfo(side, side, (0.0, 1.0, 0.0, 0.0, 0.0, -1.0), "", None)
        path = str(tmp_path / f"big{side}.tif")
        with GeoTiffWriter(path, info, "Float32", float("nan")):
            pass
        with open(path, "rb") as fh:
            assert fh.read(4)[2] == magic  # 43 = BigTIFF, 42 = classic TIFF
        assert read_info(path).width == side
        gdal.Unlink(path)


def test_default_is_the_best_measured_mode():
    import json

    path = os.path.join(os.path.dirname(DATA), "benchmarks", "results",
                        "attraction_accuracy.json")
    if not os.path.exists(path):
        pytest.skip("benchmark results not generated")
    with open(path) as fh:
        best = json.load(fh)["default"]
    short = {"max_attraction": "max", "weighted_mean": "wmean"}
    default = (f"{at.DEFAULT_NEIGHBOURHOOD}/{short[at.DEFAULT_ASSIGNMENT]}"
               f"{'+pm' if at.DEFAULT_PRESERVE_MEAN else ''}")
    assert default == best


def test_cancel_leaves_no_file_and_progress_is_reported(tmp_path):
    from core.errors import Cancelled
    from core.grid.progress import RecordingMonitor

    src = _write(tmp_path / "in.tif", _rough(40, 40, seed=11).astype(np.float32))
    done = RecordingMonitor()
    at.upscale_file(src, str(tmp_path / "ok.tif"), 2, monitor=done, block_size=16)
    assert done.fractions[-1] == 1.0 and done.infos
    dst = tmp_path / "cancelled.tif"
    with pytest.raises(Cancelled):
        at.upscale_file(src, str(dst), 2, monitor=RecordingMonitor(cancel_after=2),
                        block_size=16)
    assert not dst.exists()
