"""Keys (1981) cubic convolution: the one kernel behind bicubic point sampling
(core.survey.sampling) and the bicubic upsampling front of the super-resolution models
(core.superres.inference, training.networks).

    W(d) = (a + 2)|d|³ − (a + 3)|d|² + 1          for |d| ≤ 1
    W(d) = a|d|³ − 5a|d|² + 8a|d| − 4a            for 1 < |d| < 2
    W(d) = 0                                      otherwise

with a = −0.5, the only a for which cubic convolution is third-order accurate (and GDAL's and
MATLAB's bicubic).
"""
from __future__ import annotations

import numpy as np

KEYS_A = -0.5


def _inner(d, a):
    # the |d| ≤ 1 piece; written as in Keys' paper so scalar callers keep their exact values
    return (a + 2) * d**3 - (a + 3) * d**2 + 1


def _outer(d, a):
    # the 1 < |d| < 2 piece
    return a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a


def keys_kernel(d, a: float = KEYS_A):
    """W(d) for a distance d in cells: a float for a number, an array for an array.

    A number is evaluated in Python floats (C pow), an array by numpy, whose vectorised power
    may round the last bit differently; the number path keeps the models' bicubic taps
    (core.superres.inference.bicubic_phase_taps) bit for bit what they were trained with."""
    if np.ndim(d) == 0:
        d = abs(float(d))
        return _inner(d, a) if d <= 1.0 else (_outer(d, a) if d < 2.0 else 0.0)
    d = np.abs(np.asarray(d, dtype=np.float64))
    return np.where(d <= 1.0, _inner(d, a), np.where(d < 2.0, _outer(d, a), 0.0))


def bicubic_phase_taps(scale: int) -> np.ndarray:
    """Taps (scale, 5) over coarse cells k−2..k+2 for each fine sub-cell i of coarse cell k.

    Grids are cell-centre aligned: sub-cell i sits at coarse coordinate k + (i + 0.5)/S − 0.5,
    the convention of an S × S block mean. Rows are normalised to sum to exactly 1 so that
    constant offsets pass through unchanged (the networks' offset-equivariance relies on it).
    The runner (core.superres.inference) and the training networks build their fixed upsampling
    front
    from these same taps; they live here, with no GDAL import, so that training runs where
    GDAL is not installed (a GPU machine).
    """
    taps = np.array([[keys_kernel((i + 0.5) / scale - 0.5 - (j - 2)) for j in range(5)]
                     for i in range(scale)])
    return taps / taps.sum(axis=1, keepdims=True)


def keys_weights(t: np.ndarray, a: float = KEYS_A) -> tuple[np.ndarray, ...]:
    """Weights of the 4 samples at offsets −1, 0, 1, 2 for fractional positions t in [0, 1).

    The kernel at distances 1 + t, t, 1 − t and 2 − t; each distance lies in a known piece, so
    the pieces are evaluated directly (no branch per point: a million points stay fast)."""
    return _outer(1.0 + t, a), _inner(t, a), _inner(1.0 - t, a), _outer(2.0 - t, a)
