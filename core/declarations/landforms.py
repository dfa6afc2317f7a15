"""demsr:landforms declared: Weiss's TPI landforms or slope positions, and the chunk kernel."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..grid.raster import RasterInfo
from ..largearea.chunks import Kernel
from ..params import (
    ENUM,
    NUMBER,
    RASTER_OUT,
    TABLE_OUT,
    AlgorithmSpec,
    Choice,
    Output,
    Param,
    check_less,
)
from ..terrain import landforms, tpi
from .common import ENGINE, INPUT_DEM, SHAPE, UNITS, check_radii_in_cells, radius


@dataclass(frozen=True)
class LandformsKernel(Kernel):
    """Class codes of a chunk read with the larger neighbourhood's halo plus one cell (slope);
    the TPI is standardised with the whole raster's mean and sd from a reduction pass."""

    settings: landforms.Settings
    cell: tuple[float, float]  # metres, from the whole raster (slope as in-process)
    info: RasterInfo  # the whole raster: row areas depend on latitude
    algorithm = "landforms"
    scale = 1
    data_type = "Byte"
    nodata = 0

    @property
    def halo(self) -> int:
        return self.settings.halo

    @property
    def needs_moments(self) -> bool:
        return True

    def _tpis(self, padded: np.ndarray) -> list[np.ndarray]:
        # float32 TPI, classified through float32 bounds: what landforms_raster does.
        return [tpi.core_of(t, self.halo)
                for t in tpi.tpis(padded, self.settings.neighbourhoods, np.float32)]

    def moments(self, padded):
        out = []
        for t in self._tpis(padded):
            m = tpi.Moments()
            m.add(t)
            out.append(m)
        return out

    def moment_labels(self):
        return [f"{nb.shape} r={nb.radius:g}" for nb in self.settings.neighbourhoods]

    def pieces(self, padded, chunk, moments, model, threads, summary):
        bounds = [landforms.class_bounds(m, landforms.boundaries_of(self.settings))
                  for m in moments]
        codes = landforms.classify_block(padded, self._tpis(padded), bounds, self.settings,
                                         self.cell, self.halo)
        k = len(landforms.CLASSES[self.settings.scheme]) + 1
        per_row = landforms.row_class_counts(codes, k)
        areas = landforms.row_cell_areas_km2(self.info)[chunk.row : chunk.row + chunk.height]
        summary["class_cells"] = per_row.sum(axis=0).tolist()
        summary["class_area_km2"] = (areas @ per_row).tolist()
        yield 0, 0, codes

    def describe_output(self, path):
        landforms.write_legend(path, self.settings.scheme)

    def stats(self, summaries):
        k = len(landforms.CLASSES[self.settings.scheme]) + 1
        cells = np.zeros(k, dtype=np.int64)
        areas = np.zeros(k)
        for s in summaries:
            cells += np.asarray(s["class_cells"], dtype=np.int64)
            areas += np.asarray(s["class_area_km2"])
        rows = landforms.class_rows(cells, areas, self.settings.scheme)
        return {"rows": rows, "counts": {code: n for code, _, n, _, _ in rows}}


def kernel(values, info, chunk_size, monitor, extras=()):
    shape, units = values["shape"], values["units"]
    settings = landforms.Settings(
        tpi.neighbourhood(shape, float(values["small_radius"]), 0.0, units, info),
        tpi.neighbourhood(shape, float(values["large_radius"]), 0.0, units, info),
        values["scheme"], float(values["slope_threshold"]),
    )
    for label, nb in zip(("small", "large"), (settings.small, settings.large)):
        tpi.check_fits(nb, info.height, info.width, label=f"{label} neighbourhood")
        monitor.info(f"{label.capitalize()} neighbourhood: {nb.describe()}.")
    cell = landforms.metric_cell(info)
    if not info.has_crs:
        monitor.warn(
            f"No CRS: the slope takes the cell size in the geotransform's units "
            f"({cell[0]:g} × {cell[1]:g}) to be the units of the elevations."
        )
    return LandformsKernel(settings, cell, info), None


def rules(values: dict) -> None:
    check_radii_in_cells(values, "small_radius", "large_radius")
    check_less(values, "small_radius", "large_radius")


SPEC = AlgorithmSpec(
    id="landforms",
    summary="Weiss's ten TPI landform classes or six slope positions, with area per class.",
    about=(
        "Classifies the terrain from the topographic position index (TPI) of a small and a "
        "large neighbourhood, standardised over the whole raster, and the slope, with the same "
        "rules and codes as SAGA's 'TPI Based Landform Classification' (Weiss 2001).\n\n"
        "Landforms (ten classes), from the small (SN) and large (LN) standardised TPI: "
        "1 canyons (SN and LN at most −1), 2 midslope drainages, 3 upland drainages, "
        "4 U-shaped valleys, 5 plains (SN and LN between −1 and 1, slope at most the "
        "threshold), 6 open slopes (the same, steeper), 7 upper slopes, 8 local ridges, "
        "9 midslope ridges, 10 mountain tops.\n\n"
        "Slope positions (six classes), from the large standardised TPI t: 1 valley (t below "
        "−1), 2 lower slope, 3 flat (t between −0.5 and 0.5, slope at most the threshold), "
        "4 middle slope, 5 upper slope, 6 ridge (t above 1).\n\n"
        "For SAGA's results choose the circle and radii in map units. A flat raster is all "
        "plains (or flat), said in the log."
    ),
    params=(
        INPUT_DEM,
        radius("SMALL_RADIUS", "Small neighbourhood radius",
               "the radius of the small neighbourhood (5 × 5 cells for the default square); "
               "smaller than the large radius.", 2.0),
        radius("LARGE_RADIUS", "Large neighbourhood radius",
               "the radius of the large neighbourhood (45 × 45 cells for the default square).",
               22.0),
        SHAPE,
        UNITS,
        Param("SLOPE_THRESHOLD", NUMBER, "Slope threshold (degrees)",
              "the slope between plains and open slopes, or flat and middle slope, from ground "
              "cell sizes.", default=5.0, minimum=0.0, maximum=90.0, decimals=1),
        Param("SCHEME", ENUM, "Classification",
              "landforms10: ten landform classes; slopeposition6: six slope positions.",
              default="landforms10", choices=tuple(Choice(s) for s in landforms.SCHEMES)),
        ENGINE,
    ),
    outputs=(
        Output("OUTPUT", RASTER_OUT, "Landforms",
               "class codes (Byte GeoTIFF, nodata 0) with colours, class names and an "
               "attribute table."),
        Output("OUTPUT_TABLE", TABLE_OUT, "Area per class",
               "cells, area (km², from ground cell sizes) and percent of the valid area per "
               "class; the same numbers are always in the log.", optional=True, option=True),
    ),
    rules=rules,
    kernel=kernel,
    notes="Weiss (2001), Topographic position and landforms analysis, poster, ESRI User "
          "Conference, San Diego.",
)
