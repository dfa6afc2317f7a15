"""Measure how the bicubic residual scales with the coarse cell size, to choose the card's D.

    python -m training.normstats

For every training file and scale it prints the RMS of (truth - bicubic(block mean)) in metres
and the coarse cell size, then fits RMS = a * cell^p in log-log. p near 1 means dividing by the
cell size makes the target the same size on 30 m and 90 m grids and at every scale.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from training.dataset import PatchSampler, load_dem, split_files
from training.networks import BicubicUpsample


def residual_rms(sampler: PatchSampler, scale: int, n: int) -> tuple[float, float]:
    """RMS bicubic residual (m) and the mean coarse cell (m) over n random patches."""
    # Un-normalised patches: D = 1 m and offset removal does not change a residual.
    rms, cells = [], []
    up = BicubicUpsample(scale)
    for _ in range(n):
        fine, cell = sampler.fine_patch()
        coarse = fine.reshape(fine.shape[0] // scale, scale, -1, scale).mean(axis=(1, 3))
        with torch.no_grad():
            pred = up(torch.from_numpy(coarse.astype(np.float32))[None, None])[0, 0].numpy()
        b = 2 * scale
        rms.append(np.mean((pred - fine)[b:-b, b:-b] ** 2))
        cells.append(cell * scale)
    return float(np.sqrt(np.mean(rms))), float(np.mean(cells))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patches", type=int, default=60)
    args = parser.parse_args(argv)
    train, _ = split_files()
    rows = []
    print("# Bicubic residual vs coarse cell size (`python -m training.normstats`)\n")
    print("| file | scale | coarse cell m | bicubic residual RMS m | RMS / cell |")
    print("| --- | --- | --- | --- | --- |")
    for path in train:
        dem = load_dem(path)
        try:
            sampler = PatchSampler([dem], 96, seed=0, augment_data=False)
        except ValueError:
            continue
        for scale in (2, 3, 4):
            rms, cell = residual_rms(sampler, scale, args.patches)
            rows.append((cell, rms))
            print(f"| {dem.name} | {scale} | {cell:.0f} | {rms:.2f} | {rms / cell:.4f} |")
    cells, rmss = np.log(np.array(rows)).T
    p, log_a = np.polyfit(cells, rmss, 1)
    ratio = np.array([r / c for c, r in rows])
    print(f"fit: RMS = {np.exp(log_a):.4f} * cell^{p:.2f}; "
          f"RMS/cell median {np.median(ratio):.4f}, spread (IQR/median) "
          f"{np.subtract(*np.percentile(ratio, [75, 25])) / np.median(ratio):.2f}")
    rms_m = np.exp(rmss)
    print(f"RMS in metres: median {np.median(rms_m):.2f}, spread (IQR/median) "
          f"{np.subtract(*np.percentile(rms_m, [75, 25])) / np.median(rms_m):.2f}")


if __name__ == "__main__":
    main()
