"""demsr:attraction — sub-pixel upscaling by the spatial attraction model."""
from qgis.core import (
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ..core import attraction as core_attraction
from .base import DemAlgorithm
from .engine import ENGINE_HELP, add_engine_parameter, engine_of, run_chunked
from .styling import DemStyler

NEIGHBOURHOODS = list(core_attraction.NEIGHBOURHOODS)
ASSIGNMENTS = list(core_attraction.ASSIGNMENTS)
ASSIGNMENT_LABELS = ["max attraction (the paper's rule)",
                     "attraction-weighted mean (with the centre cell)"]

# The mode that measured best in benchmarks/bench_attraction.py (results/attraction.md).
DEFAULT_NEIGHBOURHOOD = core_attraction.DEFAULT_NEIGHBOURHOOD
DEFAULT_ASSIGNMENT = core_attraction.DEFAULT_ASSIGNMENT
DEFAULT_PRESERVE_MEAN = core_attraction.DEFAULT_PRESERVE_MEAN


class AttractionAlgorithm(DemAlgorithm):
    ALG_ID = "attraction"
    DISPLAY_NAME = "Attraction-model upscaling"
    GROUP = "upscaling"
    ICON = "attraction.svg"
    SHORT = "Splits each cell into SCALE × SCALE sub-pixels valued by the neighbours' attraction."
    TAGS = ("attraction model", "sub-pixel", "upscaling", "downscaling", "resample", "srtm")
    HELP = (
        "Splits every cell into SCALE × SCALE sub-pixels that the neighbouring cells 'attract' "
        "(Mokarram and Hojati 2018, Landform classification using a sub-pixel spatial "
        "attraction model to increase spatial resolution of digital elevation model (DEM), "
        "Egyptian Journal of Remote Sensing and Space Sciences 21): neighbour k attracts a "
        "sub-pixel with A = z_k / d_k, d_k the distance from "
        "the sub-pixel centre to the neighbour's centre in cells (SCALE 2: 0.7906 to an edge "
        "neighbour, 1.0607 to a corner).\n\n"
        "NEIGHBOURHOOD: 0 = touching (neighbours whose square meets the sub-pixel's; inner "
        "sub-pixels keep the cell's value), 1 = quadrant (the 3 neighbours of the sub-pixel's "
        "quarter of the cell; 5 on an axis, 8 for the centre sub-pixel of an odd SCALE), "
        "2 = surrounding (all 8). For SCALE 2 touching and quadrant are the same.\n"
        "ASSIGNMENT: 0 = max attraction (the paper's rule: the sub-pixel takes the value of the "
        "neighbour with the highest attraction; ties go to the nearer neighbour) or 1 = the "
        "attraction-weighted mean Σ(z/d)/Σ(1/d) over the neighbourhood plus the cell itself "
        "(at its own distance from the sub-pixel).\n"
        "PRESERVE_MEAN: shift each block of sub-pixels so that it averages back to the input "
        "cell.\n"
        "Below sea level the max rule ranks (z − m)/d, m = min(0, lowest value of the 3 × 3 "
        "window), so that higher and nearer still attracts more; the weighted mean needs no "
        "such care. Nodata neighbours are ignored; nodata cells stay nodata.\n\n"
        "{ranking}\n\n"
        "Output: Float32 GeoTIFF on the input's origin with cells SCALE times smaller, the "
        "input's CRS and nodata value (NaN when it declares none); BigTIFF when it could pass "
        "4 GB."
    )
    HELP += ENGINE_HELP
    RANKING = (
        "Measured (input = block means of 5 real SRTM DEMs, scored against the DEMs themselves; "
        "RMSE in m at SCALE 2 / 3 / 4, lower is better): Lanczos 5.79 / 9.92 "
        "/ 14.25; bicubic 6.48 / 10.98 / 15.66; quadrant + weighted mean + preserve mean (the "
        "default) 6.97 / 11.45 / 16.74; bilinear 8.61 / 13.44 / 19.10; nearest 14.24 / 21.93 / "
        "28.65; the paper's max attraction (touching) 29.99 / 35.83 / 40.16, or 16.80 / 29.07 / "
        "34.65 with the mean preserved. The attraction model beats nearest and bilinear but not "
        "bicubic or Lanczos; the paper's own rule is worse than nearest (it always hands a "
        "sub-pixel a neighbour's value, never the cell's own)."
    )

    def help_text(self):
        return self.tr(self.HELP.replace("{ranking}", self.RANKING))

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS's name)
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", self.tr("DEM")))
        self.addParameter(QgsProcessingParameterNumber(
            "SCALE", self.tr("Scale factor (sub-pixels per cell side, integer ≥ 2)"),
            QgsProcessingParameterNumber.Integer, 2, minValue=2))
        self.addParameter(QgsProcessingParameterEnum(
            "NEIGHBOURHOOD", self.tr("Neighbourhood"), NEIGHBOURHOODS,
            defaultValue=NEIGHBOURHOODS.index(DEFAULT_NEIGHBOURHOOD)))
        self.addParameter(QgsProcessingParameterEnum(
            "ASSIGNMENT", self.tr("Assignment"), ASSIGNMENT_LABELS,
            defaultValue=ASSIGNMENTS.index(DEFAULT_ASSIGNMENT)))
        self.addParameter(QgsProcessingParameterBoolean(
            "PRESERVE_MEAN", self.tr("Preserve each cell's mean"), DEFAULT_PRESERVE_MEAN))
        self.addParameter(QgsProcessingParameterRasterDestination(
            "OUTPUT", self.tr("Upscaled DEM")))
        add_engine_parameter(self)

    def run_core(self, parameters, context, monitor):
        path, _ = self.input_dem(parameters, "INPUT", context, monitor)
        # Read as a double so that 2.5 is refused with a message instead of truncated to 2.
        scale = core_attraction.check_scale(self.parameterAsDouble(parameters, "SCALE", context))
        neighbourhood = NEIGHBOURHOODS[self.parameterAsEnum(parameters, "NEIGHBOURHOOD", context)]
        assignment = ASSIGNMENTS[self.parameterAsEnum(parameters, "ASSIGNMENT", context)]
        preserve = self.parameterAsBoolean(parameters, "PRESERVE_MEAN", context)
        output = self.output_path(parameters, "OUTPUT", context)
        engine = engine_of(self, parameters, context)
        if engine:
            run_chunked("attraction", path, output, {
                "scale": scale, "neighbourhood": neighbourhood, "assignment": assignment,
                "preserve_mean": preserve}, engine, monitor)
        else:
            core_attraction.upscale_file(
                path, output, scale, neighbourhood, assignment, preserve, monitor=monitor)
        self.style_on_load(context, output, DemStyler())
        return {"OUTPUT": output}
