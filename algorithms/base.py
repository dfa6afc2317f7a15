"""What every demsr algorithm shares: feedback adapter, error translation, input checks.

Algorithms stay thin: read parameters, call `core`, hand back layers. Errors the core raises
for bad input (DemError) reach the user as a QgsProcessingException with the same message.
"""
import contextlib
import os

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingFeedback,
)
from qgis.PyQt import sip
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


# Files that a shapefile or a GeoPackage may have beside its main file.
_SIDE_CARS = (".shx", ".dbf", ".prj", ".cpg", ".qix", ".qpj", ".sbn", ".sbx")
_SUFFIXES = ("-wal", "-shm", "-journal", ".aux.xml")


class OutputFiles:
    """The outputs one run creates, for all-or-nothing results: create every output before
    the work starts (`sink`, `file`), write them inside `all_or_nothing()`, and a failed or
    cancelled run removes every file it created.

    The sinks are held here and deleted at the end, because QGIS finishes a file sink only when
    the sink object is deleted."""

    def __init__(self, alg: QgsProcessingAlgorithm, parameters, context):
        self._alg, self._parameters, self._context = alg, parameters, context
        self._sinks = []
        self._paths = []

    def sink(self, name: str, what: str, fields, wkb_type,
             crs=None) -> tuple:
        """(sink, destination) of a feature sink parameter; (None, None) when not asked for.
        `what` names the output in messages."""
        try:
            sink, dest = self._alg.parameterAsSink(
                self._parameters, name, self._context, fields, wkb_type,
                crs or QgsCoordinateReferenceSystem())
        except QgsProcessingException as err:
            raise QgsProcessingException(f"Cannot create {what} ({name}): {err}") from err
        if sink is None:
            return None, None
        self._sinks.append(sink)
        # a file of its own (some drivers, CSV, create it only when the sink closes); not a
        # memory layer, nor a layer added to a GeoPackage the user named ("path|layername=…"),
        # which may hold other layers
        temporary = self._context.temporaryLayerStore().mapLayer(dest) is not None
        if not temporary and "|" not in dest and os.path.isdir(os.path.dirname(dest) or "."):
            self._paths.append(dest)
        return sink, dest

    def file(self, path: str) -> str:
        """Register a file this run is going to write (removed again if the run fails)."""
        self._paths.append(path)
        return path

    @contextlib.contextmanager
    def all_or_nothing(self):
        try:
            yield self
        except BaseException:
            self.close()
            for path in self._paths:
                _remove_dataset(path)
            raise
        self.close()

    def close(self) -> None:
        """Finish every sink now (references to them may still be held by a traceback)."""
        for sink in self._sinks:
            sip.delete(sink)
        self._sinks.clear()


def _remove_dataset(path: str) -> None:
    stem, ext = os.path.splitext(path)
    candidates = [path] + [path + s for s in _SUFFIXES]
    if ext.lower() == ".shp":
        candidates += [stem + e for e in _SIDE_CARS]
    for candidate in candidates:
        with contextlib.suppress(FileNotFoundError):
            os.remove(candidate)
