"""Attraction model vs the classical baselines (docs/DESIGN.md §7), and its speed on a 3601² tile.

Accuracy: each DEM is the truth; its S × S block means are the coarse input; every mode of the
attraction model (S = 2, 3, 4 × neighbourhood × assignment × mean preservation) and nearest,
bilinear, bicubic and Lanczos upscale it back; core.superres.scoring.score compares on the truth
grid (border of 2·S left out): RMSE, MAE, slope RMSE, RMSE at 487 random checkpoints.

The default mode is chosen on the SELECTION files only and the ranking is reported on the
REPORT files (docs/DESIGN.md §7: never tune on the scores of a file you report). All are in train/.

Speed: core function on an in-memory 3601 × 3601 array (N48W125, whose blank top half is filled
with its mirrored bottom half so that the whole tile is real terrain), minimum of several
repeats, beside GDAL's nearest-neighbour warp of the same array in memory (the floor: it only
copies values). The machine's 2 cores may be shared with other jobs; the load average is
recorded with the timings.

    .venv/bin/python benchmarks/bench_attraction.py [--speed-only | --accuracy-only]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np
from osgeo import gdal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from core import attraction as at  # noqa: E402
from core.grid.raster import ground_pixel_size_m, read_array  # noqa: E402
from core.superres.scoring import BASELINES, block_mean, score, upsample_baseline  # noqa: E402

TRAIN = os.path.join(os.path.dirname(ROOT), "shared", "data", "dem", "train")
RESULTS = os.path.join(ROOT, "benchmarks", "results")
SELECTION = ["N44W072_srtm3.tif", "N49E011_srtm.tif", "S29W072_srtm.tif"]
REPORT = [
    "srtm_ref_N39E040.tif",
    "srtmgl3_frontrange_colorado.tif",
    "n22_e077_srtm3_v1.tif",
    "N43E007_srtm.tif",
    "mandakini_srtm90_utm44.tif",
]
SCALES = (2, 3, 4)
SHORT = {"max_attraction": "max", "weighted_mean": "wmean"}


def modes():
    for nb in at.NEIGHBOURHOODS:
        for asg in at.ASSIGNMENTS:
            for pm in (False, True):
                yield f"{nb}/{SHORT[asg]}{'+pm' if pm else ''}", (nb, asg, pm)


def accuracy(files: list[str]) -> dict:
    results = {}
    for name in files:
        z, info = read_array(os.path.join(TRAIN, name))
        z = z.astype(np.float64)
        cell = ground_pixel_size_m(info)
        results[name] = {}
        for s in SCALES:
            h, w = z.shape[0] // s * s, z.shape[1] // s * s
            truth = z[:h, :w]
            coarse = block_mean(truth, s)
            row = {}
            for method in BASELINES:
                row[method] = score(upsample_baseline(coarse, s, method), truth, s, cell)
            for label, (nb, asg, pm) in modes():
                row[label] = score(at.upscale(coarse, s, nb, asg, pm), truth, s, cell)
            results[name][str(s)] = row
            print(f"{name} S={s}: bicubic {row['bicubic']['rmse']:.2f} m, best attraction "
                  f"{min(v['rmse'] for k, v in row.items() if '/' in k):.2f} m", flush=True)
    return results


def summarise(results: dict, files: list[str]) -> dict:
    """Per method and S: mean of each score over the files."""
    out = {}
    methods = list(next(iter(results.values()))["2"].keys())
    for s in SCALES:
        out[str(s)] = {
            m: {
                key: float(np.mean([results[f][str(s)][m][key] for f in files]))
                for key in ("rmse", "mae", "slope_rmse_deg", "checkpoint_rmse", "psnr")
            }
            for m in methods
        }
    return out


def choose_default(selection_summary: dict) -> str:
    # The attraction mode with the lowest RMSE averaged over S = 2, 3, 4 on the selection files.
    labels = [label for label, _ in modes()]
    return min(labels, key=lambda m: np.mean([selection_summary[str(s)][m]["rmse"]
                                              for s in SCALES]))


def full_tile() -> np.ndarray:
    z, _ = read_array(os.path.join(TRAIN, "N48W125_srtm.tif"))
    blank = np.isnan(z).all(axis=1)
    first = int(np.argmin(blank))  # first row with data: the top half is blank
    filled = z.copy()
    mirror = np.flipud(z[first : 2 * first])
    filled[:first] = mirror[-first:]
    return filled


def timed(fn, repeats: int) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(repeats):
        c, t = time.process_time(), time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
        del out
    return min(walls), min(cpus)


def gdal_near(z: np.ndarray, s: int) -> np.ndarray:
    h, w = z.shape
    src = gdal.GetDriverByName("MEM").Create("", w, h, 1, gdal.GDT_Float32)
    src.SetGeoTransform((0.0, 1.0, 0.0, 0.0, 0.0, -1.0))
    src.GetRasterBand(1).WriteArray(z)
    src.GetRasterBand(1).SetNoDataValue(float("nan"))
    out = gdal.Warp("", src, format="MEM", width=w * s, height=h * s, resampleAlg="near",
                    outputBounds=(0.0, -float(h), float(w), 0.0))
    return out.GetRasterBand(1).ReadAsArray()


def speed(repeats: int) -> dict:
    z = full_tile()
    res = {"input": "N48W125_srtm.tif 3601 x 3601 (blank top half mirrored), float32",
           "nan_fraction": float(np.isnan(z).mean()), "repeats": repeats,
           "load_average_before": os.getloadavg(), "cpus": os.cpu_count(),
           "machine": platform.processor() or platform.machine(), "runs": {}}
    tif = os.path.join(tempfile.gettempdir(), "bench_attraction_3601.tif")
    ds = gdal.GetDriverByName("GTiff").Create(tif, z.shape[1], z.shape[0], 1, gdal.GDT_Float32)
    ds.SetGeoTransform((0.0, 1.0, 0.0, 0.0, 0.0, -1.0))
    ds.GetRasterBand(1).WriteArray(z)
    ds = None
    for s in (2, 4):
        floors = {
            "numpy nearest (np.repeat, memory-bound floor)":
                lambda s=s: np.repeat(np.repeat(z, s, axis=0), s, axis=1),
            "GDAL warp -r near (in memory, MEM to MEM + read)": lambda s=s: gdal_near(z, s),
            "gdalwarp -r near CLI (uncompressed GTiff to GTiff)": lambda s=s: subprocess.run(
                ["gdalwarp", "-q", "-overwrite", "-r", "near", "-tr", str(1 / s), str(1 / s),
                 tif, tif + f".x{s}.tif"], check=True),
        }
        for label, fn in floors.items():
            wall, cpu = timed(fn, repeats)
            res["runs"][f"S={s} {label}"] = {"wall_s": wall, "cpu_s": cpu}
            print(f"S={s} {label}: {wall:.3f} s", flush=True)
        gdal.Unlink(tif + f".x{s}.tif")
        for label, (nb, asg, pm) in modes():
            wall, cpu = timed(lambda s=s, nb=nb, asg=asg, pm=pm: at.upscale(z, s, nb, asg, pm),
                              repeats)
            res["runs"][f"S={s} {label}"] = {"wall_s": wall, "cpu_s": cpu}
            print(f"S={s} {label}: {wall:.3f} s wall, {cpu:.3f} s cpu", flush=True)
    res["load_average_after"] = os.getloadavg()
    gdal.Unlink(tif)
    return res


def _fmt_table(summary: dict, methods: list[str], key: str) -> list[str]:
    lines = ["| method | " + " | ".join(f"S = {s}" for s in SCALES) + " |",
             "| --- | " + " | ".join("---:" for _ in SCALES) + " |"]
    for m in methods:
        lines.append(f"| {m} | " + " | ".join(f"{summary[str(s)][m][key]:.2f}"
                                             for s in SCALES) + " |")
    return lines


def write_markdown(acc: dict | None, spd: dict | None) -> None:
    path = os.path.join(RESULTS, "attraction.md")
    lines = ["# Attraction model (Mokarram and Hojati 2018) vs classical resampling", "",
             "Generated by `benchmarks/bench_attraction.py`; protocol of docs/DESIGN.md §7 "
             "(truth = "
             "real DEM, input = S × S block means, border of 2·S cells left out). Mode labels: "
             "neighbourhood / assignment (max = the paper's max attraction, wmean = "
             "attraction-weighted mean with the centre cell), +pm = block mean preserved.", ""]
    if acc:
        rep = acc["report_summary"]
        order = sorted(rep["2"], key=lambda m: np.mean([rep[str(s)][m]["rmse"] for s in SCALES]))
        lines += [f"Default chosen on {', '.join(acc['selection'])}: **{acc['default']}**.", "",
                  f"## RMSE (m), mean over the report DEMs: {', '.join(acc['report'])}", "",
                  "Sorted by RMSE averaged over S (the ranking the algorithm's help quotes).",
                  ""]
        lines += _fmt_table(rep, order, "rmse")
        for key, title in (("checkpoint_rmse", "RMSE at 487 random checkpoints (m)"),
                           ("mae", "MAE (m)"), ("slope_rmse_deg", "Slope RMSE (degrees)")):
            lines += ["", f"## {title}, same DEMs and order", ""]
            lines += _fmt_table(rep, order, key)
        lines += ["", "## Mokarram and Hojati (2018), Table 2 style: checkpoint RMSE (m) by "
                  "neighbourhood, "
                  "max attraction (the paper's rule)", "",
                  "| S | touching | quadrant | surrounding | nearest | bicubic |",
                  "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for s in SCALES:
            r = rep[str(s)]
            lines.append(
                f"| {s} | {r['touching/max']['checkpoint_rmse']:.2f} | "
                f"{r['quadrant/max']['checkpoint_rmse']:.2f} | "
                f"{r['surrounding/max']['checkpoint_rmse']:.2f} | "
                f"{r['nearest']['checkpoint_rmse']:.2f} | {r['bicubic']['checkpoint_rmse']:.2f} |"
            )
        lines += ["", "Mokarram and Hojati (2018) report 6.06 m at S = 2 and 7.76–8.89 m above "
                  "against 487 field "
                  "survey points on its own 90 m DEM; those numbers measure the DEM against the "
                  "ground, these measure the upscaling against a known finer DEM, so they are not "
                  "comparable. The paper's rule hands every sub-pixel a neighbour's value (never "
                  "the cell's own): on a slope it copies the uphill neighbour, a whole cell's "
                  "rise, which is why it scores worse than nearest. Per-DEM scores (and the "
                  "selection files' summary) are in attraction_accuracy.json."]
    if spd:
        lines += ["", f"## Speed: {spd['input']}", "",
                  f"Minimum of {spd['repeats']} repeats; core function on an in-memory array; "
                  f"{spd['cpus']} CPUs shared with other jobs (load average "
                  f"{spd['load_average_before'][0]:.1f} before, "
                  f"{spd['load_average_after'][0]:.1f} after).", "",
                  "CPU time counts this process only (all its threads; the CLI's is in a child "
                  "process, so only its wall time means anything).", "",
                  "| run | wall (s) | CPU (s) |", "| --- | ---: | ---: |"]
        for k, v in spd["runs"].items():
            lines.append(f"| {k} | {v['wall_s']:.3f} | {v['cpu_s']:.3f} |")
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print("wrote", path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--speed-only", action="store_true")
    ap.add_argument("--accuracy-only", action="store_true")
    ap.add_argument("--markdown-only", action="store_true", help="rewrite attraction.md from "
                    "the JSON results")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    os.makedirs(RESULTS, exist_ok=True)
    acc_path = os.path.join(RESULTS, "attraction_accuracy.json")
    spd_path = os.path.join(RESULTS, "attraction_speed.json")
    acc = spd = None
    if args.markdown_only:
        args.speed_only = args.accuracy_only = True
    if not args.speed_only:
        sel = accuracy(SELECTION)
        rep = accuracy(REPORT)
        sel_sum = summarise(sel, SELECTION)
        acc = {"selection": SELECTION, "report": REPORT, "default": choose_default(sel_sum),
               "selection_summary": sel_sum, "report_summary": summarise(rep, REPORT),
               "per_dem": {**sel, **rep}}
        with open(acc_path, "w") as fh:
            json.dump(acc, fh, indent=1)
    if acc is None and os.path.exists(acc_path):
        with open(acc_path) as fh:
            acc = json.load(fh)
    if not args.accuracy_only:
        spd = speed(args.repeats)
        with open(spd_path, "w") as fh:
            json.dump(spd, fh, indent=1)
    if spd is None and os.path.exists(spd_path):
        with open(spd_path) as fh:
            spd = json.load(fh)
    write_markdown(acc, spd)


if __name__ == "__main__":
    main()
