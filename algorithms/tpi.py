"""demsr:tpi — topographic position index with square, circle or annulus neighbourhoods."""
from ..core.declarations.tpi import SPEC
from ..core.terrain import tpi as core_tpi
from .base import DemAlgorithm
from .declared import add_parameters, values
from .engine import engine_of, run_chunked
from .styling import TpiStyler


def no_crs_note(units: str) -> str:
    """What radii mean on a raster without CRS (shared by TPI and landforms)."""
    if units == "cells":
        return "Radii are in cells."
    return ("Radii in map units are taken in the geotransform's own units, whatever they are "
            "(no CRS says); give them in cells if that is not what you mean.")


class TpiAlgorithm(DemAlgorithm):
    ALG_ID = "tpi"
    SPEC = SPEC
    DISPLAY_NAME = "Topographic position index (TPI)"
    GROUP = "terrain"
    ICON = "tpi.svg"
    SHORT = SPEC.summary
    TAGS = ("tpi", "topographic position index", "geomorphology", "terrain", "relief")
    HELP = SPEC.help_text()

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS's name)
        add_parameters(self, SPEC)

    def run_core(self, parameters, context, monitor):
        v = values(self, SPEC, parameters, context)
        path, info = self.input_dem(parameters, "INPUT", context, monitor,
                                    no_crs_note(v["units"]))
        if v["inner_radius"] > 0 and v["shape"] != "annulus":
            monitor.warn("The inner radius only applies to the annulus; it is ignored.")
        if v["units"] == "map units" and info.is_geographic:
            monitor.info("Geographic CRS: radii in map units are read as metres.")
        nb = core_tpi.neighbourhood(v["shape"], v["radius"], v["inner_radius"], v["units"],
                                    info)
        output = self.output_path(parameters, "OUTPUT", context)
        engine = engine_of(self, parameters, context)
        if engine:
            stats = run_chunked("tpi", path, output, v, engine, monitor).stats
        else:
            stats = core_tpi.tpi_raster(path, output, nb, v["standardize"], monitor=monitor)
        spread = 2.5 if v["standardize"] else 2.5 * stats["sd"]
        self.style_on_load(context, output, TpiStyler(spread))
        return {"OUTPUT": output}
