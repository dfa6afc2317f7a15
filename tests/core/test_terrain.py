"""Slope against a cell-by-cell transcription of SAGA's Get_Gradient rule."""
import math

import numpy as np
import pytest

from core.terrain.slope import slope_degrees, steeper_than


def _saga_slope(z, dx, dy):
    """For each of the 4 directions: neighbour − centre if the neighbour is valid, else
    centre − opposite neighbour if that one is, else 0; then central combination."""
    h, w = z.shape
    out = np.full(z.shape, np.nan)

    def value(r, c):
        return z[r, c] if 0 <= r < h and 0 <= c < w and not math.isnan(z[r, c]) else None

    for r in range(h):
        for c in range(w):
            if math.isnan(z[r, c]):
                continue
            d = []
            for dr, dc in ((-1, 0), (0, 1), (1, 0), (0, -1)):  # N, E, S, W as SAGA
                to, frm = value(r + dr, c + dc), value(r - dr, c - dc)
                d.append(to - z[r, c] if to is not None else
                         z[r, c] - frm if frm is not None else 0.0)
            gy = (d[0] - d[2]) / (2 * dy)
            gx = (d[1] - d[3]) / (2 * dx)
            out[r, c] = math.degrees(math.atan(math.hypot(gx, gy)))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_saga_rule_with_holes_and_edges(seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(100, 20, (9, 13))
    z[rng.random(z.shape) < 0.25] = np.nan
    np.testing.assert_allclose(slope_degrees(z, 30.0, 20.0), _saga_slope(z, 30.0, 20.0),
                               atol=1e-12)


def test_plane_gives_its_slope_everywhere():
    rows, cols = np.mgrid[0:6, 0:7]
    z = cols * 30.0 * math.tan(math.radians(8))  # 8° towards the east on 30 m cells
    np.testing.assert_allclose(slope_degrees(z, 30.0, 30.0), 8.0, atol=1e-12)


def test_single_row_and_isolated_cell():
    z = np.array([[1.0, np.nan, 5.0, 9.0]])
    got = slope_degrees(z, 1.0, 1.0)
    assert got[0, 0] == 0.0  # no valid neighbour along either axis
    assert np.isnan(got[0, 1])
    assert got[0, 2] == pytest.approx(math.degrees(math.atan(4.0)))


@pytest.mark.parametrize("seed,dx,dy", [(0, 30.0, 30.0), (1, 30.0, 20.0), (2, 46.3, 92.6)])
def test_steeper_than_matches_saga_rule_next_to_the_threshold(seed, dx, dy):
    rng = np.random.default_rng(seed)
    z = rng.normal(100, 4, (11, 14)).astype(np.float32)
    z[rng.random(z.shape) < 0.2] = np.nan
    slope = _saga_slope(z.astype(np.float64), dx, dy)
    # Thresholds a hair either side of actual cell slopes: those cells must flip exactly there.
    for target in slope[np.isfinite(slope)][:12]:
        for thr in (target - 1e-9, target + 1e-9):
            want = np.where(np.isnan(slope), False, slope > thr)
            np.testing.assert_array_equal(steeper_than(z, dx, dy, thr), want)


def test_steeper_than_on_planes_either_side_of_5_degrees():
    rows, cols = np.mgrid[0:5, 0:6]
    for degrees, steep in ((4.999, False), (5.001, True)):
        z = rows * 20.0 * math.tan(math.radians(degrees))  # towards the south, 20 m cells
        assert np.all(steeper_than(z, 30.0, 20.0, 5.0) == steep)
