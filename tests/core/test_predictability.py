"""The predictability index of benchmarks/bench_predictability.py on grids whose answer is known."""
from __future__ import annotations

import math

import numpy as np

from tests.helpers_scripts import load_script

bench = load_script("benchmarks/bench_predictability.py")


def test_white_noise_gives_minus_two_thirds():
    # (1, -2, 1) on independent values: covariance at lag 1 is -4 sigma^2, variance 6 sigma^2
    z = np.random.default_rng(0).normal(size=(400, 400))
    assert abs(bench.second_difference_autocorrelation(z) - (-2 / 3)) < 0.01


def test_a_sine_surface_gives_the_cosine_of_its_step():
    # the second difference of sin(w x) is -4 sin^2(w / 2) sin(w x): lag-1 correlation cos(w)
    w = 0.3
    i = np.arange(300)
    z = np.sin(w * i)[None, :] + np.sin(w * i)[:, None]
    assert abs(bench.second_difference_autocorrelation(z) - math.cos(w)) < 0.01


def test_nodata_cells_are_left_out_not_propagated():
    z = np.random.default_rng(1).normal(size=(200, 200))
    full = bench.second_difference_autocorrelation(z)
    z[50:60, 50:60] = np.nan
    holed = bench.second_difference_autocorrelation(z)
    assert np.isfinite(holed) and abs(holed - full) < 0.02
