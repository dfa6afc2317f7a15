"""demsr:superresolution — DEM super-resolution with a residual CNN in ONNX (DESIGN.md §2, §3)."""
from qgis.core import (
    QgsProcessingOutputString,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ..core import inference
from ..core.models import bundled_families
from .base import DemAlgorithm
from .engine import add_engine_parameter, engine_of, run_chunked

SCALES = ["2", "3", "4"]
NO_MODEL = "(no bundled model installed)"


class SuperResolutionAlgorithm(DemAlgorithm):
    ALG_ID = "superresolution"
    DISPLAY_NAME = "DEM super-resolution (CNN)"
    GROUP = "upscaling"
    ICON = "superresolution.svg"
    HELP = (
        "Makes a DEM finer by 2, 3 or 4 with a residual convolutional network run by "
        "onnxruntime. The result is a float32 GeoTIFF with the input's origin and CRS, cells "
        "SCALE times smaller, and nodata wherever the input cell was nodata.<br>"
        "<b>MODEL</b>: a bundled network (models/ folder; each file carries its model card: "
        "architecture, scales, training data, validation scores). <b>MODEL_FILE</b>: your own "
        ".onnx with a demsr model card; overrides MODEL.<br>"
        "<b>DEVICE</b>: auto uses the GPU when onnxruntime-gpu and CUDA are available, else the "
        "CPU; cuda fails with the reason when the GPU cannot be used. The provider actually "
        "used is logged and returned as DEVICE_USED.<br>"
        "<b>TILE_SIZE</b>: input cells per tile side, 0 = chosen from free memory. The raster "
        "is processed tile by tile with an overlap wider than the network's receptive field, "
        "so the result does not depend on the tile size and memory stays bounded."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS's name)
        # Read once at load time: the families whose .onnx files carry a readable card.
        self.families, default = bundled_families()
        options = self.families or [NO_MODEL]
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", self.tr("Input DEM")))
        # Static strings: SCALE=2 means ×2 and MODEL=fastsr names the model in scripts and
        # qgis_process, whatever the order of the options.
        self.addParameter(QgsProcessingParameterEnum(
            "SCALE", self.tr("Scale factor"), options=SCALES, defaultValue="2",
            usesStaticStrings=True))
        self.addParameter(QgsProcessingParameterEnum(
            "MODEL", self.tr("Bundled model"), options=options,
            defaultValue=default or NO_MODEL, usesStaticStrings=True))
        self.addParameter(QgsProcessingParameterFile(
            "MODEL_FILE", self.tr("Custom ONNX model (overrides the bundled model)"),
            extension="onnx", optional=True))
        self.addParameter(QgsProcessingParameterEnum(
            "DEVICE", self.tr("Device"), options=list(inference.DEVICES), defaultValue="auto",
            usesStaticStrings=True))
        self.addParameter(QgsProcessingParameterNumber(
            "TILE_SIZE", self.tr("Tile size in input cells (0 = automatic)"),
            type=QgsProcessingParameterNumber.Integer, defaultValue=0, minValue=0))
        self.addParameter(QgsProcessingParameterRasterDestination(
            "OUTPUT", self.tr("Super-resolved DEM")))
        add_engine_parameter(self)
        self.addOutput(QgsProcessingOutputString(
            "DEVICE_USED", self.tr("onnxruntime execution provider used")))

    def canExecute(self):  # noqa: N802 (QGIS's name)
        ok, message = inference.onnxruntime_available()
        return (True, "") if ok else (False, message)

    def run_core(self, parameters, context, monitor):
        path, _ = self.input_dem(parameters, "INPUT", context, monitor)
        scale = int(self.parameterAsEnumString(parameters, "SCALE", context))
        model = self.parameterAsEnumString(parameters, "MODEL", context)
        model_file = self.parameterAsFile(parameters, "MODEL_FILE", context) or None
        device = self.parameterAsEnumString(parameters, "DEVICE", context)
        tile = self.parameterAsInt(parameters, "TILE_SIZE", context)
        output = self.output_path(parameters, "OUTPUT", context)
        engine = engine_of(self, parameters, context)
        if engine:
            job = run_chunked("superresolution", path, output, {
                "scale": scale, "model": None if model == NO_MODEL else model,
                "model_file": model_file, "device": device, "tile_size": tile}, engine, monitor)
            return {"OUTPUT": output, "DEVICE_USED": ", ".join(job.stats["providers"])}
        result = inference.superresolve(
            path, output, scale, model=None if model == NO_MODEL else model,
            model_file=model_file, device=device, tile_size=tile, monitor=monitor,
        )
        return {"OUTPUT": output, "DEVICE_USED": result.device_used}
