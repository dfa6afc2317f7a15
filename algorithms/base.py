"""What every demsr algorithm shares: feedback adapter, error translation, input checks.

Algorithms stay thin: read parameters, call `core`, hand back layers. Errors the core raises
for bad input (DemError) reach the user as a QgsProcessingException with the same message.
"""
import os

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingFeedback,
)
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from ..core.errors import Cancelled, DemError
from ..core.progress import Monitor
from ..core.raster import RasterInfo, read_info

ICONS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "icons")
STYLES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "styles")

GROUPS = {
    "upscaling": "Upscaling",
    "terrain": "Terrain analysis",
    "accuracy": "Accuracy",
}


class FeedbackMonitor(Monitor):
    """The core's Monitor speaking to a QgsProcessingFeedback."""

    def __init__(self, feedback: QgsProcessingFeedback):
        self.feedback = feedback or QgsProcessingFeedback()

    def report(self, fraction: float) -> None:
        self.feedback.setProgress(100.0 * fraction)

    def cancelled(self) -> bool:
        return self.feedback.isCanceled()

    def info(self, message: str) -> None:
        self.feedback.pushInfo(message)

    def warn(self, message: str) -> None:
        self.feedback.pushWarning(message)


class DemAlgorithm(QgsProcessingAlgorithm):
    """Base class: subclasses set ALG_ID, DISPLAY_NAME, GROUP, HELP, ICON and define
    initAlgorithm and run_core(parameters, context, monitor) -> dict.

    (Not `run`: that is QgsProcessingAlgorithm's own entry point, which processing.run calls.)"""

    ALG_ID = ""
    DISPLAY_NAME = ""
    GROUP = "terrain"
    HELP = ""
    ICON = "demsr.svg"

    def tr(self, text):
        return QCoreApplication.translate("demsr", text)

    def name(self):
        return self.ALG_ID

    def displayName(self):  # noqa: N802 (QGIS's name)
        return self.tr(self.DISPLAY_NAME)

    def group(self):
        return self.tr(GROUPS[self.GROUP])

    def groupId(self):  # noqa: N802 (QGIS's name)
        return self.GROUP

    def shortHelpString(self):  # noqa: N802 (QGIS's name)
        return self.tr(self.HELP)

    def icon(self):
        return QIcon(self.svgIconPath())

    def svgIconPath(self):  # noqa: N802 (QGIS's name)
        path = os.path.join(ICONS, self.ICON)
        return path if os.path.exists(path) else os.path.join(ICONS, "demsr.svg")

    def createInstance(self):  # noqa: N802 (QGIS's name)
        return type(self)()

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS's name)
        monitor = FeedbackMonitor(feedback)
        try:
            return self.run_core(parameters, context, monitor)
        except DemError as err:
            raise QgsProcessingException(str(err)) from err
        except Cancelled as err:
            raise QgsProcessingException(
                "Cancelled by the user; no output was written."
            ) from err

    def run_core(self, parameters, context, monitor: Monitor) -> dict:
        raise NotImplementedError

    # Helpers for subclasses -------------------------------------------------------------

    def input_dem(self, parameters, name, context, monitor: Monitor) -> tuple[str, RasterInfo]:
        """Path and georeferencing of a raster parameter, with the checks every DEM gets."""
        layer = self.parameterAsRasterLayer(parameters, name, context)
        if layer is None or not layer.isValid():
            raise QgsProcessingException(f"Could not load the raster given as {name}.")
        path = layer.dataProvider().dataSourceUri()
        info = read_info(path)
        if info.band_count > 1:
            monitor.info(f"{layer.name()} has {info.band_count} bands; band 1 is used.")
        if not info.has_crs:
            monitor.warn(
                f"{layer.name()} has no coordinate reference system: the output carries none "
                "either, and distances are taken in cell units."
            )
        return path, info

    def output_path(self, parameters, name, context) -> str:
        path = self.parameterAsOutputLayer(parameters, name, context)
        if not path:
            raise QgsProcessingException(f"No output path was given for {name}.")
        return path
