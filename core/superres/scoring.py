"""The evaluation protocol of docs/DESIGN.md §7: degrade a real DEM, upscale it back, score it.

Shared by the super-resolution and attraction-model benchmarks so that every method, the
classical baselines included, is scored by the same code on the same cells.
"""
from __future__ import annotations

import math

import numpy as np

from ..terrain.slope import slope_degrees

BASELINES = ("nearest", "bilinear", "bicubic", "lanczos")
_GDAL_RESAMPLING = {
    "nearest": "near",
    "bilinear": "bilinear",
    "bicubic": "cubic",
    "lanczos": "lanczos",
}
CHECKPOINTS = 487  # Mokarram and Hojati's (2018) number of survey points


def block_mean(z: np.ndarray, scale: int) -> np.ndarray:
    """Area mean of scale × scale blocks over the last two axes (what a coarser sensor records).

    Those axes are cropped to a multiple of `scale`; a block with any NaN cell is NaN. Leading
    axes (a batch of patches) are kept.
    """
    *lead, h, w = z.shape
    h, w = h // scale * scale, w // scale * scale
    blocks = z[..., :h, :w].reshape(*lead, h // scale, scale, w // scale, scale)
    return blocks.mean(axis=(-3, -1))


def upsample_baseline(coarse: np.ndarray, scale: int, method: str) -> np.ndarray:
    """Upscale by `scale` with GDAL's resampling (cell-centre aligned grids, NaN = nodata)."""
    if method not in _GDAL_RESAMPLING:
        raise ValueError(f"unknown baseline {method!r}; choose from {BASELINES}")
    # GDAL only here: block_mean and the scores serve training where GDAL is not installed.
    from osgeo import gdal

    gdal.UseExceptions()
    h, w = coarse.shape
    src = gdal.GetDriverByName("MEM").Create("", w, h, 1, gdal.GDT_Float64)
    src.SetGeoTransform((0.0, 1.0, 0.0, 0.0, 0.0, -1.0))
    band = src.GetRasterBand(1)
    band.SetNoDataValue(float("nan"))
    band.WriteArray(coarse.astype(np.float64))
    out = gdal.Warp(
        "", src, format="MEM", width=w * scale, height=h * scale,
        outputBounds=(0.0, -float(h), float(w), 0.0),
        resampleAlg=_GDAL_RESAMPLING[method], srcNodata=float("nan"), dstNodata=float("nan"),
        outputType=gdal.GDT_Float64,
    )
    return out.GetRasterBand(1).ReadAsArray()


def score(
    pred: np.ndarray,
    truth: np.ndarray,
    scale: int,
    cell_size_m: tuple[float, float],
    rng_seed: int = 0,
    checkpoints: int = CHECKPOINTS,
) -> dict[str, float]:
    """RMSE, MAE, PSNR, slope RMSE and checkpoint RMSE of `pred` against `truth`.

    A border of 2·scale cells is left out; only cells valid in both count. PSNR uses
    peak = max − min of the scored truth (Jiao et al. 2020). `cell_size_m` is (dx, dy) of the
    truth grid.
    """
    if pred.shape != truth.shape:
        raise ValueError(f"prediction {pred.shape} and truth {truth.shape} differ in shape")
    b = 2 * scale
    inner = (slice(b, -b), slice(b, -b))
    dx, dy = cell_size_m
    p = pred.astype(np.float64)
    t = truth.astype(np.float64)
    slope_error = (slope_degrees(p, dx, dy) - slope_degrees(t, dx, dy))[inner]
    err = (p - t)[inner]
    valid = np.isfinite(err) & np.isfinite(slope_error)
    if not valid.any():
        raise ValueError("no cell is valid in both rasters")
    e = err[valid]
    truth_valid = t[inner][valid]
    rmse = float(np.sqrt(np.mean(e**2)))
    peak = float(truth_valid.max() - truth_valid.min())
    rng = np.random.default_rng(rng_seed)
    picks = rng.choice(e.size, size=min(checkpoints, e.size), replace=False)
    return {
        "rmse": rmse,
        "mae": float(np.mean(np.abs(e))),
        "psnr": 20 * math.log10(peak / rmse) if rmse > 0 else math.inf,
        "slope_rmse_deg": float(np.sqrt(np.mean(slope_error[valid] ** 2))),
        "checkpoint_rmse": float(np.sqrt(np.mean(e[picks] ** 2))),
        "cells": int(e.size),
    }
