"""demsr:attraction — sub-pixel upscaling by the spatial attraction model."""
from ..core import attraction as core_attraction
from ..core.declarations.attraction import SPEC
from .base import DemAlgorithm
from .declared import add_parameters, values
from .engine import engine_of, run_chunked
from .styling import DemStyler


class AttractionAlgorithm(DemAlgorithm):
    ALG_ID = "attraction"
    SPEC = SPEC
    DISPLAY_NAME = "Attraction-model upscaling"
    GROUP = "upscaling"
    ICON = "attraction.svg"
    SHORT = SPEC.summary
    TAGS = ("attraction model", "sub-pixel", "upscaling", "downscaling", "resample", "srtm")
    HELP = SPEC.help_text()

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS's name)
        add_parameters(self, SPEC)

    def run_core(self, parameters, context, monitor):
        path, _ = self.input_dem(parameters, "INPUT", context, monitor)
        v = values(self, SPEC, parameters, context)
        output = self.output_path(parameters, "OUTPUT", context)
        engine = engine_of(self, parameters, context)
        if engine:
            run_chunked("attraction", path, output, v, engine, monitor)
        else:
            core_attraction.upscale_file(path, output, v["scale"], v["neighbourhood"],
                                         v["assignment"], v["preserve_mean"], monitor=monitor)
        self.style_on_load(context, output, DemStyler())
        return {"OUTPUT": output}
