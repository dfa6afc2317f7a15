"""Self-ensemble of the default model on the held-out files: accuracy gain, cost, and whether
the spread of the 8 members predicts the error.

    .venv/bin/python benchmarks/bench_ensemble.py [--corpus DIR] [--scales 2 3 4]
    .venv/bin/python benchmarks/bench_ensemble.py --manifest training/corpus.csv

With --manifest the files are the manifest's held-out rows (every product) in training/corpus/.

For each held-out file of the default model's card and each scale: truth = the file, coarse =
S x S block mean (written with the truth's CRS and S-times-larger cells), super-resolved by
core.superres.inference.superresolve once plainly and once with the ensemble and its spread. Scores
with core.superres.scoring.score (border 2·S left out). Spread vs |error| over the scored cells:
Pearson and Spearman correlation, the share of cells with |error| <= 1 and <= 2 spreads (a
calibrated Gaussian sd would give 68 % and 95 %), and the mean |error| per spread decile. Writes
benchmarks/results/sr_ensemble.json and .md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import replace

import numpy as np
from scipy import stats

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from core.grid import (
    raster,  # noqa: E402
    writing,
)
from core.superres import inference, models  # noqa: E402
from core.superres.scoring import block_mean, score, upsample_baseline  # noqa: E402
from training.dataset import DATA_DIR  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def coarse_file(truth: np.ndarray, info: raster.RasterInfo, scale: int, path: str) -> None:
    coarse = block_mean(truth, scale)
    x0, dx, rx, y0, ry, dy = info.geotransform
    coarse_info = replace(info, width=coarse.shape[1], height=coarse.shape[0],
                          geotransform=(x0, dx * scale, rx, y0, ry, dy * scale), nodata=None)
    writing.write_array(path, coarse.astype(np.float32), coarse_info)


def spread_figures(error: np.ndarray, spread: np.ndarray) -> dict:
    ok = np.isfinite(error) & np.isfinite(spread)
    e, s = np.abs(error[ok]), spread[ok]
    deciles = np.quantile(s, np.linspace(0, 1, 11))
    bins = np.clip(np.searchsorted(deciles, s, side="right") - 1, 0, 9)
    return {
        "cells": int(e.size),
        "pearson_spread_abs_error": float(np.corrcoef(s, e)[0, 1]),
        "spearman_spread_abs_error": float(stats.spearmanr(s, e).statistic),
        "share_within_1_spread": float(np.mean(e <= s)),
        "share_within_2_spread": float(np.mean(e <= 2 * s)),
        "mean_spread_m": float(s.mean()),
        "mean_abs_error_m": float(e.mean()),
        "mean_abs_error_by_spread_decile_m": [float(e[bins == k].mean()) for k in range(10)],
        "mean_spread_by_decile_m": [float(s[bins == k].mean()) for k in range(10)],
    }


def run(corpus: str, scales: list[int], work: str,
        products: dict[str, str] | None = None) -> dict:
    """Every file of `products` (file name -> product), by default the default model's own
    held-out files, all SRTM."""
    families, default = models.bundled_families()
    if products is None:
        card = models.bundled_model(default, scales[0])
        products = {name: "SRTM" for name in card.extra["validation_files"]}
    files = list(products)
    out = {"model": default, "files": files, "products": products, "per_file": {}}
    for name in files:
        truth_full, info = raster.read_array(os.path.join(corpus, name))
        for s in scales:
            h, w = truth_full.shape[0] // s * s, truth_full.shape[1] // s * s
            truth = truth_full[:h, :w].astype(np.float64)
            src = os.path.join(work, f"{name}.x{s}.coarse.tif")
            coarse_file(truth, replace(info, width=w, height=h), s, src)
            plain, mean, spread = (os.path.join(work, f"{name}.x{s}.{k}.tif")
                                   for k in ("plain", "mean", "spread"))
            t0 = time.perf_counter()
            inference.superresolve(src, plain, s, model=default, device="cpu")
            t1 = time.perf_counter()
            inference.superresolve(src, mean, s, model=default, device="cpu",
                                   spread_output=spread)
            t2 = time.perf_counter()
            cell = raster.ground_pixel_size_m(replace(info, width=w, height=h))
            p, m, sp = (raster.read_array(f)[0].astype(np.float64) for f in (plain, mean, spread))
            b = 2 * s
            inner = (slice(b, -b), slice(b, -b))
            lanczos = score(upsample_baseline(block_mean(truth, s), s, "lanczos"), truth, s, cell)
            entry = {
                "plain": {**score(p, truth, s, cell), "seconds": t1 - t0},
                "ensemble": {**score(m, truth, s, cell), "seconds": t2 - t1},
                "lanczos": lanczos,
                "output_mp": truth.size / 1e6,
                "spread": spread_figures((m - truth)[inner], sp[inner]),
            }
            out["per_file"].setdefault(name, {})[f"x{s}"] = entry
            print(f"{name} x{s}: rmse plain {entry['plain']['rmse']:.3f} ensemble "
                  f"{entry['ensemble']['rmse']:.3f} m, {t1 - t0:.1f} / {t2 - t1:.1f} s, "
                  f"spearman {entry['spread']['spearman_spread_abs_error']:.2f}", flush=True)
    return out


def markdown(res: dict, scales: list[int]) -> str:
    lines = [
        f"# Self-ensemble of `{res['model']}` on the held-out files", "",
        "Generated by `benchmarks/bench_ensemble.py`: truth = each held-out file, input = its "
        "S × S block means, border of 2·S cells left out; plain = one pass, ensemble = mean "
        "over the 8 rotations and flips; spread = their standard deviation. "
        f"Machine: {os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), "
        "shared with other jobs, so the seconds are only indicative; the ratio is what counts.",
        "",
        "| file | product | S | RMSE plain m | RMSE ensemble m | ensemble / Lanczos "
        "| slope RMSE plain ° | slope RMSE ensemble ° | time ensemble / plain |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    product = res["products"]
    for name, per_scale in res["per_file"].items():
        for s in scales:
            e = per_scale[f"x{s}"]
            lines.append(
                f"| {name} | {product[name]} | {s} | {e['plain']['rmse']:.3f} | "
                f"{e['ensemble']['rmse']:.3f} | "
                f"{e['ensemble']['rmse'] / e['lanczos']['rmse']:.3f} | "
                f"{e['plain']['slope_rmse_deg']:.3f} | {e['ensemble']['slope_rmse_deg']:.3f} | "
                f"{e['ensemble']['seconds'] / e['plain']['seconds']:.1f}× |")
    lines += ["", "## Does the spread predict the error?", "",
              "| file | product | S | Pearson(spread, abs error) | Spearman "
              "| abs error ≤ 1 spread | ≤ 2 spreads | mean spread m | mean abs error m "
              "| mean abs error, lowest / highest spread decile m |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, per_scale in res["per_file"].items():
        for s in scales:
            f = per_scale[f"x{s}"]["spread"]
            dec = f["mean_abs_error_by_spread_decile_m"]
            lines.append(
                f"| {name} | {product[name]} | {s} | "
                f"{f['pearson_spread_abs_error']:.2f} | "
                f"{f['spearman_spread_abs_error']:.2f} | {100 * f['share_within_1_spread']:.0f} % "
                f"| {100 * f['share_within_2_spread']:.0f} % | {f['mean_spread_m']:.2f} | "
                f"{f['mean_abs_error_m']:.2f} | {dec[0]:.2f} / {dec[-1]:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default=str(DATA_DIR))
    ap.add_argument("--scales", type=int, nargs="+", default=[2, 3, 4])
    ap.add_argument("--manifest", default=None,
                    help="score the held-out files of this corpus manifest (all products)")
    args = ap.parse_args(argv)
    products = None
    if args.manifest is not None:
        from training.corpus import CORPUS_DIR, read_manifest

        products = {e.file: e.product for e in read_manifest(args.manifest)
                    if e.split == "holdout"}
        args.corpus = str(CORPUS_DIR)
    with tempfile.TemporaryDirectory() as work:
        res = run(args.corpus, args.scales, work, products)
    res["load_average"] = os.getloadavg()
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "sr_ensemble.json"), "w") as f:
        json.dump(res, f, indent=1)
    with open(os.path.join(RESULTS, "sr_ensemble.md"), "w") as f:
        f.write(markdown(res, args.scales))


if __name__ == "__main__":
    main()
