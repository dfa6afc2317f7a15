"""Numeric core of the DEM Super-Resolution Toolkit.

Usable without QGIS: numpy, scipy, GDAL and onnxruntime only. Pixel arrays are float with NaN
for nodata; georeferencing travels in :class:`core.grid.raster.RasterInfo`.
"""
