"""Side-by-side preview of a DEM and its super-resolved version, with hillshades.

    python scripts/preview.py INPUT OUTPUT PNG [--crop FRACTION]

Top row: elevation on one colour ramp with the same limits for both; bottom row: hillshade (sun
from the north-west, 45°) computed with each grid's own ground cell size, so the finer relief
the network adds shows up. Titles give the cell sizes. matplotlib is Debian's (system packages).
"""
from __future__ import annotations

import argparse
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from core.grid.raster import ground_pixel_size_m, read_array  # noqa: E402


def hillshade(z: np.ndarray, dx: float, dy: float, azimuth=315.0, altitude=45.0) -> np.ndarray:
    gy, gx = np.gradient(z, dy, dx)
    slope = np.arctan(np.hypot(gx, gy))
    aspect = np.arctan2(-gx, gy)
    az, alt = np.radians(360.0 - azimuth + 90.0), np.radians(altitude)
    shade = np.sin(alt) * np.cos(slope) + np.cos(alt) * np.sin(slope) * np.cos(az - aspect)
    return np.clip(shade, 0, 1)


def centre_crop(z: np.ndarray, fraction: float) -> np.ndarray:
    if fraction >= 1:
        return z
    h, w = z.shape
    ch, cw = max(int(h * fraction), 1), max(int(w * fraction), 1)
    r, c = (h - ch) // 2, (w - cw) // 2
    return z[r : r + ch, c : c + cw]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("png")
    parser.add_argument("--crop", type=float, default=1.0,
                        help="show only this central fraction of each side (zoom in)")
    args = parser.parse_args(argv)
    panels = []
    for label, path in (("input", args.input), ("super-resolved", args.output)):
        z, info = read_array(path)
        dx, dy = ground_pixel_size_m(info)
        z = centre_crop(z.astype(np.float64), args.crop)
        panels.append((f"{label}: {os.path.basename(path)}", z, dx, dy, info))
    vmin = min(np.nanpercentile(p[1], 1) for p in panels)
    vmax = max(np.nanpercentile(p[1], 99) for p in panels)
    fig, axes = plt.subplots(2, 2, figsize=(12, 11), constrained_layout=True)
    for col, (title, z, dx, dy, info) in enumerate(panels):
        cell = f"{dx:.1f} × {dy:.1f} m cells, {info.width} × {info.height}"
        im = axes[0, col].imshow(z, cmap="terrain", vmin=vmin, vmax=vmax,
                                 interpolation="nearest")
        axes[0, col].set_title(f"{title}\n{cell}", fontsize=10)
        filled = np.where(np.isnan(z), np.nanmean(z), z)
        shade = np.ma.masked_array(hillshade(filled, dx, dy), np.isnan(z))
        axes[1, col].imshow(shade, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axes[1, col].set_title(f"hillshade, {dx:.1f} m cells", fontsize=10)
        for ax in axes[:, col]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.colorbar(im, ax=axes[0, :], shrink=0.8, label="elevation (m)")
    fig.savefig(args.png, dpi=110)
    print(f"preview written to {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
