"""Raster grids: blocked I/O written all or nothing, progress, kernels."""
