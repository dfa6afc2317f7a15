"""QGIS plugin entry point: QGIS calls classFactory when it loads the plugin folder `demsr`."""


def classFactory(iface):  # noqa: N802 (QGIS's name)
    from .plugin import DemSrPlugin

    return DemSrPlugin()
