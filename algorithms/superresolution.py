"""demsr:superresolution — DEM super-resolution with a residual CNN run by onnxruntime."""
from ..core.declarations.superresolution import SPEC
from ..core.superres import inference
from .base import DemAlgorithm
from .declared import add_parameters, values
from .engine import engine_of, run_chunked
from .styling import DemStyler, SpreadStyler


class SuperResolutionAlgorithm(DemAlgorithm):
    ALG_ID = "superresolution"
    SPEC = SPEC
    DISPLAY_NAME = "DEM super-resolution (CNN)"
    GROUP = "upscaling"
    ICON = "superresolution.svg"
    SHORT = SPEC.summary
    TAGS = ("super-resolution", "upscaling", "downscaling", "deep learning", "cnn", "onnx",
            "srtm", "copernicus", "aster", "resample", "gpu", "cuda")

    def help_text(self):
        # Generated when asked, not at import: it lists the bundled models installed now.
        return self.tr(SPEC.help_text())

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS's name)
        add_parameters(self, SPEC)  # the bundled models are read once, at load time

    def canExecute(self):  # noqa: N802 (QGIS's name)
        ok, message = inference.onnxruntime_available()
        return (True, "") if ok else (False, message)

    def run_core(self, parameters, context, monitor):
        path, _ = self.input_dem(parameters, "INPUT", context, monitor)
        v = values(self, SPEC, parameters, context)
        output = self.output_path(parameters, "OUTPUT", context)
        spread = self.raster_output(parameters, "OUTPUT_SPREAD", context)
        engine = engine_of(self, parameters, context)
        if engine:
            job = run_chunked("superresolution", path, output, v, engine, monitor,
                              spread_output=spread)
            self._style(context, output, spread)
            return {"OUTPUT": output, "OUTPUT_SPREAD": spread,
                    "DEVICE_USED": ", ".join(job.stats["providers"])}
        result = inference.superresolve(
            path, output, v["scale"], model=v["model"], model_file=v["model_file"],
            device=v["device"], tile_size=v["tile_size"], monitor=monitor,
            ensemble=v["ensemble"], spread_output=spread,
        )
        self._style(context, output, spread)
        return {"OUTPUT": output, "OUTPUT_SPREAD": spread, "DEVICE_USED": result.device_used}

    def _style(self, context, output: str, spread: str | None) -> None:
        self.style_on_load(context, output, DemStyler())
        if spread:
            self.style_on_load(context, spread, SpreadStyler())
