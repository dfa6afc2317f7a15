"""Benchmark demsr landforms against SAGA 8.5 'TPI Based Landform Classification'.

    python benchmarks/bench_tpi_saga.py NAME DEM SMALL_M LARGE_M [SAGA_SDAT] [SAGA_SECONDS]

Runs ours (circle radii in map units, as SAGA's RADIUS_*_MAX with RADIUS_*_MIN=0 and
DW_WEIGHTING=0), times the in-memory core (classify_array on the DEM already read, best of
CORE_RUNS) and the file-to-file run (landforms_raster, read + classify + write, best of
FILE_RUNS), and compares with SAGA's output cell for cell (codes are the same: SAGA's
LF_CANYON=1 … LF_HIGH_RIDGE=10, nodata 0). SAGA itself is run beforehand, e.g.
    saga_cmd ta_morphometry 19 -DEM=dem.tif -LANDFORMS=saga.sdat -RADIUS_A_MIN=0 \\
        -RADIUS_A_MAX=60 -RADIUS_B_MIN=0 -RADIUS_B_MAX=660 -DW_WEIGHTING=0
The machine's 1-minute load average is recorded before and after (timings on shared cores are
noisy). Results are merged into benchmarks/results/tpi_saga.json.
"""
import json
import os
import sys
import tempfile
import time

import numpy as np
from osgeo import gdal

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from core.grid.raster import read_array  # noqa: E402
from core.terrain import landforms as lf  # noqa: E402
from core.terrain import tpi  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "tpi_saga.json")
CORE_RUNS = 5
FILE_RUNS = 3


def best_of(fn, n):
    times, value = [], None
    for _ in range(n):
        t = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t)
    return min(times), value


def main():
    name, dem, small, large = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    saga = sys.argv[5] if len(sys.argv) > 5 else None
    saga_s = float(sys.argv[6]) if len(sys.argv) > 6 else None
    load_before = os.getloadavg()[0]
    z, info = read_array(dem)
    row = {"dem": dem, "size": [info.width, info.height], "cell": info.pixel_size,
           "radii_m": [small, large], "shape": "circle", "valid_cells": int(np.isfinite(z).sum()),
           "runs": f"best of {CORE_RUNS} (core), {FILE_RUNS} (file)"}
    for shape in ("circle", "square"):
        s = lf.Settings(tpi.neighbourhood(shape, small, 0, "map units", info),
                        tpi.neighbourhood(shape, large, 0, "map units", info))
        t_core, ours = best_of(lambda s=s: lf.classify_array(z, s, info), CORE_RUNS)
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "lf.tif")
            t_file, _ = best_of(lambda s=s, out=out: lf.landforms_raster(dem, out, s), FILE_RUNS)
        row[f"ours_{shape}_core_s"] = round(t_core, 3)
        row[f"ours_{shape}_file_s"] = round(t_file, 3)
        if shape == "circle":
            circle = ours
    if saga:
        sg = gdal.Open(saga).ReadAsArray().astype(np.uint8)
        agree = circle == sg
        valid = np.isfinite(z)
        row.update({
            "agreement_all": float(agree.mean()),
            "agreement_valid": float(agree[valid].mean()),
            "cells_differing": int((~agree).sum()),
        })
    if saga_s is not None:
        row["saga_s"] = saga_s
    row["load_average_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    results = json.load(open(RESULTS)) if os.path.exists(RESULTS) else {}
    results[name] = row
    json.dump(results, open(RESULTS, "w"), indent=2)
    print(json.dumps(row, indent=2))


if __name__ == "__main__":
    main()
