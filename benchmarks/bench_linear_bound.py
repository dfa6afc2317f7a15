"""How far can a *linear* upsampler go? The least-squares optimal linear filter as a yardstick.

Every classical interpolator (bicubic, Lanczos) is a fixed linear filter built for point samples.
The best linear filter for *block-mean* degradation on real terrain is learnt here by least
squares: for each of the S² sub-cell phases, the fine elevation minus its coarse parent is
regressed on the differences between the (2r+1)² coarse neighbours and the parent (offset-free,
like the networks). It is fitted on the training files and scored on the held-out ones with the
docs/DESIGN.md §7 protocol (``core.superres.scoring.score``), beside Lanczos and the shipped default
network.

What the networks gain over this filter is what non-linearity (ridges, channels, breaks of
slope) buys; what the filter gains over Lanczos is only the right degradation model. Together
they show how much of the error is left to learn.

    .venv/bin/python benchmarks/bench_linear_bound.py [--radius 4] [--samples 400000]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.superres.scoring import block_mean, score, upsample_baseline  # noqa: E402
from training.dataset import DATA_DIR, VALIDATION_FILES, Dem, load_dem, split_files  # noqa: E402
from training.evaluate import load_models  # noqa: E402

SCALES = (2, 3, 4)
RESULTS = ROOT / "benchmarks" / "results"


def neighbour_differences(coarse: np.ndarray, radius: int) -> np.ndarray:
    """(H, W, K) differences coarse[i+di, j+dj] − coarse[i, j] over the window, centre left
    out; NaN where the window leaves the grid or touches nodata."""
    h, w = coarse.shape
    padded = np.pad(coarse, radius, constant_values=np.nan)
    offsets = [(di, dj) for di in range(-radius, radius + 1) for dj in range(-radius, radius + 1)
               if (di, dj) != (0, 0)]
    out = np.empty((h, w, len(offsets)), dtype=np.float64)
    for k, (di, dj) in enumerate(offsets):
        out[:, :, k] = padded[radius + di:radius + di + h, radius + dj:radius + dj + w] - coarse
    return out


def phase_targets(fine: np.ndarray, coarse: np.ndarray, scale: int) -> np.ndarray:
    """(H, W, S²) fine elevation of each sub-cell minus its coarse parent."""
    h, w = coarse.shape
    blocks = fine[:h * scale, :w * scale].reshape(h, scale, w, scale).transpose(0, 2, 1, 3)
    return blocks.reshape(h, w, scale * scale) - coarse[:, :, None]


def fit(dems: list[Dem], scale: int, radius: int, samples: int, seed: int = 0) -> np.ndarray:
    """Least-squares weights (K, S²), an equal number of samples from each DEM.

    Rows are weighted by 1 / cell size², so that the 30 m and 90 m files count alike in
    normalised units (the networks' normalisation divides by the cell size too).
    """
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    per_file = samples // len(dems)
    for dem in dems:
        z = dem.z.astype(np.float64)
        coarse = block_mean(z, scale)
        x = neighbour_differences(coarse, radius).reshape(-1, (2 * radius + 1) ** 2 - 1)
        y = phase_targets(z, coarse, scale).reshape(-1, scale * scale)
        ok = np.flatnonzero(np.isfinite(x).all(1) & np.isfinite(y).all(1))
        pick = rng.choice(ok, size=min(per_file, ok.size), replace=False)
        unit = dem.cell_m * scale
        xs.append(x[pick] / unit)
        ys.append(y[pick] / unit)
    weights, *_ = np.linalg.lstsq(np.concatenate(xs), np.concatenate(ys), rcond=None)
    return weights


def upsample_linear(coarse: np.ndarray, weights: np.ndarray, scale: int, radius: int):
    """Apply the fitted filter; NaN where the window is not complete."""
    h, w = coarse.shape
    x = neighbour_differences(coarse, radius)
    phases = x @ weights + coarse[:, :, None]
    return phases.reshape(h, w, scale, scale).transpose(0, 2, 1, 3).reshape(h * scale,
                                                                            w * scale)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--radius", type=int, default=4)
    p.add_argument("--samples", type=int, default=400_000)
    p.add_argument("--out", type=Path, default=RESULTS / "sr_linear_bound.json")
    args = p.parse_args(argv)
    train_files, val_files = split_files(DATA_DIR, VALIDATION_FILES)
    train_dems = [load_dem(f) for f in train_files]
    val_dems = [load_dem(f) for f in val_files]
    networks = [m for m in load_models([ROOT / "models"], os.cpu_count() or 1)
                if m.card.get("default")]
    result = {"radius": args.radius, "samples": args.samples,
              "train_files": [f.name for f in train_files], "scales": {}}
    for scale in SCALES:
        weights = fit(train_dems, scale, args.radius, args.samples)
        per_file = {}
        for dem in val_dems:
            h, w = dem.z.shape[0] // scale * scale, dem.z.shape[1] // scale * scale
            truth = dem.z[:h, :w].astype(np.float64)
            coarse = block_mean(truth, scale)
            cell = (dem.dx_m, dem.dy_m)
            linear = upsample_linear(coarse, weights, scale, args.radius)
            lanczos = upsample_baseline(coarse, scale, "lanczos")
            # Score every method on the same cells: where the linear filter's window is whole.
            mask = np.isfinite(linear)
            rows = {"lanczos": score(np.where(mask, lanczos, np.nan), truth, scale, cell),
                    "linear_lsq": score(linear, truth, scale, cell)}
            for net in networks:
                if scale in net.scales:
                    pred = net.upscale(coarse, dem.cell_m * scale, scale)
                    rows[net.family] = score(np.where(mask, pred, np.nan), truth, scale, cell)
            per_file[dem.name] = rows
            print(dem.name, f"x{scale}", {k: round(v["rmse"], 3) for k, v in rows.items()},
                  flush=True)
        methods = next(iter(per_file.values())).keys()
        mean = {m: {k: float(np.mean([f[m][k] for f in per_file.values()]))
                    for k in ("rmse", "slope_rmse_deg")} for m in methods}
        result["scales"][f"x{scale}"] = {"per_file": per_file, "mean": mean}
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
