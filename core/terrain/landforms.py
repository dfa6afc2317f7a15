"""TPI landform classification (Weiss 2001), as DESIGN.md §5 pins it.

Two schemes:

- ``landforms10``: ten landforms from the standardised TPI of a small (SN) and a large (LN)
  neighbourhood plus slope — the same rules and codes as SAGA's "TPI Based Landform
  Classification" (ta_morphometry 19);
- ``slopeposition6``: six slope positions from one standardised TPI (the large neighbourhood)
  plus slope.

The TPI grids are float32 and the standardised TPI is taken as a Float32 grid stores it, as in
SAGA (:func:`core.terrain.tpi.standardised_float32`). No standardised grid is built: each class
boundary on the standardised TPI becomes an exact bound on the TPI itself (:func:`class_bounds`),
and the bands are counts of the bounds a cell's TPI exceeds.

Output is Byte with 0 for nodata. A raster of up to _IN_MEMORY_CELLS cells is classified whole in
memory; larger ones are processed in blocks: a first pass collects the global TPI statistics
(standardisation needs the mean and sd of the whole raster), a second pass classifies each block
with a halo of the large radius, so the result equals the whole-raster computation whatever the
block size.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from osgeo import gdal

from ..errors import DemError
from ..grid.progress import Monitor
from ..grid.raster import (
    NO_VALID_CELL,
    RasterInfo,
    geographic_cell_size_m,
    ground_pixel_size_m,
    read_array,
    read_info,
)
from ..grid.writing import process_blocks, write_array
from . import tpi as tpi_mod
from .slope import steeper_than

SCHEMES = ("landforms10", "slopeposition6")
SCHEME_TITLES = {
    "landforms10": "TPI landform class (Weiss 2001, ten classes)",
    "slopeposition6": "TPI slope position (Weiss 2001, six classes)",
}
BLOCK = 1024

# code: (name, (r, g, b)). Landform colours are SAGA's lookup table, so maps look alike.
CLASSES = {
    "landforms10": {
        1: ("Canyons, deeply incised streams", (0, 0, 127)),
        2: ("Midslope drainages, shallow valleys", (200, 200, 255)),
        3: ("Upland drainages, headwaters", (0, 200, 255)),
        4: ("U-shaped valleys", (127, 127, 255)),
        5: ("Plains", (255, 255, 128)),
        6: ("Open slopes", (128, 255, 0)),
        7: ("Upper slopes, mesas", (0, 255, 0)),
        8: ("Local ridges, hills in valleys", (255, 200, 127)),
        9: ("Midslope ridges, small hills in plains", (255, 127, 0)),
        10: ("Mountain tops, high ridges", (255, 0, 0)),
    },
    "slopeposition6": {
        1: ("Valley", (0, 0, 160)),
        2: ("Lower slope", (100, 170, 255)),
        3: ("Flat", (255, 255, 150)),
        4: ("Middle slope", (130, 210, 90)),
        5: ("Upper slope", (255, 160, 60)),
        6: ("Ridge", (200, 0, 0)),
    },
}

# Class boundaries on the standardised TPI (DESIGN §5), as (level, strict): a cell lies above a
# boundary when "std < level" (strict) or "std ≤ level" is false.
# landforms10, for SN and LN alike: band 0 std ≤ −1 | band 1 −1 < std < 1 | band 2 std ≥ 1.
LANDFORM_BOUNDARIES = ((-1.0, False), (1.0, True))
# slopeposition6: valley std < −1 | lower slope < −0.5 | flat or middle ≤ 0.5 | upper ≤ 1 | ridge.
POSITION_BOUNDARIES = ((-1.0, True), (-0.5, True), (0.5, False), (1.0, False))


def class_bounds(moments: tpi_mod.Moments, boundaries) -> list[float]:
    """The boundaries as float32 TPI values: std above a boundary ⇔ TPI > its bound (exact)."""
    return [tpi_mod.float32_tpi_bound(moments, level, strict) for level, strict in boundaries]


def _band(t: np.ndarray, bounds: list[float]) -> np.ndarray:
    """Number of bounds (ascending) each cell's TPI lies above, uint8; 0 at NaN (masked later).

    Comparisons on the raw TPI with the precomputed bounds: no standardised grid is built.
    """
    band = np.greater(t, bounds[0]).view(np.uint8)  # bool → uint8 without a copy
    for bound in bounds[1:]:
        band += np.greater(t, bound).view(np.uint8)
    return band


def _clear_nodata(code: np.ndarray, grids: list[np.ndarray]) -> None:
    """Code 0 wherever one of the TPI grids is NaN (nodata, or a window without valid cell)."""
    for grid in grids:
        nodata = np.isnan(grid)
        if nodata.any():
            code[nodata] = 0


def classify_landforms10(t_small: np.ndarray, t_large: np.ndarray, bounds_small: list[float],
                         bounds_large: list[float], steep: np.ndarray) -> np.ndarray:
    """Ten Weiss landforms (codes 1–10, 0 where a TPI is NaN) from the float32 TPI grids, their
    :data:`LANDFORM_BOUNDARIES` bounds and the slope > threshold grid."""
    # Bands (0–2) of SN and LN give index 3·SN + LN, and the codes run
    # 1 2 3 | 4 5 7 | 8 9 10 (6, the open slope, is a plain that is steep): index + 1, plus 1
    # from 6 on. Arithmetic on uint8 is faster than a table lookup, which indexes in int64.
    code = _band(t_small, bounds_small)
    code *= 3
    code += _band(t_large, bounds_large)
    code += 1
    code += (code > 5).view(np.uint8)
    code += ((code == 5) & steep).view(np.uint8)
    _clear_nodata(code, [t_small, t_large])
    return code


def classify_slopeposition6(t: np.ndarray, bounds: list[float], steep: np.ndarray) -> np.ndarray:
    """Six slope positions (codes 1–6, 0 where t is NaN); a complete partition. `t` is the
    float32 TPI grid, `bounds` its :data:`POSITION_BOUNDARIES` bounds."""
    # Bands 0–4 are codes 1 2 3 5 6 (4, the middle slope, is a flat that is steep).
    code = _band(t, bounds)
    code += 1
    code += (code > 3).view(np.uint8)
    code += ((code == 3) & steep).view(np.uint8)
    _clear_nodata(code, [t])
    return code


@dataclass(frozen=True)
class Settings:
    small: tpi_mod.Neighbourhood
    large: tpi_mod.Neighbourhood
    scheme: str = "landforms10"
    slope_threshold: float = 5.0

    def __post_init__(self):
        if self.scheme not in SCHEMES:
            raise DemError(f"Unknown scheme '{self.scheme}' (use {' or '.join(SCHEMES)}).")
        if not (0 <= self.slope_threshold <= 90):
            raise DemError("The slope threshold must lie between 0 and 90 degrees.")

    @property
    def neighbourhoods(self) -> list[tpi_mod.Neighbourhood]:
        # slopeposition6 reads one TPI: the large neighbourhood.
        return [self.small, self.large] if self.scheme == "landforms10" else [self.large]

    @property
    def halo(self) -> int:
        # +1 for the slope's neighbours.
        return max(nb.halo for nb in self.neighbourhoods) + 1


def metric_cell(info: RasterInfo | None) -> tuple[float, float]:
    """Cell size in metres for the slope (the geotransform's units when there is no CRS; 1 × 1
    without georeferencing at all)."""
    if info is None:
        return 1.0, 1.0
    return ground_pixel_size_m(info)


def boundaries_of(settings: Settings) -> tuple:
    return LANDFORM_BOUNDARIES if settings.scheme == "landforms10" else POSITION_BOUNDARIES


def classify_block(padded: np.ndarray, tpis: list[np.ndarray], bounds: list[list[float]],
                   settings: Settings, cell: tuple[float, float], halo: int) -> np.ndarray:
    """Classes of the core of a padded block, given the core's float32 TPI grids and their
    class bounds (:func:`class_bounds`)."""
    steep = tpi_mod.core_of(steeper_than(padded, *cell, settings.slope_threshold), halo)
    if settings.scheme == "landforms10":
        return classify_landforms10(tpis[0], tpis[1], bounds[0], bounds[1], steep)
    return classify_slopeposition6(tpis[0], bounds[0], steep)


def _moments_of(grids: list[np.ndarray]) -> list[tpi_mod.Moments]:
    moments = []
    for grid in grids:
        m = tpi_mod.Moments()
        m.add(grid)
        moments.append(m)
    return moments


def _log_and_check(monitor: Monitor, nbs: list[tpi_mod.Neighbourhood],
                   moments: list[tpi_mod.Moments]) -> None:
    if moments[0].n == 0:
        raise DemError(NO_VALID_CELL)
    for nb, m in zip(nbs, moments):
        tpi_mod.log_moments(monitor, f"{nb.shape} r={nb.radius:g}", m)


def classify_array(z: np.ndarray, settings: Settings, info: RasterInfo | None = None,
                   monitor: Monitor | None = None) -> np.ndarray:
    """Whole-raster classification of an in-memory DEM (NaN = nodata) → uint8 codes.

    The TPI grids are float32 and standardised through float32 bounds, as SAGA stores them
    (see :func:`core.terrain.tpi.standardised_float32`); the slope needs no padding (the grid edge
    takes the one-sided differences a NaN neighbour would).
    """
    return _classify_whole(z, settings, info, monitor or Monitor())[0]


def _classify_whole(z: np.ndarray, settings: Settings, info: RasterInfo | None,
                    monitor: Monitor) -> tuple[np.ndarray, list[tpi_mod.Moments]]:
    """(codes, TPI moments) of an in-memory DEM."""
    for label, nb in zip(("small", "large"), (settings.small, settings.large)):
        tpi_mod.check_fits(nb, *z.shape, label=f"{label} neighbourhood")
    nbs = settings.neighbourhoods
    tpis = tpi_mod.tpis(z, nbs, np.float32, monitor)
    monitor.check()
    moments = _moments_of(tpis)
    _log_and_check(monitor, nbs, moments)
    bounds = [class_bounds(m, boundaries_of(settings)) for m in moments]
    return classify_block(z, tpis, bounds, settings, metric_cell(info), 0), moments


def row_class_counts(codes: np.ndarray, n_codes: int, rows_per_step: int = 256) -> np.ndarray:
    """Cells of each code in each row, (rows × n_codes) int64, a few rows at a time so that the
    int64 index array stays small."""
    counts = np.empty((codes.shape[0], n_codes), dtype=np.int64)
    for top in range(0, codes.shape[0], rows_per_step):
        part = codes[top : top + rows_per_step]
        flat = (np.arange(part.shape[0])[:, None] * n_codes + part).ravel()
        counts[top : top + part.shape[0]] = np.bincount(
            flat, minlength=part.shape[0] * n_codes).reshape(part.shape[0], n_codes)
    return counts


def landforms_raster(source: str, output: str, settings: Settings, block_size: int = BLOCK,
                     monitor: Monitor | None = None) -> dict:
    """Classify a DEM file into a styled Byte GeoTIFF (nodata 0).

    A raster of up to _IN_MEMORY_CELLS cells is read whole and classified by
    :func:`classify_array`; a larger one in two blocked passes (global TPI statistics, then
    classes), keeping the first pass's float32 TPI grids when they fit in _KEEP_CELLS.
    Returns {'counts': {code: cells}, 'rows': table rows (see :func:`class_table`), 'moments'}.
    """
    monitor = monitor or Monitor()
    info = read_info(source)
    for label, nb in zip(("small", "large"), (settings.small, settings.large)):
        tpi_mod.check_fits(nb, info.height, info.width, label=f"{label} neighbourhood")
        monitor.info(f"{label.capitalize()} neighbourhood: {nb.describe()}.")
    cell = metric_cell(info)
    if not info.has_crs:
        monitor.warn(
            f"No CRS: the slope takes the cell size in the geotransform's units "
            f"({cell[0]:g} × {cell[1]:g}) to be the units of the elevations."
        )
    n_codes = len(CLASSES[settings.scheme]) + 1
    # The legend goes into the file before its first pixel, which every GDAL accepts (libtiff
    # 4.7 refuses a palette on tiles already written), under its temporary name (process_blocks).
    legend = functools.partial(write_legend, scheme=settings.scheme)
    if info.width * info.height <= _IN_MEMORY_CELLS:
        z, _ = read_array(source)
        monitor.report(0.1)
        codes, moments = _classify_whole(z, settings, info, monitor)
        del z
        monitor.report(0.8)
        write_array(output, codes, info, "Byte", 0, monitor.part(0.8, 1.0), decorate=legend)
        counts = row_class_counts(codes, n_codes)
    else:
        counts, moments = _landforms_blocked(source, output, info, settings, cell, legend,
                                             block_size, monitor)
    rows = class_table(counts, info, settings.scheme)
    total = {code: cells for code, _, cells, _, _ in rows}
    return {"counts": total, "rows": rows, "moments": moments}


def _landforms_blocked(source: str, output: str, info: RasterInfo, settings: Settings,
                       cell: tuple[float, float], decorate: Callable[[gdal.Dataset], None],
                       block_size: int, monitor: Monitor
                       ) -> tuple[np.ndarray, list[tpi_mod.Moments]]:
    """The two blocked passes of :func:`landforms_raster`: (per-row class counts, moments)."""
    nbs = settings.neighbourhoods
    keep = info.width * info.height * len(nbs) <= tpi_mod._KEEP_CELLS
    moments, grids = tpi_mod.tpi_moments(source, nbs, block_size, monitor.part(0.0, 0.5), keep,
                                         np.float32)
    _log_and_check(monitor, nbs, moments)
    bounds = [class_bounds(m, boundaries_of(settings)) for m in moments]
    # Second pass: with the TPI grids kept from the first pass only the slope needs a halo;
    # otherwise every block recomputes its TPI with the large radius as halo.
    halo = 1 if grids is not None else settings.halo
    counts = np.zeros((info.height, len(CLASSES[settings.scheme]) + 1), dtype=np.int64)

    def block_classes(padded: np.ndarray, block) -> np.ndarray:
        rows = slice(block.row, block.row + block.height)
        cols = slice(block.col, block.col + block.width)
        if grids is not None:
            tpis = [g[rows, cols] for g in grids]
        else:
            tpis = [tpi_mod.core_of(t, halo) for t in tpi_mod.tpis(padded, nbs, np.float32)]
        codes = classify_block(padded, tpis, bounds, settings, cell, halo)
        # Per-row class counts: cell areas vary with latitude in a geographic CRS.
        counts[rows] += row_class_counts(codes, counts.shape[1])
        return codes

    process_blocks(source, output, block_classes, halo=halo, block_size=block_size,
                   data_type="Byte", nodata=0, monitor=monitor.part(0.5, 1.0),
                   decorate=decorate)
    return counts, moments


# Rasters up to this many cells are classified whole in memory: about 40 bytes a cell at the
# peak (the DEM, its centred float64 copy, a float64 sum and a float32 TPI per window), so
# 16 M cells stay under 700 MB.
_IN_MEMORY_CELLS = 16_000_000


def row_cell_areas_km2(info: RasterInfo) -> np.ndarray:
    """Ground area of one cell in each row, km² (latitude-dependent in a geographic CRS)."""
    if not info.has_crs or not info.is_geographic:
        dx, dy = ground_pixel_size_m(info)
        return np.full(info.height, dx * dy / 1e6)
    gt = info.geotransform
    # Latitude of each row's centre, taken in the middle column.
    lat = gt[3] + gt[4] * info.width / 2 + gt[5] * (np.arange(info.height) + 0.5)
    width_m, height_m = geographic_cell_size_m(info, lat)
    return width_m * height_m / 1e6


def class_table(counts: np.ndarray, info: RasterInfo, scheme: str) -> list[tuple]:
    """Rows (code, name, cells, area_km2, percent of the valid area) for every class.

    `counts` is (rows × classes+1) cells per raster row and code (column 0 = nodata).
    """
    return class_rows(counts.sum(axis=0), row_cell_areas_km2(info) @ counts, scheme)


def class_rows(cells: np.ndarray, areas: np.ndarray, scheme: str) -> list[tuple]:
    """Rows (code, name, cells, area_km2, percent) from cells and km² per code (0 = nodata)."""
    valid_area = float(areas[1:].sum())
    rows = []
    for code, (name, _) in CLASSES[scheme].items():
        pct = 100.0 * areas[code] / valid_area if valid_area > 0 else 0.0
        rows.append((code, name, int(cells[code]), float(areas[code]), float(pct)))
    return rows


def write_legend(target: str | gdal.Dataset, scheme: str) -> None:
    """Colour table, class names and a raster attribute table, so any GIS reads the legend.

    `target` is an open dataset (the writer's, before its first pixel) or a path.
    The colour table and the class names as band metadata (CLASS_<code>) live in the TIFF
    itself, so a copied .tif keeps them; GDAL 3.6 keeps category names and the attribute table,
    which most GIS read the legend from, only in the .aux.xml beside it.
    """
    classes = CLASSES[scheme]
    ds = gdal.Open(target, gdal.GA_Update) if isinstance(target, str) else target
    band = ds.GetRasterBand(1)
    colours = gdal.ColorTable()
    colours.SetColorEntry(0, (0, 0, 0, 0))
    for code, (_, rgb) in classes.items():
        colours.SetColorEntry(code, (*rgb, 255))
    band.SetColorTable(colours)
    names = [""] * (max(classes) + 1)
    names[0] = "nodata"
    for code, (name, _) in classes.items():
        names[code] = name
    band.SetCategoryNames(names)
    band.SetMetadata({f"CLASS_{code}": name for code, (name, _) in classes.items()})
    band.SetDescription(SCHEME_TITLES[scheme])
    rat = gdal.RasterAttributeTable()
    rat.CreateColumn("Value", gdal.GFT_Integer, gdal.GFU_MinMax)
    rat.CreateColumn("Class", gdal.GFT_String, gdal.GFU_Name)
    for column in ("Red", "Green", "Blue"):
        rat.CreateColumn(column, gdal.GFT_Integer, getattr(gdal, f"GFU_{column}"))
    for i, (code, (name, rgb)) in enumerate(classes.items()):
        rat.SetValueAsInt(i, 0, code)
        rat.SetValueAsString(i, 1, name)
        for j, value in enumerate(rgb):
            rat.SetValueAsInt(i, 2 + j, value)
    band.SetDefaultRAT(rat)
    ds.SetMetadata({"DEMSR_SCHEME": scheme})
    if isinstance(target, str):
        ds = None  # closing writes the file and its .aux.xml


def percent_check(rows: list[tuple]) -> float:
    """Sum of the percent column (100 for any raster with a valid cell)."""
    return float(math.fsum(r[4] for r in rows))
