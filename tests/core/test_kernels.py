"""core.grid.kernels: Keys' cubic kernel by hand, its 4-tap weights equal the kernel, and the
models' bicubic taps built from it."""
import numpy as np
import pytest

from core.grid import kernels
from core.superres import inference


def test_kernel_equals_hand_computed_values():
    # a = −0.5: W(d) = 1.5d³ − 2.5d² + 1 (|d| ≤ 1), −0.5d³ + 2.5d² − 4d + 2 (1 < |d| < 2)
    for d, w in ((0.0, 1.0), (0.25, 0.8671875), (0.75, 0.2265625), (1.0, 0.0),
                 (1.25, -0.0703125), (1.75, -0.0234375), (2.0, 0.0), (3.5, 0.0)):
        assert kernels.keys_kernel(d) == w
        assert kernels.keys_kernel(-d) == w  # even
    got = kernels.keys_kernel(np.array([[0.25, -1.25], [1.75, 2.5]]))
    np.testing.assert_array_equal(got, [[0.8671875, -0.0703125], [-0.0234375, 0.0]])


def test_weights_are_the_kernel_at_the_four_distances_and_sum_to_one():
    t = np.r_[0.0, np.random.default_rng(0).uniform(0, 1, 1000), 1 - 1e-12]
    w = kernels.keys_weights(t)
    for weight, distance in zip(w, (1 + t, t, 1 - t, 2 - t)):
        np.testing.assert_allclose(weight, kernels.keys_kernel(distance), rtol=0, atol=1e-14)
    np.testing.assert_allclose(sum(w), 1.0, rtol=0, atol=1e-14)
    # at t = 0 the stencil interpolates: the sample itself, weight 1
    assert [float(x[0]) for x in w] == [0.0, 1.0, 0.0, 0.0]


def test_bicubic_phase_taps_by_hand():
    # ×2: sub-cells at −0.25 and +0.25 coarse cells; distances 1.75, 0.75, 0.25, 1.25, 2.25
    taps = inference.bicubic_phase_taps(2)
    np.testing.assert_array_equal(taps, [[-0.0234375, 0.2265625, 0.8671875, -0.0703125, 0.0],
                                         [0.0, -0.0703125, 0.8671875, 0.2265625, -0.0234375]])
    for scale in (3, 4):
        taps = inference.bicubic_phase_taps(scale)
        assert taps.shape == (scale, 5)
        np.testing.assert_allclose(taps.sum(axis=1), 1.0, rtol=0, atol=1e-15)
        np.testing.assert_allclose(taps, taps[::-1, ::-1], rtol=0, atol=1e-15)  # symmetric
    # ×3: the middle sub-cell sits on the coarse centre, so it copies the cell
    assert inference.bicubic_phase_taps(3)[1].tolist() == pytest.approx([0, 0, 1, 0, 0])
