"""The `demsr` Processing provider: every algorithm of docs/DESIGN.md §2 registers here."""
import os

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

ICON = os.path.join(os.path.dirname(os.path.dirname(__file__)), "icons", "demsr.svg")


def _algorithm_classes():
    # Imported when the provider loads its algorithms, not when the plugin is imported. Optional
    # dependencies (onnxruntime) are imported lazily inside core, so a missing one shows up as
    # that algorithm's canExecute() reason, never as a provider that fails to load.
    from .attraction import AttractionAlgorithm
    from .landforms import LandformsAlgorithm
    from .superresolution import SuperResolutionAlgorithm
    from .surveyrmse import SurveyRmseAlgorithm
    from .tpi import TpiAlgorithm

    return [SuperResolutionAlgorithm, AttractionAlgorithm, TpiAlgorithm, LandformsAlgorithm,
            SurveyRmseAlgorithm]


class DemSrProvider(QgsProcessingProvider):
    def id(self):
        return "demsr"

    def name(self):
        return "DEM Super-Resolution Toolkit"

    def longName(self):  # noqa: N802 (QGIS's name)
        return self.name()

    def icon(self):
        return QIcon(ICON)

    def svgIconPath(self):  # noqa: N802 (QGIS's name)
        return ICON

    def supportedOutputRasterLayerExtensions(self):  # noqa: N802 (QGIS's name)
        # What core.grid.destinations writes (GeoTIFF first: QGIS's default), so the dialog offers
        # it.
        from ..core.grid.destinations import supported_extensions

        return supported_extensions()

    def loadAlgorithms(self):  # noqa: N802 (QGIS's name)
        for cls in _algorithm_classes():
            self.addAlgorithm(cls())
