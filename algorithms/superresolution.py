"""demsr:superresolution — DEM super-resolution with a residual CNN run by onnxruntime."""
from qgis.core import (
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ..core import inference
from ..core.models import bundled_families
from .base import DemAlgorithm
from .engine import ENGINE_HELP, add_engine_parameter, engine_of, run_chunked
from .styling import DemStyler, SpreadStyler

NO_MODEL = "(no bundled model installed)"
DEVICES = list(inference.DEVICES)


class SuperResolutionAlgorithm(DemAlgorithm):
    ALG_ID = "superresolution"
    DISPLAY_NAME = "DEM super-resolution (CNN)"
    GROUP = "upscaling"
    ICON = "superresolution.svg"
    SHORT = "Makes a DEM 2, 3 or 4 times finer with a residual convolutional network (ONNX)."
    TAGS = ("super-resolution", "upscaling", "downscaling", "deep learning", "cnn", "onnx",
            "srtm", "copernicus", "aster", "resample", "gpu", "cuda")
    HELP = (
        "Makes a DEM finer by 2, 3 or 4 with a residual convolutional network run by "
        "onnxruntime. The result is a float32 GeoTIFF with the input's origin and CRS, cells "
        "SCALE times smaller, and nodata wherever the input cell was nodata.\n"
        "SCALE: the factor itself (2 = cells half as wide); the model's card lists the factors "
        "it supports.\n"
        "MODEL: a bundled network, by number: {models}. Each file carries its model card "
        "(architecture, scales, training data, validation scores); fastsr is the faster and "
        "more accurate one. MODEL_FILE: your own .onnx with a demsr model card; overrides "
        "MODEL.\n"
        "DEVICE: 0 = auto (the GPU when onnxruntime-gpu and CUDA are available, else the CPU), "
        "1 = cuda (fails with the reason when the GPU cannot be used), 2 = cpu. The provider "
        "actually used is logged and returned as DEVICE_USED.\n"
        "TILE_SIZE: input cells per tile side, 0 = chosen from free memory. The raster is "
        "processed tile by tile with an overlap wider than the network's receptive field, so "
        "the result does not depend on the tile size and memory stays bounded.\n"
        "ENSEMBLE: average the network over the 8 rotations and flips of every tile. Measured "
        "on ten held-out DEMs (SRTM, Copernicus, ASTER, AW3D30, LiDAR) at x2 to x4: RMSE 0.6 % "
        "lower (median; from 0.1 % higher to 1.5 % lower), at 4 to 11 times the time. "
        "OUTPUT_SPREAD (optional, implies ENSEMBLE): the standard deviation of the 8 results, "
        "in metres. It "
        "is an ensemble spread, not an uncertainty: cells with a larger spread do have larger "
        "errors (Spearman 0.10 to 0.53; the tenth of cells with the largest spread has 1.4 to 11 "
        "times the mean error of the tenth with the smallest), but the error is within one "
        "spread in only 4 to 13 % of cells (within two: 8 to 26 %), so it must not be read as "
        "a standard error.\n"
        "Held-out accuracy and speed of the bundled models: see the project's documentation "
        "(docs/algorithms.md). The 30-layer network follows Jiao, Wang, Lv and Peng (2020), "
        "Super-resolution reconstruction of a digital elevation model based on a deep "
        "residual network, Open Geosciences 12; the fast one is an EDSR-style network on the "
        "coarse grid (Lim et al. 2017, Enhanced deep residual networks for single image "
        "super-resolution, CVPR workshops)."
    )
    HELP += ENGINE_HELP

    def help_text(self):
        names = ", ".join(f"{i} = {name}" for i, name in enumerate(self.model_options()))
        return self.tr(self.HELP.replace("{models}", names))

    def model_options(self):
        if not hasattr(self, "families"):
            self.families, self.default_family = bundled_families()
        return self.families or [NO_MODEL]

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS's name)
        options = self.model_options()  # read once at load time
        default = options.index(self.default_family) if self.families else 0
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", self.tr("Input DEM")))
        # An integer, not an enum: SCALE=2 means x2 on every front door, never "option 2".
        self.addParameter(QgsProcessingParameterNumber(
            "SCALE", self.tr("Scale factor (2, 3 or 4 for the bundled models)"),
            QgsProcessingParameterNumber.Integer, 2, minValue=2))
        self.addParameter(QgsProcessingParameterEnum(
            "MODEL", self.tr("Bundled model"), options=options, defaultValue=default))
        self.addParameter(QgsProcessingParameterFile(
            "MODEL_FILE", self.tr("Custom ONNX model (overrides the bundled model)"),
            extension="onnx", optional=True))
        self.addParameter(QgsProcessingParameterEnum(
            "DEVICE", self.tr("Device"), options=DEVICES, defaultValue=DEVICES.index("auto")))
        self.addParameter(QgsProcessingParameterNumber(
            "TILE_SIZE", self.tr("Tile size in input cells (0 = automatic)"),
            type=QgsProcessingParameterNumber.Integer, defaultValue=0, minValue=0))
        self.addParameter(QgsProcessingParameterBoolean(
            "ENSEMBLE", self.tr("Self-ensemble over 8 rotations and flips (8× the work)"),
            False))
        self.addParameter(QgsProcessingParameterRasterDestination(
            "OUTPUT", self.tr("Super-resolved DEM")))
        self.addParameter(QgsProcessingParameterRasterDestination(
            "OUTPUT_SPREAD", self.tr("Ensemble spread (sd of the 8 results, m)"),
            optional=True, createByDefault=False))
        add_engine_parameter(self)
        self.addOutput(QgsProcessingOutputString(
            "DEVICE_USED", self.tr("onnxruntime execution provider used")))

    def canExecute(self):  # noqa: N802 (QGIS's name)
        ok, message = inference.onnxruntime_available()
        return (True, "") if ok else (False, message)

    def run_core(self, parameters, context, monitor):
        path, _ = self.input_dem(parameters, "INPUT", context, monitor)
        scale = self.parameterAsInt(parameters, "SCALE", context)
        model = self.model_options()[self.parameterAsEnum(parameters, "MODEL", context)]
        model_file = self.parameterAsFile(parameters, "MODEL_FILE", context) or None
        device = DEVICES[self.parameterAsEnum(parameters, "DEVICE", context)]
        tile = self.parameterAsInt(parameters, "TILE_SIZE", context)
        output = self.output_path(parameters, "OUTPUT", context)
        spread = self.parameterAsOutputLayer(parameters, "OUTPUT_SPREAD", context) or None
        engine = engine_of(self, parameters, context)
        if engine:
            job = run_chunked("superresolution", path, output, {
                "scale": scale, "model": None if model == NO_MODEL else model,
                "model_file": model_file, "device": device, "tile_size": tile,
                "ensemble": self.parameterAsBoolean(parameters, "ENSEMBLE", context)},
                engine, monitor, spread_output=spread)
            self._style(context, output, spread)
            return {"OUTPUT": output, "OUTPUT_SPREAD": spread,
                    "DEVICE_USED": ", ".join(job.stats["providers"])}
        result = inference.superresolve(
            path, output, scale, model=None if model == NO_MODEL else model,
            model_file=model_file, device=device, tile_size=tile, monitor=monitor,
            ensemble=self.parameterAsBoolean(parameters, "ENSEMBLE", context),
            spread_output=spread,
        )
        self._style(context, output, spread)
        return {"OUTPUT": output, "OUTPUT_SPREAD": spread, "DEVICE_USED": result.device_used}

    def _style(self, context, output: str, spread: str | None) -> None:
        self.style_on_load(context, output, DemStyler())
        if spread:
            self.style_on_load(context, spread, SpreadStyler())
