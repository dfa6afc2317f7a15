"""The split and scoring of benchmarks/bench_same_file_bound.py: no scored cell may see the
half whose truth was trained on."""
from __future__ import annotations

import numpy as np
import pytest

from tests.helpers_scripts import load_script

# The benchmark imports torch (scripts/setup.sh installs only a local CPU build): skip without it.
pytest.importorskip("torch", reason="needs torch, which is not installed here")
bench = load_script("benchmarks/bench_same_file_bound.py")
# fastsr's receptive field is 23 coarse cells: 11 on each side of the centre cell.
RADIUS = 11


def test_the_cut_is_across_the_longer_axis_at_a_multiple_of_twelve():
    assert bench.halves((135, 164)) == (1, 72)
    assert bench.halves((381, 201)) == (0, 180)
    assert bench.halves((100, 100)) == (0, 48)


def test_the_two_halves_tile_the_grid():
    z = np.arange(30 * 50, dtype=float).reshape(30, 50)
    axis, cut = bench.halves(z.shape)
    a, b = bench.half_grid(z, axis, cut, 0), bench.half_grid(z, axis, cut, 1)
    assert a.shape == (30, 24) and b.shape == (30, 26)
    np.testing.assert_array_equal(np.concatenate([a, b], axis=axis), z)


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("trained_side", [0, 1])
@pytest.mark.parametrize("shape", [(240, 360), (360, 240)])
def test_no_scored_cell_sees_the_trained_half(shape, trained_side, scale):
    axis, cut = bench.halves(shape)
    mask = bench.scored_mask(shape, axis, cut, trained_side, scale)
    assert mask.any()
    for position in np.nonzero(mask.any(axis=1 - axis))[0]:
        centre = position // scale
        # fine cells covered by the coarse cells the network reads for this output cell
        first, last = (centre - RADIUS) * scale, (centre + RADIUS + 1) * scale - 1
        if trained_side == 0:
            assert first >= cut
        else:
            assert last < cut
    # and the 2 * scale border of the validation is left out
    b = 2 * scale
    assert not mask[:b].any() and not mask[-b:].any()
    assert not mask[:, :b].any() and not mask[:, -b:].any()


def test_the_scored_cells_are_all_those_far_enough_from_the_cut():
    shape, scale = (100, 300), 3
    axis, cut = bench.halves(shape)
    mask = bench.scored_mask(shape, axis, cut, 0, scale)
    cols = np.nonzero(mask.any(axis=0))[0]
    assert cols[0] == cut + bench.GAP_COARSE * scale and cols[-1] == 300 - 2 * scale - 1
    assert mask.sum() == (100 - 4 * scale) * (cols[-1] - cols[0] + 1)


def test_pooled_rmse_is_over_all_values_together_and_skips_nan():
    rmse, n = bench.pooled_rmse([np.array([3.0, np.nan]), np.array([4.0, 0.0, 0.0])])
    assert n == 4 and rmse == pytest.approx(np.sqrt(25 / 4))


def test_pooled_rmse_of_no_cells_is_nan_with_a_zero_count():
    rmse, n = bench.pooled_rmse([np.array([np.nan]), np.array([])])
    assert n == 0 and np.isnan(rmse)
