"""Parameters several algorithms declare alike: the input DEM, the neighbourhood shape and units
of TPI and landforms, and the advanced ENGINE of the raster algorithms."""
from __future__ import annotations

from ..errors import DemError
from ..params import ENUM, NUMBER, RASTER, STRING, Choice, Param
from ..terrain import tpi

INPUT_DEM = Param("INPUT", RASTER, "DEM", "the elevation raster; band 1 is used.",
                  option=False)

ENGINE = Param(
    "ENGINE", STRING, "Distributed engine (empty: in this process)",
    "empty runs in this process; local (or local:N) runs chunk by chunk on N worker processes "
    "of this computer; a Dask scheduler address (tcp://host:8786) or scheduler file runs on that "
    "cluster. The result is the same; an interrupted run resumes where it stopped.",
    default="", optional=True, advanced=True, option=False, default_text="empty")

SHAPE = Param(
    "SHAPE", ENUM, "Neighbourhood shape",
    "square of (2 × radius + 1) cells a side, circle (cells whose centre lies within the "
    "radius, as SAGA and ArcGIS) or annulus (the ring between the inner and the outer radius).",
    default="square", choices=tuple(Choice(s) for s in tpi.SHAPES))

UNITS = Param(
    "UNITS", ENUM, "Radius units",
    "radii in cells, or in map units; for a geographic CRS (degrees) map units are metres, "
    "converted at the raster's central latitude; without a CRS they are the raster's own units.",
    default="cells",
    choices=(Choice("cells"), Choice("map units", aliases=("map_units", "map-units"))))


def radius(name: str, label: str, help: str, default: float) -> Param:
    """A neighbourhood radius: a positive number, shown without decimals."""
    return Param(name, NUMBER, label, help, default=default, minimum=0.0, above_minimum=True,
                 decimals=0)


def check_radii_in_cells(values: dict, *keys: str) -> None:
    """A rule: a radius in cells below one cell leaves only the centre cell in the window, and
    every TPI would be 0; refused, naming the parameter. (Radii in map units are checked against
    the raster's cell size when it is read: core.terrain.tpi.neighbourhood.)"""
    if values["units"] != "cells":
        return
    for key in keys:
        if values[key] < tpi.MIN_RADIUS_CELLS:
            raise DemError(
                f"{key.upper()}: {values[key]:g} cells is less than one cell, so the "
                "neighbourhood would hold only the centre cell (a TPI of 0 everywhere); "
                f"allowed in cells: a radius ≥ {tpi.MIN_RADIUS_CELLS:g}.")
