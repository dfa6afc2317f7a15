"""Topographic position index (TPI): elevation minus the mean elevation of a neighbourhood.

TPI = z0 − mean(z over the neighbourhood) (Guisan et al. 1999, Weiss 2001). Neighbourhoods:

- ``square``: (2·hy+1) × (2·hx+1) cells centred on the cell, centre included;
- ``circle``: every cell whose centre lies within the radius, centre included (SAGA's
  ``Set_Annulus(0, r)`` and ArcGIS's focal circle);
- ``annulus``: the ring inner ≤ distance ≤ outer (both inclusive, as SAGA), centre excluded when
  inner > 0.

Nodata cells are left out of every mean by normalised convolution (sum of valid values / number of
valid cells); cells outside the grid count as nodata, so edge cells are averaged over the cells
that lie inside. The cost per cell does not grow with the radius: squares use summed-area tables
(one cumulative sum per axis, float64, after subtracting a reference level so that the running
sums stay small and exact to ~1e-9 m); discs and rings use FFT overlap-add convolution, except for
kernels of a few dozen cells where a direct sum is cheaper than any transform.

Radii are given in cells or in map units. Map units are CRS units for a projected raster (or for
one without CRS) and **metres** for a geographic raster, converted with the ground cell size at
the raster's central latitude (:func:`core.grid.raster.ground_pixel_size_m`). When the ground cell
is not square (degrees: a cell is narrower east–west than north–south away from the equator) a
radius in map units becomes an ellipse in cells, so the window covers a true circle on the ground.
Radii in cells always treat the cell as square.
"""
from __future__ import annotations

import contextlib
import contextvars
import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import fft as sp_fft
from scipy import ndimage

from ..errors import DemError
from ..grid.progress import Monitor
from ..grid.raster import (
    DEFAULT_BLOCK,
    NO_VALID_CELL,
    RasterInfo,
    ground_pixel_size_m,
    iter_blocks,
    read_info,
)

SHAPES = ("square", "circle", "annulus")
UNITS = ("cells", "map units")

# Kernels up to this many cells are summed directly (cost ∝ cells, bounded by this constant);
# larger ones go through the FFT, whose cost per cell does not depend on the kernel size.
_DIRECT_MAX_CELLS = 64
# Once a grid's strips are transformed for a large kernel, a kernel with more cells than this
# shares the transform: its extra inverse FFT cost about a direct sum of 8 cells (3601², 2 cores:
# 0.12 s against 0.20 s for the direct sum of a 13-cell disc).
_SHARED_MIN_CELLS = 8
# Rows per FFT strip (before rounding up to a fast transform length).
_FFT_STRIP_ROWS = 128
# The transforms run on every core (pocketfft threads; results are identical to one worker's),
# unless fft_threads says otherwise: a Dask worker with one thread per process sets 1, so N
# workers on N cores do not each start N FFT threads.
_WORKERS = os.cpu_count() or 1
_FFT_THREADS: contextvars.ContextVar[int] = contextvars.ContextVar("fft_threads", default=0)


@contextlib.contextmanager
def fft_threads(count: int):
    """Within the block, FFT sums use `count` threads (0 = every core)."""
    token = _FFT_THREADS.set(int(count))
    try:
        yield
    finally:
        _FFT_THREADS.reset(token)

# The smallest radius in cells: below one cell the window holds only its centre cell.
MIN_RADIUS_CELLS = 1.0
# Relative slack on radius comparisons, so that e.g. 660 m / 30 m = 21.999999999 still means 22.
_EPS = 1e-9
# Standard deviations below this (in elevation units) are rounding noise of a flat surface.
SD_NEGLIGIBLE = 1e-9


@dataclass(frozen=True)
class Neighbourhood:
    """A TPI window in cells.

    `radius` and `inner` are measured in cell widths; `aspect` is the cell height divided by the
    cell width on the ground (1 for square cells or radii given in cells). The distance of the
    offset (row i, column j) is hypot(j, i·aspect), i.e. in cell widths.
    """

    shape: str
    radius: float
    inner: float = 0.0
    aspect: float = 1.0

    def __post_init__(self):
        if self.shape not in SHAPES:
            raise DemError(f"Unknown neighbourhood shape '{self.shape}' (use {', '.join(SHAPES)}).")
        if not (self.radius > 0 and math.isfinite(self.radius)):
            raise DemError("The neighbourhood radius must be a positive number.")
        if self.shape == "annulus" and not 0 <= self.inner <= self.radius:
            raise DemError(
                f"The inner radius ({self.inner:g}) must lie between 0 and the outer radius "
                f"({self.radius:g})."
            )

    @property
    def half_x(self) -> int:
        return int(math.floor(self.radius * (1 + _EPS)))

    @property
    def half_y(self) -> int:
        return int(math.floor(self.radius / self.aspect * (1 + _EPS)))

    @property
    def halo(self) -> int:
        """Cells needed on every side of a block to compute its TPI exactly."""
        return max(self.half_x, self.half_y)

    @property
    def size(self) -> tuple[int, int]:
        """Window height and width in cells."""
        return 2 * self.half_y + 1, 2 * self.half_x + 1

    def kernel(self) -> np.ndarray:
        """Boolean window, True where a cell belongs to the neighbourhood."""
        hy, hx = self.half_y, self.half_x
        if self.shape == "square":
            return np.ones((2 * hy + 1, 2 * hx + 1), dtype=bool)
        i, j = np.mgrid[-hy : hy + 1, -hx : hx + 1]
        # The same test SAGA's cell addressor makes (sqrt(dx² + dy²) <= r), in cell widths.
        d = np.hypot(j, i * self.aspect)
        inside = d <= self.radius * (1 + _EPS)
        if self.shape == "annulus" and self.inner > 0:
            inside &= d >= self.inner * (1 - _EPS)
        return inside

    def describe(self) -> str:
        h, w = self.size
        text = f"{self.shape} {w}×{h} cells, {int(self.kernel().sum())} cells in the window"
        if self.shape == "annulus":
            text += f" (ring {self.inner:g}–{self.radius:g} cell widths)"
        return text


def neighbourhood(
    shape: str, radius: float, inner: float = 0.0, units: str = "cells",
    info: RasterInfo | None = None,
) -> Neighbourhood:
    """Build a neighbourhood from user radii, converting map units to cells with `info`.

    Map units are the CRS's linear units for a projected raster (cell units without CRS) and
    metres for a geographic one (converted at the raster's central latitude).
    """
    if units not in UNITS:
        raise DemError(f"Unknown radius units '{units}' (use {' or '.join(UNITS)}).")
    if shape != "annulus":
        inner = 0.0
    if units == "cells":
        if 0 < float(radius) < MIN_RADIUS_CELLS:
            raise DemError(
                f"A radius of {radius:g} cells is less than one cell: the neighbourhood would "
                f"hold only the centre cell; give a radius of at least {MIN_RADIUS_CELLS:g}."
            )
        return Neighbourhood(shape, float(radius), float(inner), 1.0)
    if info is None:
        raise DemError("Radii in map units need the raster's georeferencing.")
    dx, dy = ground_pixel_size_m(info) if info.is_geographic else info.pixel_size
    nb = Neighbourhood(shape, float(radius) / dx, float(inner) / dx, dy / dx)
    if nb.half_x < 1 and nb.half_y < 1:
        unit = "m" if info.is_geographic else "map units"
        raise DemError(
            f"A radius of {radius:g} {unit} is smaller than one cell ({dx:g} × {dy:g} {unit}); "
            "give a larger radius."
        )
    return nb


def check_fits(nb: Neighbourhood, height: int, width: int, label: str = "neighbourhood") -> None:
    """A window larger than the raster has no meaningful TPI: refuse it with a clear message."""
    h, w = nb.size
    if h > height or w > width:
        raise DemError(
            f"The raster ({width}×{height} cells) is smaller than the {label} window "
            f"({w}×{h} cells); use a smaller radius or a larger raster."
        )


# --- focal sums -------------------------------------------------------------------------------


def _window_sum_1d(a: np.ndarray, h: int, axis: int) -> np.ndarray:
    """Sum over [i−h, i+h] along `axis`, zeros outside: difference of a cumulative sum.

    The differences are taken on slices (interior, both ends) rather than by fancy indexing,
    which would copy the table twice.
    """
    a = np.asarray(a, dtype=np.float64)
    n = a.shape[axis]

    def sl(start, stop):
        return (slice(None),) * axis + (slice(start, stop),)

    shape = list(a.shape)
    shape[axis] = n + 1
    c = np.empty(shape, dtype=np.float64)
    c[sl(0, 1)] = 0.0
    np.cumsum(a, axis=axis, out=c[sl(1, None)])
    if 2 * h + 1 >= n:
        # Window as wide as the axis: clip both ends for every cell.
        idx = np.arange(n)
        return np.take(c, np.minimum(idx + h + 1, n), axis) - np.take(c, np.maximum(idx - h, 0),
                                                                      axis)
    out = np.empty_like(a)
    out[sl(0, h)] = c[sl(h + 1, 2 * h + 1)]
    np.subtract(c[sl(2 * h + 1, None)], c[sl(0, n - 2 * h)], out=out[sl(h, n - h)])
    np.subtract(c[sl(n, n + 1)], c[sl(n - 2 * h, n - h)], out=out[sl(n - h, None)])
    return out


def _box_sum(a: np.ndarray, hy: int, hx: int) -> np.ndarray:
    """Summed-area table done axis by axis: cost independent of hy, hx."""
    return _window_sum_1d(_window_sum_1d(a, hx, 1), hy, 0)


def _direct_sum(a: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    return ndimage.correlate(a, kernel.astype(np.float64), mode="constant", cval=0.0)


def _fft_sums(a: np.ndarray, kernels: list[np.ndarray]) -> list[np.ndarray]:
    """Sums of `a` (zeros outside) over several symmetric kernels, by FFT in strips of rows.

    Each strip (with a halo of the largest half-height above and below) is transformed once and
    multiplied by every kernel's transform, so a second kernel costs one inverse transform, not
    a second forward one. Strips keep the transforms small: a few MB in cache instead of
    several full-grid complex arrays (scipy's oaconvolve peaked at ~43 bytes a cell and was
    slower). The kernels are point-symmetric, so convolution equals correlation.
    """
    height, width = a.shape
    hy = max(k.shape[0] // 2 for k in kernels)
    hx = max(k.shape[1] // 2 for k in kernels)
    # A strip of n rows is read with hy rows either side; cyclic wrap-around stays out of the
    # rows kept when the transform is at least hy longer than the strip read (and hx wider).
    fft_rows = sp_fft.next_fast_len(min(_FFT_STRIP_ROWS, height) + 3 * hy, real=True)
    strip_rows = fft_rows - 3 * hy
    shape = (fft_rows, sp_fft.next_fast_len(width + hx, real=True))
    workers = _FFT_THREADS.get() or _WORKERS
    spectra = [sp_fft.rfft2(k.astype(np.float64), shape, workers=workers) for k in kernels]
    sums = [np.empty(a.shape, dtype=np.float64) for _ in kernels]
    for top in range(0, height, strip_rows):
        n = min(strip_rows, height - top)
        first, stop = max(top - hy, 0), min(top + n + hy, height)
        strip = sp_fft.rfft2(a[first:stop], shape, workers=workers)
        for kernel, spectrum, out in zip(kernels, spectra, sums):
            full = sp_fft.irfft2(strip * spectrum, shape, workers=workers)
            # The kernel sits at the origin of its transform: the centred sum of strip row i is
            # row i + half-height of the full convolution, column j + half-width.
            row, col = top - first + kernel.shape[0] // 2, kernel.shape[1] // 2
            out[top : top + n] = full[row : row + n, col : col + width]
    return sums


def _kernel_sum(a: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Sum of `a` (zeros outside) over a symmetric kernel centred on each cell."""
    if kernel.sum() <= _DIRECT_MAX_CELLS:
        return _direct_sum(a, kernel)
    return _fft_sums(a, [kernel])[0]


def _full_count_table(shape: tuple[int, int], nb: Neighbourhood
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Number of in-grid window cells on a grid without nodata, as (table, rows, cols): the
    count at (r, c) is table[rows[r], cols[c]].

    The count depends only on how close a cell is to each edge, so it is computed on a small
    (2hy+1)×(2hx+1) grid of ones and addressed by index: no convolution of the full grid.
    """
    height, width = shape
    hy, hx = nb.half_y, nb.half_x

    def index(n: int, h: int) -> tuple[int, np.ndarray]:
        m = 2 * h + 1
        if n <= m:
            return n, np.arange(n)
        i = np.arange(n)
        return m, np.where(i < h, i, np.where(i >= n - h, i - (n - m), h))

    sh, rows = index(height, hy)
    sw, cols = index(width, hx)
    small = _kernel_sum(np.ones((sh, sw)), nb.kernel()) if nb.shape != "square" else \
        np.outer(_window_sum_1d(np.ones(sh), hy, 0), _window_sum_1d(np.ones(sw), hx, 0))
    return np.rint(small), rows, cols


def _divide_by_full_counts(sums: np.ndarray, nb: Neighbourhood) -> None:
    """sums / number of in-grid window cells, in place, for a grid without nodata.

    Away from the edges every window lies whole inside the grid, so that block is divided by one
    number; only the bands along the edges (half a window wide) read the count table. No
    full-grid count array is built.
    """
    table, rows, cols = _full_count_table(sums.shape, nb)
    height, width = sums.shape
    hy, hx = nb.half_y, nb.half_x
    if height <= 2 * hy + 1 or width <= 2 * hx + 1:
        sums /= table[np.ix_(rows, cols)]
        return
    sums[hy : height - hy, hx : width - hx] /= table[hy, hx]
    for band in (slice(0, hy), slice(height - hy, height)):  # top and bottom, full width
        sums[band] /= table[np.ix_(rows[band], cols)]
    middle = slice(hy, height - hy)
    for band in (slice(0, hx), slice(width - hx, width)):  # left and right, between those
        sums[middle, band] /= table[np.ix_(rows[middle], cols[band])]


def _window_sums(values: np.ndarray, nb: Neighbourhood) -> np.ndarray:
    """Sum of `values` (zeros outside the grid) over the window of every cell, float64."""
    return _all_window_sums(values, [nb])[0]


def _all_window_sums(values: np.ndarray, neighbourhoods: list[Neighbourhood],
                     check: Callable[[], None] = lambda: None) -> list[np.ndarray]:
    """:func:`_window_sums` for several windows, the FFT ones sharing their forward transforms.

    Squares use summed-area tables. A disc or ring of up to _DIRECT_MAX_CELLS cells is summed
    directly, unless a larger one needs the transforms anyway: then one more inverse transform
    per strip is cheaper than a direct sum of more than _SHARED_MIN_CELLS cells.
    """
    kernels = {i: nb.kernel() for i, nb in enumerate(neighbourhoods) if nb.shape != "square"}
    cells = {i: int(k.sum()) for i, k in kernels.items()}
    fft = [i for i in kernels if cells[i] > _DIRECT_MAX_CELLS]
    if fft:
        fft += [i for i in kernels if _SHARED_MIN_CELLS < cells[i] <= _DIRECT_MAX_CELLS]
    sums: dict[int, np.ndarray] = {}
    if fft:
        sums.update(zip(fft, _fft_sums(values, [kernels[i] for i in fft])))
        check()
    for i, nb in enumerate(neighbourhoods):
        if i not in sums:
            sums[i] = _box_sum(values, nb.half_y, nb.half_x) if nb.shape == "square" else \
                _direct_sum(values, kernels[i])
            check()
    return [sums[i] for i in range(len(neighbourhoods))]


def _window_counts(valid: np.ndarray, nb: Neighbourhood) -> np.ndarray:
    """Number of valid cells in the window of every cell (a grid with nodata)."""
    # Counts are whole numbers; rounding removes the FFT's last-bit noise.
    return np.rint(_window_sums(valid.astype(np.float64), nb))


def reference_level(z: np.ndarray) -> float:
    """A level near the data (midrange of the valid values) subtracted before summing."""
    # fmin/fmax skip NaN without copying the valid cells out first.
    with np.errstate(invalid="ignore"):
        low, high = np.fmin.reduce(z, axis=None), np.fmax.reduce(z, axis=None)
    if not (np.isfinite(low) and np.isfinite(high)):  # all nodata, or ±inf among the values
        finite = z[np.isfinite(z)]
        if finite.size == 0:
            return 0.0
        low, high = finite.min(), finite.max()
    return float((np.float64(low) + np.float64(high)) / 2)


def _centred_values(z: np.ndarray, ref: float, valid: np.ndarray | None) -> np.ndarray:
    """z − ref in float64 (exact for float32 elevations), 0 at nodata so that sums skip it.
    `valid` None means every cell is valid."""
    values = np.subtract(z, ref, dtype=np.float64)
    if valid is not None:
        values[~valid] = 0.0
    return values


def tpis(z: np.ndarray, neighbourhoods: list[Neighbourhood], dtype: type = np.float64,
         monitor: Monitor | None = None) -> list[np.ndarray]:
    """TPI of every cell for each neighbourhood; NaN where z is nodata or the window holds no
    valid cell. A `monitor` is asked for a cancel between the steps (a whole raster in memory
    takes seconds).

    The grid is prepared once for all neighbourhoods (validity, reference level, centred
    float64 values). Sums and means are float64 whatever `dtype`; the TPI is rounded to `dtype`
    once, at the end (float32: what a Float32 grid, SAGA's included, stores).
    """
    z = np.asarray(z)
    valid = np.isfinite(z)
    all_valid = bool(valid.all())
    ref = reference_level(z)
    values = _centred_values(z, ref, None if all_valid else valid)
    check = monitor.check if monitor is not None else lambda: None
    check()
    grids = []
    for nb, means in zip(neighbourhoods, _all_window_sums(values, neighbourhoods, check)):
        if all_valid:
            _divide_by_full_counts(means, nb)
        else:
            counts = _window_counts(valid, nb)
            check()
            with np.errstate(invalid="ignore", divide="ignore"):
                np.divide(means, counts, out=means)
        out = means if dtype == np.float64 else np.empty(z.shape, dtype)
        np.subtract(values, means, out=out, casting="same_kind")
        if not all_valid:
            out[~valid | (counts == 0)] = np.nan
        grids.append(out)
    return grids


def tpi(z: np.ndarray, nb: Neighbourhood, dtype: type = np.float64) -> np.ndarray:
    """TPI of every cell (see :func:`tpis`)."""
    return tpis(z, [nb], dtype)[0]


# --- global statistics ------------------------------------------------------------------------


@dataclass
class Moments:
    """Count, mean and sum of squared deviations, merged block by block (Chan et al.)."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, values: np.ndarray) -> None:
        finite = np.isfinite(values)
        # Without nodata the grid is used as it is: boolean indexing would copy it.
        v = values.ravel() if finite.all() else values[finite]
        if v.size == 0:
            return
        mb = float(v.mean(dtype=np.float64))
        deviations = np.subtract(v, mb, dtype=np.float64)
        self.merge(Moments(int(v.size), mb, float(np.dot(deviations, deviations))))

    def merge(self, other: Moments) -> None:
        """Fold in the moments of another set of cells (a block or a chunk computed elsewhere)."""
        if other.n == 0:
            return
        n = self.n + other.n
        delta = other.mean - self.mean
        self.mean += delta * other.n / n
        self.m2 += other.m2 + delta * delta * self.n * other.n / n
        self.n = n

    @property
    def sd(self) -> float:
        """Population standard deviation (SAGA's convention)."""
        return math.sqrt(self.m2 / self.n) if self.n else float("nan")


def standardised(values: np.ndarray, moments: Moments) -> np.ndarray:
    """(v − mean) / sd in float64; all zeros when sd is negligible (a flat surface has no
    position)."""
    if moments.sd <= SD_NEGLIGIBLE:
        out = np.zeros_like(values, dtype=np.float64)
        out[np.isnan(values)] = np.nan
        return out
    # float64 even for float32 values (NumPy 1.x would keep float32 − Python float in float32).
    return (np.asarray(values, dtype=np.float64) - moments.mean) / moments.sd


def standardised_float32(values: np.ndarray, moments: Moments) -> np.ndarray:
    """Standardised values as a Float32 grid stores them: float64 arithmetic, then rounded.

    SAGA keeps its TPI and standardised TPI grids in float32; classifying these rounded values
    (not the float64 ones) is what makes the classes agree with SAGA's cell for cell where a
    value lies within a float32 rounding of a class boundary.
    """
    with np.errstate(over="ignore"):  # ±inf in, ±inf out (for the bound search)
        return standardised(values, moments).astype(np.float32)


_SIGN32 = 1 << 31


def _float32_order_key(x: float) -> int:
    """An integer that orders float32 values as the values themselves (−inf … −0, +0 … +inf)."""
    bits = int(np.float32(x).view(np.uint32))
    return (~bits & 0xFFFFFFFF) if bits & _SIGN32 else bits | _SIGN32


def _float32_of_order_key(key: int) -> np.float32:
    bits = key & ~_SIGN32 if key & _SIGN32 else ~key & 0xFFFFFFFF
    return np.uint32(bits).view(np.float32)


def float32_tpi_bound(moments: Moments, level: float, strict: bool = False) -> float:
    """The largest float32 TPI t whose stored standardised value (:func:`standardised_float32`)
    is ≤ `level` (< `level` when `strict`); −inf when no t is, +inf when every t is.

    For a float32 TPI grid this turns comparisons of standardised values into comparisons of
    the TPI itself, exactly, ties included: std ≤ c ⇔ t ≤ bound(c), std < c ⇔ t ≤ bound(c,
    strict), std ≥ c ⇔ t > bound(c, strict), std > c ⇔ t > bound(c). The standardised value is a
    non-decreasing function of t, so the bound is found by bisection over the ordered float32
    values (at most 32 steps), evaluating the very function the grid would be put through.
    """

    def below(key: int) -> bool:
        std = standardised_float32(np.array([_float32_of_order_key(key)]), moments)[0]
        return bool(std < level) if strict else bool(std <= level)

    low, high = _float32_order_key(-np.inf), _float32_order_key(np.inf)
    if below(high):
        return math.inf
    if not below(low):
        return -math.inf
    while high - low > 1:  # below(low) holds, below(high) does not
        middle = (low + high) // 2
        if below(middle):
            low = middle
        else:
            high = middle
    return float(_float32_of_order_key(low))


def core_of(padded: np.ndarray, halo: int) -> np.ndarray:
    return padded[halo : padded.shape[0] - halo, halo : padded.shape[1] - halo] if halo else padded


def tpi_moments(
    source: str, neighbourhoods: list[Neighbourhood], block_size: int = DEFAULT_BLOCK,
    monitor: Monitor | None = None, keep: bool = False, dtype: type = np.float64,
) -> tuple[list[Moments], list[np.ndarray] | None]:
    """First pass: global TPI statistics of each neighbourhood over the valid raster.

    The TPI is computed as `dtype` (see :func:`tpis`) and the statistics are those of these
    values. With `keep`, the TPI grids themselves are returned as well (for rasters small enough
    to hold in memory), so the second pass does not compute them again; the values are the same
    ones either way, block by block.
    """
    monitor = monitor or Monitor()
    info = read_info(source)
    halo = max(nb.halo for nb in neighbourhoods)
    moments = [Moments() for _ in neighbourhoods]
    grids = [np.empty((info.height, info.width), dtype) for _ in neighbourhoods] if keep else None
    for block, padded in iter_blocks(source, block_size, halo, monitor=monitor):
        for k, t in enumerate(tpis(padded, neighbourhoods, dtype)):
            t = core_of(t, halo)
            moments[k].add(t)
            if grids is not None:
                grids[k][block.row : block.row + block.height,
                         block.col : block.col + block.width] = t
    return moments, grids


def log_moments(monitor: Monitor, label: str, m: Moments) -> None:
    monitor.info(f"TPI {label}: {m.n} valid cells, mean {m.mean:.4g}, population sd {m.sd:.4g}.")
    if m.sd <= SD_NEGLIGIBLE:
        monitor.warn(
            f"TPI {label} has no spread (sd = {m.sd:.3g}): the surface is flat at this scale, so "
            "every standardised value is set to 0 (no division by zero)."
        )


def tpi_raster(
    source: str, output: str, nb: Neighbourhood, standardise: bool = False,
    block_size: int = DEFAULT_BLOCK, monitor: Monitor | None = None,
) -> dict:
    """TPI of a DEM file written as a Float32 GeoTIFF, block by block with a halo.

    Standardisation needs the global mean and sd: a first pass over the blocks collects them,
    the second writes. Returns {'cells', 'mean', 'sd', 'neighbourhood'}.
    """
    from ..grid.writing import process_blocks

    monitor = monitor or Monitor()
    info = read_info(source)
    check_fits(nb, info.height, info.width)
    monitor.info(f"Neighbourhood: {nb.describe()}.")
    first = monitor.part(0.0, 0.5)
    moments, grids = tpi_moments(source, [nb], block_size, first,
                                 keep=info.width * info.height <= _KEEP_CELLS)
    m = moments[0]
    if m.n == 0:
        raise DemError(NO_VALID_CELL)
    log_moments(monitor, nb.shape, m)
    halo = 0 if grids is not None else nb.halo

    def block_tpi(padded: np.ndarray, block) -> np.ndarray:
        if grids is not None:
            t = grids[0][block.row : block.row + block.height, block.col : block.col + block.width]
        else:
            t = core_of(tpi(padded, nb), halo)
        return standardised(t, m) if standardise else t

    process_blocks(source, output, block_tpi, halo=halo, block_size=block_size,
                   data_type="Float32", nodata=-9999.0, monitor=monitor.part(0.5, 1.0))
    return {"cells": m.n, "mean": m.mean, "sd": m.sd, "neighbourhood": nb.describe()}


# Rasters up to this many cells keep their TPI grids (float64) between the passes.
_KEEP_CELLS = 40_000_000
