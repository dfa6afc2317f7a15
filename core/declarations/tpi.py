"""demsr:tpi declared: topographic position index, and its chunk kernel for large areas."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import DemError
from ..largearea.chunks import Kernel
from ..params import BOOLEAN, NUMBER, RASTER_OUT, AlgorithmSpec, Output, Param
from ..terrain import tpi
from .common import ENGINE, INPUT_DEM, SHAPE, UNITS, check_radii_in_cells, radius


@dataclass(frozen=True)
class TpiKernel(Kernel):
    """TPI of a chunk read with the neighbourhood's halo; standardised with the mean and sd of
    the whole raster from a reduction pass (each chunk's Moments, merged in chunk order)."""

    nb: tpi.Neighbourhood
    standardize: bool = False
    algorithm = "tpi"
    scale = 1
    nodata = -9999.0  # as tpi.tpi_raster

    @property
    def halo(self) -> int:
        return self.nb.halo

    @property
    def needs_moments(self) -> bool:
        return self.standardize

    def moments(self, padded):
        m = tpi.Moments()
        m.add(tpi.core_of(tpi.tpi(padded, self.nb), self.halo))
        return [m]

    def moment_labels(self):
        return [f"{self.nb.shape} r={self.nb.radius:g}"]

    def pieces(self, padded, chunk, moments, model, threads, summary):
        t = tpi.core_of(tpi.tpi(padded, self.nb), self.halo)
        raw = tpi.Moments()
        raw.add(t)
        summary["tpi_moments"] = [asdict(raw)]
        yield 0, 0, tpi.standardised(t, moments[0]) if self.standardize else t

    def stats(self, summaries):
        m = tpi.Moments()
        for s in summaries:
            m.merge(tpi.Moments(**s["tpi_moments"][0]))
        return {"cells": m.n, "mean": m.mean, "sd": m.sd, "neighbourhood": self.nb.describe()}


def kernel(values, info, chunk_size, monitor, extras=()):
    nb = tpi.neighbourhood(values["shape"], float(values["radius"]),
                           float(values["inner_radius"]), values["units"], info)
    tpi.check_fits(nb, info.height, info.width)
    monitor.info(f"Neighbourhood: {nb.describe()}.")
    return TpiKernel(nb, bool(values["standardize"])), None


def rules(values: dict) -> None:
    check_radii_in_cells(values, "radius")
    if values["shape"] == "annulus" and values["inner_radius"] > values["radius"]:
        raise DemError(f"INNER_RADIUS ({values['inner_radius']:g}) must be at most RADIUS "
                       f"({values['radius']:g}), the annulus's outer radius.")


SPEC = AlgorithmSpec(
    id="tpi",
    summary="Elevation minus the mean of a square, circle or annulus around each cell.",
    about=(
        "The topographic position index (TPI) is each cell's elevation minus the mean "
        "elevation of its neighbourhood (Guisan et al. 1999, Weiss 2001): positive on ridges "
        "and hilltops, negative in valleys, near 0 on flats and even slopes. Nodata cells are "
        "left out of every mean, and near the raster's edge only the cells inside it are "
        "averaged."
    ),
    params=(
        INPUT_DEM,
        radius("RADIUS", "Radius (outer radius for an annulus)",
               "how far the neighbourhood reaches from each cell, in the radius units; at least "
               "one cell.", 2.0),
        Param("INNER_RADIUS", NUMBER, "Inner radius (annulus only)",
              "cells nearer than this are left out of an annulus; ignored by the other shapes.",
              default=0.0, minimum=0.0, decimals=0),
        SHAPE,
        UNITS,
        Param("STANDARDIZE", BOOLEAN, "Standardise (mean 0, sd 1)",
              "rescale the TPI by the mean and standard deviation of the whole raster, so that "
              "results of different areas compare; a flat raster gives 0.", default=False),
        ENGINE,
    ),
    outputs=(
        Output("OUTPUT", RASTER_OUT, "TPI",
               "the index in elevation units (Float32 GeoTIFF, nodata −9999)."),
    ),
    rules=rules,
    kernel=kernel,
    notes=(
        "Guisan, Weiss and Weiss (1999), GLM versus CCA spatial modeling of plant species "
        "distribution, Plant Ecology 143. Weiss (2001), Topographic position and landforms "
        "analysis, poster, ESRI User Conference, San Diego."
    ),
)
