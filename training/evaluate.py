"""Score ONNX super-resolution models on the held-out files (docs/DESIGN.md §7) beside the
baselines.

    python -m training.evaluate --models models [training/runs/srcnn3/onnx] \
        --out benchmarks/results/sr_validation.json

For each held-out file and scale: truth = the real DEM, coarse = S x S block mean, upscale back
with nearest / bilinear / bicubic / Lanczos (GDAL) and with every ONNX model for that scale,
score with ``core.scoring.score`` (border 2·S left out). Models see the whole file at once,
with nodata and the margin beyond the edge filled by the nearest valid cell and the output
masked back to NaN wherever the coarse cell was nodata: the same numbers as the plugin's tiled
runner (``core.inference``) gives, which a test checks. Prints markdown tables; writes per-file
scores and the mean over files to JSON.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from core.inference import bicubic_upsample
from core.models import normalisation_scale, read_card_items
from core.scoring import BASELINES, block_mean, score, upsample_baseline
from training.dataset import (
    DATA_DIR,
    DEGRADATIONS,
    VALIDATION_FILES,
    Dem,
    load_dem,
)

METRICS = ("rmse", "mae", "psnr", "slope_rmse_deg", "checkpoint_rmse")


def fill_nearest(z: np.ndarray) -> np.ndarray:
    """NaN cells take the value of the nearest valid cell (inference input only)."""
    holes = np.isnan(z)
    if not holes.any():
        return z
    idx = ndimage.distance_transform_edt(holes, return_distances=False, return_indices=True)
    return z[tuple(idx)]


class OnnxModel:
    """One ONNX model file with its card, run the way the runner runs it."""

    def __init__(self, path: Path, threads: int = 2):
        import onnxruntime as ort

        self.path = path
        self.card = read_card_items(str(path))
        self.family = self.card["family"]
        self.scales = [int(s) for s in self.card["scales"]]
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options,
                                            providers=["CPUExecutionProvider"])

    def upscale(self, coarse: np.ndarray, coarse_cell_m: float, scale: int) -> np.ndarray:
        norm = self.card["normalisation"]
        valid = np.isfinite(coarse)
        offset = float(coarse[valid].mean())
        d = float(normalisation_scale(coarse_cell_m, norm["scale_m"], norm["scale_per_cell"]))
        # Like the runner: beyond the raster edge the network sees nearest-valid values over
        # its whole receptive field (+2), never its own zero padding.
        c = int(self.card["receptive_field"]) + 2
        padded = np.pad(coarse, c, constant_values=np.nan)
        x = (fill_nearest(padded) - offset) / d
        name = self.session.get_inputs()[0].name
        if self.card["input_space"] == "upsampled":
            x = bicubic_upsample(x, scale)
        x = x.astype(np.float32)[None, None]
        fine = self.session.run(["fine"], {name: x})[0][0, 0].astype(np.float64) * d + offset
        s = scale
        fine = fine[c * s:(c + coarse.shape[0]) * s, c * s:(c + coarse.shape[1]) * s]
        mask = np.kron(valid, np.ones((s, s), bool))
        return np.where(mask, fine, np.nan)


def load_models(paths: list[Path], threads: int) -> list[OnnxModel]:
    files = []
    for p in paths:
        files += sorted(p.glob("*.onnx")) if p.is_dir() else [p]
    return [OnnxModel(f, threads) for f in files if not f.name.endswith(".tmp.onnx")]


def central_window(dem: Dem, size: int | None) -> Dem:
    """At most size x size cells around the centroid of the valid cells (CPU time budget)."""
    if size is None or max(dem.z.shape) <= size:
        return dem
    rows, cols = np.nonzero(np.isfinite(dem.z))
    r = int(np.clip(rows.mean() - size / 2, 0, max(dem.z.shape[0] - size, 0)))
    c = int(np.clip(cols.mean() - size / 2, 0, max(dem.z.shape[1] - size, 0)))
    return Dem(dem.name, dem.z[r:r + size, c:c + size], dem.dx_m, dem.dy_m)


def evaluate_file(dem: Dem, scale: int, models: list[OnnxModel], degradation: str, log) -> dict:
    """Scores of every baseline and model at one scale on one held-out file."""
    h, w = dem.z.shape[0] // scale * scale, dem.z.shape[1] // scale * scale
    truth = dem.z[:h, :w].astype(np.float64)
    coarse = block_mean(truth, scale) if degradation == "block_mean" \
        else DEGRADATIONS[degradation](truth, scale)
    cell = (dem.dx_m, dem.dy_m)
    out = {}
    for method in BASELINES:
        out[method] = score(upsample_baseline(coarse, scale, method), truth, scale, cell)
    for model in models:
        if scale not in model.scales:
            continue
        t = time.monotonic()
        pred = model.upscale(coarse, dem.cell_m * scale, scale)
        seconds = time.monotonic() - t
        out[model.family] = {**score(pred, truth, scale, cell), "seconds": seconds,
                             "output_mp": pred.size / 1e6}
        log(f"  {dem.name} x{scale} {model.family}: rmse {out[model.family]['rmse']:.3f} m, "
            f"{seconds:.1f} s")
    return out


def summarise(per_file: dict) -> dict:
    """Mean over files of every metric, per scale and method."""
    summary: dict = {}
    for scales in per_file.values():
        for scale_key, methods in scales.items():
            for method, scores in methods.items():
                acc = summary.setdefault(scale_key, {}).setdefault(method, {})
                for metric in METRICS:
                    acc.setdefault(metric, []).append(scores[metric])
    return {s: {m: {k: float(np.mean(v)) for k, v in d.items()} for m, d in methods.items()}
            for s, methods in summary.items()}


def markdown_table(summary: dict) -> str:
    lines = ["| scale | method | RMSE m | slope RMSE ° | MAE m | PSNR dB | RMSE / Lanczos "
             "| slope / Lanczos |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for scale_key in sorted(summary):
        methods = summary[scale_key]
        ref = methods["lanczos"]
        for method, s in methods.items():
            lines.append(
                f"| {scale_key} | {method} | {s['rmse']:.2f} | {s['slope_rmse_deg']:.2f} | "
                f"{s['mae']:.2f} | {s['psnr']:.2f} | {s['rmse'] / ref['rmse']:.3f} | "
                f"{s['slope_rmse_deg'] / ref['slope_rmse_deg']:.3f} |")
    return "\n".join(lines)


# Jiao et al. (2020), Tables 1-2 at x3 (SRTM 30 m, its own test tiles): PSNR dB, MAE m, RMSE m.
PAPER_X3 = {"bicubic": (37.17, 11.51, 14.16), "srcnn3": (38.48, 9.47, 12.01),
           "vdsr30": (46.45, 3.69, 4.83)}


def reproduction_table(summary: dict, scale_key: str = "x3") -> str:
    """Tables 1-2 of Jiao et al. (2020): our held-out scores beside the paper's published ones."""
    lines = ["| method | PSNR dB (ours) | MAE m (ours) | RMSE m (ours) | PSNR gain over bicubic "
             "(ours) | paper's PSNR / MAE / RMSE | paper's gain |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    methods = summary[scale_key]
    base = methods["bicubic"]["psnr"]
    for method in ("bicubic", "lanczos", "srcnn3", "vdsr30", "fastsr"):
        if method not in methods:
            continue
        s = methods[method]
        paper = PAPER_X3.get(method)
        paper_text = " / ".join(f"{v:.2f}" for v in paper) if paper else "-"
        paper_gain = f"{paper[0] - PAPER_X3['bicubic'][0]:+.2f}" if paper else "-"
        lines.append(f"| {method} | {s['psnr']:.2f} | {s['mae']:.2f} | {s['rmse']:.2f} | "
                     f"{s['psnr'] - base:+.2f} | {paper_text} | {paper_gain} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="Score ONNX SR models on the held-out DEMs.")
    p.add_argument("--models", type=Path, nargs="*", default=[Path("models")])
    p.add_argument("--scales", type=int, nargs="+", default=[2, 3, 4])
    p.add_argument("--files", nargs="+", default=list(VALIDATION_FILES))
    p.add_argument("--data-dir", type=Path, default=DATA_DIR)
    p.add_argument("--degradation", choices=sorted(DEGRADATIONS), default="block_mean")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-size", type=int, default=None,
                   help="score only a central window of at most this many fine cells a side")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/sr_validation.json"))
    args = p.parse_args(argv)

    models = load_models(args.models, args.threads)
    print(f"models: {', '.join(m.path.name for m in models)}", flush=True)
    per_file: dict = {}
    for name in args.files:
        dem = central_window(load_dem(args.data_dir / name), args.max_size)
        per_file[name] = {f"x{s}": evaluate_file(dem, s, models, args.degradation,
                                                  lambda m: print(m, flush=True))
                          for s in args.scales}
    summary = summarise(per_file)
    result = {
        "protocol": "docs/DESIGN.md §7: truth = held-out real DEM, coarse = S x S "
                    f"{args.degradation}, border 2·S excluded, mean over files",
        "degradation": args.degradation,
        "validation_files": args.files,
        "window": f"central {args.max_size} x {args.max_size} fine cells" if args.max_size
        else "whole files",
        "models": {m.path.name: {k: m.card[k] for k in ("family", "scales", "parameters",
                                                           "macs_per_output_mp", "trained_on")}
                   for m in models},
        "summary": summary,
        "per_file": per_file,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(markdown_table(summary))
    if "x3" in summary:
        print()
        print(reproduction_table(summary))


if __name__ == "__main__":
    main()
