"""Plugin shell: registers the Processing provider once and removes it on unload."""
from qgis.core import QgsApplication

from .algorithms.provider import DemSrProvider


class DemSrPlugin:
    # Processing only: no menus, toolbars or canvas, so the plugin keeps no QgisInterface.
    def __init__(self):
        self.provider = None

    def initProcessing(self):  # noqa: N802 (QGIS's name)
        # qgis_process calls initProcessing without initGui; the desktop calls both.
        if self.provider is None:
            self.provider = DemSrProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802 (QGIS's name)
        self.initProcessing()

    def unload(self):
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
