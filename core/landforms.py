"""TPI landform classification (Weiss 2001), as DESIGN.md §5 pins it.

Two schemes:

- ``landforms10``: ten landforms from the standardised TPI of a small (SN) and a large (LN)
  neighbourhood plus slope — the same rules and codes as SAGA's "TPI Based Landform
  Classification" (ta_morphometry 19);
- ``slopeposition6``: six slope positions from one standardised TPI (the large neighbourhood)
  plus slope.

Output is Byte with 0 for nodata. Large rasters are processed in blocks: a first pass collects
the global TPI statistics (standardisation needs the mean and sd of the whole raster), a second
pass classifies each block with a halo of the large radius, so the result equals the whole-raster
computation whatever the block size.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from osgeo import gdal

from . import tpi as tpi_mod
from .errors import DemError
from .progress import Monitor
from .raster import (
    NO_VALID_CELL,
    RasterInfo,
    geographic_cell_size_m,
    ground_pixel_size_m,
    process_blocks,
    read_info,
)
from .terrain import slope_gradient

SCHEMES = ("landforms10", "slopeposition6")
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

# Rows: small-scale band (SN ≤ −1, −1 < SN < 1, SN ≥ 1); columns: the same for LN.
# Code 5 becomes 6 (open slope) where the slope exceeds the threshold.
_LANDFORM_TABLE = np.array([[0, 0, 0, 0], [0, 1, 2, 3], [0, 4, 5, 7], [0, 8, 9, 10]],
                           dtype=np.uint8)


def _band(t: np.ndarray) -> np.ndarray:
    """1: t ≤ −1, 2: −1 < t < 1, 3: t ≥ 1, 0: NaN (the inequalities of DESIGN §5)."""
    # Comparisons summed in uint8: a few passes over the grid, no nested where.
    band = (t > -1).astype(np.uint8)
    band += t >= 1
    band += 1
    band[np.isnan(t)] = 0
    return band


def _steep(gradient: np.ndarray, threshold_deg: float) -> np.ndarray:
    """slope > threshold, compared as tan(slope) > tan(threshold): no arctan over the grid."""
    return gradient > math.tan(math.radians(threshold_deg))


def classify_landforms10(sn: np.ndarray, ln: np.ndarray, gradient: np.ndarray,
                         threshold: float = 5.0) -> np.ndarray:
    """Ten Weiss landforms (codes 1–10, 0 where any input is NaN); `gradient` = tan(slope)."""
    code = np.take(_LANDFORM_TABLE.ravel(), _band(sn) * 4 + _band(ln))
    code[(code == 5) & _steep(gradient, threshold)] = 6
    code[np.isnan(gradient)] = 0
    return code


def classify_slopeposition6(t: np.ndarray, gradient: np.ndarray,
                            threshold: float = 5.0) -> np.ndarray:
    """Six slope positions (codes 1–6, 0 where t or the slope is NaN); a complete partition.
    `gradient` = tan(slope)."""
    code = np.select(
        [t < -1, t < -0.5, t <= 0.5, t <= 1, t > 1],
        [1, 2, 3, 5, 6],
        default=0,
    ).astype(np.uint8)
    code[(code == 3) & _steep(gradient, threshold)] = 4
    code[np.isnan(gradient) | np.isnan(t)] = 0
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
    """Cell size in metres for the slope (cell units when there is no CRS)."""
    if info is None:
        return 1.0, 1.0
    return ground_pixel_size_m(info)


def classify_block(padded: np.ndarray, tpis: list[np.ndarray], moments: list[tpi_mod.Moments],
                   settings: Settings, cell: tuple[float, float], halo: int) -> np.ndarray:
    """Classes of the core of a padded block, given the core's raw TPI grids."""
    gradient = tpi_mod.core_of(slope_gradient(padded, *cell), halo)
    std = [tpi_mod.standardised(t, m) for t, m in zip(tpis, moments)]
    if settings.scheme == "landforms10":
        return classify_landforms10(std[0], std[1], gradient, settings.slope_threshold)
    return classify_slopeposition6(std[0], gradient, settings.slope_threshold)


def classify_array(z: np.ndarray, settings: Settings, info: RasterInfo | None = None,
                   monitor: Monitor | None = None) -> np.ndarray:
    """Whole-raster classification of an in-memory DEM (NaN = nodata) → uint8 codes."""
    monitor = monitor or Monitor()
    for label, nb in zip(("small", "large"), (settings.small, settings.large)):
        tpi_mod.check_fits(nb, *z.shape, label=f"{label} neighbourhood")
    tpis = [tpi_mod.tpi(z, nb) for nb in settings.neighbourhoods]
    moments = []
    for t, nb in zip(tpis, settings.neighbourhoods):
        m = tpi_mod.Moments()
        m.add(t)
        if m.n == 0:
            raise DemError(NO_VALID_CELL)
        tpi_mod.log_moments(monitor, nb.shape, m)
        moments.append(m)
    padded = np.pad(np.asarray(z, dtype=np.float64), 1, constant_values=np.nan)
    return classify_block(padded, tpis, moments, settings, metric_cell(info), 1)


def landforms_raster(source: str, output: str, settings: Settings, block_size: int = BLOCK,
                     monitor: Monitor | None = None) -> dict:
    """Classify a DEM file into a styled Byte GeoTIFF (nodata 0) in two blocked passes.

    Returns {'counts': {code: cells}, 'rows': table rows (see :func:`class_table`), 'moments'}.
    """
    monitor = monitor or Monitor()
    info = read_info(source)
    for label, nb in zip(("small", "large"), (settings.small, settings.large)):
        tpi_mod.check_fits(nb, info.height, info.width, label=f"{label} neighbourhood")
        monitor.info(f"{label.capitalize()} neighbourhood: {nb.describe()}.")
    nbs = settings.neighbourhoods
    keep = info.width * info.height * len(nbs) <= tpi_mod._KEEP_CELLS
    moments, grids = tpi_mod.tpi_moments(source, nbs, block_size, monitor.part(0.0, 0.5), keep)
    if moments[0].n == 0:
        raise DemError(NO_VALID_CELL)
    for nb, m in zip(nbs, moments):
        tpi_mod.log_moments(monitor, f"{nb.shape} r={nb.radius:g}", m)

    cell = metric_cell(info if info.has_crs else None)
    if not info.has_crs:
        monitor.warn("No CRS: slope is computed with cells taken as 1 × 1 units.")
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
            tpis = [tpi_mod.core_of(tpi_mod.tpi(padded, nb), halo) for nb in nbs]
        codes = classify_block(padded, tpis, moments, settings, cell, halo)
        # Per-row class counts: cell areas vary with latitude in a geographic CRS.
        k = counts.shape[1]
        flat = (np.arange(block.height)[:, None] * k + codes).ravel()
        counts[rows] += np.bincount(flat, minlength=block.height * k).reshape(block.height, k)
        return codes

    process_blocks(source, output, block_classes, halo=halo, block_size=block_size,
                   data_type="Byte", nodata=0, monitor=monitor.part(0.5, 1.0))
    write_legend(output, settings.scheme)
    rows = class_table(counts, info, settings.scheme)
    total = {code: cells for code, _, cells, _, _ in rows}
    return {"counts": total, "rows": rows, "moments": moments}


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
    areas = row_cell_areas_km2(info) @ counts  # km² per code
    cells = counts.sum(axis=0)
    valid_area = float(areas[1:].sum())
    rows = []
    for code, (name, _) in CLASSES[scheme].items():
        pct = 100.0 * areas[code] / valid_area if valid_area > 0 else 0.0
        rows.append((code, name, int(cells[code]), float(areas[code]), float(pct)))
    return rows


def write_legend(path: str, scheme: str) -> None:
    """Colour table, category names and a raster attribute table, so any GIS reads the legend.

    The colour table lives in the TIFF; GDAL keeps category names and the attribute table in the
    .aux.xml beside it (GeoTIFF has no tag for them).
    """
    classes = CLASSES[scheme]
    ds = gdal.Open(path, gdal.GA_Update)
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
    ds = None


def percent_check(rows: list[tuple]) -> float:
    """Sum of the percent column (100 for any raster with a valid cell)."""
    return float(math.fsum(r[4] for r in rows))
