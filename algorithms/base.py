"""What every demsr algorithm shares: feedback adapter, error translation, input checks.

Algorithms stay thin: read parameters, call `core`, hand back layers. Errors the core raises
for bad input (DemError) reach the user as a QgsProcessingException with the same message.
"""
import configparser
import contextlib
import html
import os

from osgeo import ogr
from qgis.core import (
    QgsApplication,
    QgsCoordinateReferenceSystem,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterRasterDestination,
    QgsVectorFileWriter,
)
from qgis.PyQt import sip
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from ..core.errors import Cancelled, DemError
from ..core.grid import destinations, safety
from ..core.grid.files import remove_raster
from ..core.grid.progress import Monitor
from ..core.grid.raster import RasterInfo, read_info, warn_undeclared_nodata
from . import declared

PLUGIN_DIR = os.path.dirname(os.path.dirname(__file__))
ICONS = os.path.join(PLUGIN_DIR, "icons")
STYLES = os.path.join(PLUGIN_DIR, "styles")


def _homepage() -> str:
    # One place for the project's address: metadata.txt, which the plugin repository reads too.
    meta = configparser.ConfigParser()
    meta.read(os.path.join(PLUGIN_DIR, "metadata.txt"), encoding="utf-8")
    return meta.get("general", "homepage", fallback="").rstrip("/")


HOMEPAGE = _homepage()

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
    SPEC = None  # the algorithm's declaration (core/declarations/): parameters, help, checks
    DISPLAY_NAME = ""
    GROUP = "terrain"
    SHORT = ""  # one line for the toolbox tooltip
    HELP = ""  # plain text; a newline starts a paragraph in the help panel and the terminal
    TAGS = ()
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

    def help_text(self) -> str:
        """The help as written, plain text (an algorithm that fills values into HELP overrides
        this; shortHelpString makes it fit where QGIS shows it)."""
        return self.tr(self.HELP)

    def shortHelpString(self):  # noqa: N802 (QGIS's name)
        return help_for_platform(self.help_text(), QgsApplication.platform())

    def shortDescription(self):  # noqa: N802 (QGIS's name)
        return self.tr(self.SHORT)

    def tags(self):
        return [self.tr(t) for t in ("dem", "elevation", *self.TAGS)]

    def helpUrl(self):  # noqa: N802 (QGIS's name)
        # docs/algorithms.md has one "## demsr:<id>" section per algorithm.
        return f"{HOMEPAGE}/blob/main/docs/algorithms.md#demsr{self.ALG_ID}" if HOMEPAGE else ""

    def icon(self):
        return QIcon(self.svgIconPath())

    def svgIconPath(self):  # noqa: N802 (QGIS's name)
        path = os.path.join(ICONS, self.ICON)
        return path if os.path.exists(path) else os.path.join(ICONS, "demsr.svg")

    def createInstance(self):  # noqa: N802 (QGIS's name)
        return type(self)()

    def checkParameterValues(self, parameters, context):  # noqa: N802 (QGIS's name)
        # QGIS answers a wrong value with a bare "Incorrect parameter value for X": the
        # declaration's own checks come first and name the parameter and its allowed values,
        # in the words the command line (core.batch) uses too.
        if self.SPEC is not None:
            refusal = declared.check(self.SPEC, parameters)
            if refusal:
                return False, refusal
        return super().checkParameterValues(parameters, context)

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS's name)
        monitor = FeedbackMonitor(feedback)
        try:
            self.check_inputs_apart(parameters, context)
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

    def input_dem(self, parameters, name, context, monitor: Monitor,
                  no_crs_note: str = "") -> tuple[str, RasterInfo]:
        """Path and georeferencing of a raster parameter, with the checks every DEM gets.

        `no_crs_note` says what a missing CRS means for this algorithm's distances."""
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
                f"either.{' ' + no_crs_note if no_crs_note else ''}"
            )
        warn_undeclared_nodata(path, name, monitor)
        return path, info

    def style_on_load(self, context, output: str, styler) -> None:
        """Have `styler` style the output layer when QGIS loads it (desktop runs only)."""
        if context.willLoadLayerOnCompletion(output):
            keep_until_used(styler)
            context.layerToLoadOnCompletionDetails(output).setPostProcessor(styler)

    def _destination(self, parameters, name, context) -> tuple[str, str]:
        """(file, layer) a destination parameter names: "out.gpkg" → (out.gpkg, ""),
        "ogr:dbname='db.gpkg' table=\"t\" (geom)" and "db.gpkg|layername=t" → (db.gpkg, t);
        ("", "") for memory layers, other providers and unset optional outputs."""
        if not parameters.get(name):
            return "", ""
        dest = self.parameterAsOutputLayer(parameters, name, _scratch(context)) or ""
        return safety.split_source(dest)

    def new_file_destination(self, parameters, name, context) -> str:
        """The file a destination parameter will create, when it is a file that does not exist
        yet (so this run may delete it on failure); "" for memory layers, existing files and
        unset optional outputs."""
        path, _ = self._destination(parameters, name, context)
        return path if path and not os.path.exists(path) else ""

    def new_layer_destination(self, parameters, name, context) -> tuple[str, str] | None:
        """(file, layer) when a destination adds a layer that does not exist yet to a dataset
        that does (a GeoPackage of other layers), so that a failed run can drop that layer and
        leave the rest of the file alone; None otherwise."""
        path, layer = self._destination(parameters, name, context)
        if not layer or not os.path.isfile(path):
            return None
        ds = ogr.Open(path)
        if ds is None or ds.GetLayerByName(layer) is not None:
            return None
        return path, layer

    def discard_outputs(self, rasters=(), files=(), layers=()) -> None:
        """Remove what a failed run wrote: rasters it created, files from
        new_file_destination (a shapefile with its side files) and layers from
        new_layer_destination."""
        for path, layer in layers:
            ds = ogr.Open(path, 1)
            if ds is not None and ds.GetLayerByName(layer) is not None:
                ds.DeleteLayer(layer)  # by name: osgeo looks the index up
            ds = None
        for path in rasters:
            # What output_path resolved before the run: a table added to an existing
            # GeoPackage is dropped, never the file with the user's other tables.
            dest = getattr(self, "_raster_destinations", {}).get(path)
            if dest is not None:
                destinations.discard(dest)
            else:
                remove_raster(path)
        for path in files:
            if not path or not os.path.exists(path):
                continue
            if path.lower().endswith(".shp"):
                QgsVectorFileWriter.deleteShapeFile(path)
            else:
                os.remove(path)

    def output_path(self, parameters, name, context) -> str:
        """The file a raster destination writes, in the format its extension names."""
        path = self.raster_output(parameters, name, context)
        if not path:
            raise QgsProcessingException(f"No output path was given for {name}.")
        return path

    def raster_output(self, parameters, name, context) -> str | None:
        """A raster destination's file (core.grid.destinations.resolve: `.tif` added to a name
        without extension, an unwritable format refused); None when an optional one is unset."""
        path = self.parameterAsOutputLayer(parameters, name, context)
        if not path:
            return None
        dest = destinations.resolve(path, name)
        # Remembered for discard_outputs: whether this run adds a table or makes the file.
        self._raster_destinations = {**getattr(self, "_raster_destinations", {}),
                                     dest.path: dest}
        if dest.path != path and context.willLoadLayerOnCompletion(path):
            # QGIS loads what it was told: tell it the file's real name instead.
            layers = context.layersToLoadOnCompletion()
            layers[dest.path] = layers.pop(path)
            context.setLayersToLoadOnCompletion(layers)
        return dest.path

    def check_inputs_apart(self, parameters, context) -> None:
        """No output may be an input of the run (however spelled) or another output
        (core.grid.safety); checked before any work."""
        inputs, outputs = [], []
        for definition in self.parameterDefinitions():
            name = definition.name()
            if parameters.get(name) in (None, ""):
                continue
            if isinstance(definition, QgsProcessingParameterRasterDestination):
                path = self.parameterAsOutputLayer(parameters, name, _scratch(context))
                if path:
                    dest = destinations.resolve(path, name)
                    outputs.append((name, dest.path, dest.table))
            elif isinstance(definition, QgsProcessingParameterFileDestination):
                outputs.append((name, self.parameterAsFileOutput(parameters, name, context), ""))
            elif definition.isDestination():
                path, layer = self._destination(parameters, name, context)
                outputs.append((name, path, layer))
            else:
                inputs += [(name, source) for source in self._sources(definition, parameters,
                                                                       context)]
        safety.check_apart(inputs, [o for o in outputs if o[1]])

    def _sources(self, definition, parameters, context) -> list[str]:
        """The data source strings an input parameter names (files, layers, layer lists)."""
        kind = definition.type()
        name = definition.name()
        if kind == "raster":
            layers = [self.parameterAsRasterLayer(parameters, name, context)]
        elif kind in ("source", "vector"):
            layers = [self.parameterAsVectorLayer(parameters, name, context)]
        elif kind == "multilayer":
            layers = self.parameterAsLayerList(parameters, name, context)
        elif kind == "file":
            return [self.parameterAsFile(parameters, name, context) or ""]
        else:
            return []
        return [layer.source() for layer in layers if layer is not None]


def _scratch(context):
    """A throw-away copy of `context` for asking what a destination names.

    parameterAsOutputLayer registers the destination as a layer to load when the run ends, and
    for a temporary output it makes a new file name at every call: asked twice in the run's own
    context, the desktop would wait for a layer nobody writes ("The following layers were not
    correctly generated"), or for a phantom second entry of a sink ("memory:Area per class")."""
    scratch = QgsProcessingContext()
    scratch.copyThreadSafeSettings(context)
    return scratch




def help_for_platform(text: str, platform: str) -> str:
    """The help text as QGIS shows it on `platform`.

    The algorithm dialog, the modeler and the batch dialog render the help as HTML (one <p>
    per line of text), where a bare "<" opens a tag and hides what follows ("5 plains
    (−1 < SN, LN < 1)" lost everything up to the next ">"): escape &, < and > so every word
    survives, and keep the newlines, which those dialogs turn into paragraphs. qgis_process
    prints the help raw to a terminal, where an entity would show as "&lt;": plain text there.
    """
    return text if platform == "qgis_process" else html.escape(text, quote=False)


# Post-processors run after the algorithm object that made them is gone; a Python reference
# keeps each alive until it has styled its layer, and no longer.
_PENDING_STYLERS = set()


def keep_until_used(styler) -> None:
    _PENDING_STYLERS.add(styler)


def used(styler) -> None:
    _PENDING_STYLERS.discard(styler)


class OutputFiles:
    """The outputs one run creates, for all-or-nothing results: create every output before
    the work starts (`sink`, `file`), write them inside `all_or_nothing()`, and a failed or
    cancelled run removes every file it created.

    The sinks are held here and deleted at the end, because QGIS finishes a file sink only when
    the sink object is deleted."""

    def __init__(self, alg: DemAlgorithm, parameters, context):
        self._alg, self._parameters, self._context = alg, parameters, context
        self._sinks = []
        self._paths = []
        self._layers = []
        self._rasters = []

    def sink(self, name: str, what: str, fields, wkb_type,
             crs=None) -> tuple:
        """(sink, destination) of a feature sink parameter; (None, None) when not asked for.
        `what` names the output in messages."""
        new_file = self._alg.new_file_destination(self._parameters, name, self._context)
        new_layer = self._alg.new_layer_destination(self._parameters, name, self._context)
        try:
            sink, dest = self._alg.parameterAsSink(
                self._parameters, name, self._context, fields, wkb_type,
                crs or QgsCoordinateReferenceSystem())
        except QgsProcessingException as err:
            raise QgsProcessingException(f"Cannot create {what} ({name}): {err}") from err
        if sink is None:
            return None, None
        self._sinks.append(sink)
        # Both asked before the sink exists (some drivers, CSV, write only on closing): a file
        # this run creates goes on failure, a layer it adds to an existing dataset goes alone.
        if new_file:
            self._paths.append(new_file)
        if new_layer:
            self._layers.append(new_layer)
        return sink, dest

    def file(self, path: str) -> str:
        """Register a file this run is going to write: removed again if the run fails, unless
        it existed before (this run did not create it)."""
        if not os.path.exists(path):
            self._paths.append(path)
        return path

    def raster(self, path: str) -> str:
        """Register a raster this run has written: removed again if a later step fails."""
        self._rasters.append(path)
        return path

    @contextlib.contextmanager
    def all_or_nothing(self):
        try:
            yield self
        except BaseException:
            self.close()
            self._alg.discard_outputs(rasters=self._rasters, files=self._paths,
                                      layers=self._layers)
            raise
        self.close()

    def close(self) -> None:
        """Finish every sink now (references to them may still be held by a traceback)."""
        for sink in self._sinks:
            sip.delete(sink)
        self._sinks.clear()
