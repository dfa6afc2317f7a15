"""Benchmark (not a test): block processing of a 20000 × 20000 float32 raster in bounded memory.

    .venv/bin/python benchmarks/bench_blocked_io.py [--size 20000] [--workdir /tmp/demsr-bench]

Writes a synthetic terrain raster block by block, then runs core.grid.raster.process_blocks over it
with a halo of 2 (a 5 × 5 box mean per block) in a fresh process, and prints the time and the
peak resident memory of that process, with GDAL's default block cache and with 128 MB.
Results go to benchmarks/results/blocked_io.json.
"""
import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from core.grid import raster, writing  # noqa: E402


def make_input(path: str, size: int) -> None:
    """Smooth ridges plus noise, written in 1024-row strips so the maker stays small too."""
    info = raster.RasterInfo(size, size, (500000.0, 30.0, 0.0, 5000000.0, 0.0, -30.0), "",
                             -9999.0)
    rng = np.random.default_rng(0)
    x = np.arange(size, dtype=np.float32)
    with writing.GeoTiffWriter(path, info, "Float32") as writer:
        for row in range(0, size, 1024):
            rows = np.arange(row, min(row + 1024, size), dtype=np.float32)[:, None]
            strip = (1000 + 400 * np.sin(x / 900.0) * np.cos(rows / 700.0)
                     + rng.normal(0, 2, (rows.shape[0], size)).astype(np.float32))
            writer.write(strip, row, 0)
            writer.flush()


def box_mean_5(padded: np.ndarray, block: raster.Block) -> np.ndarray:
    h = block.halo
    acc = np.zeros((block.height, block.width), np.float32)
    for dr in range(-h, h + 1):
        for dc in range(-h, h + 1):
            acc += padded[h + dr : h + dr + block.height, h + dc : h + dc + block.width]
    return acc / (2 * h + 1) ** 2


def process(src: str, dst: str) -> None:
    start = time.perf_counter()
    writing.process_blocks(src, dst, box_mean_5, halo=2, block_size=512)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_mb}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=20000)
    parser.add_argument("--workdir", default="/tmp/demsr-bench")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        process(*args.child)
        return
    os.makedirs(args.workdir, exist_ok=True)
    src = os.path.join(args.workdir, f"synthetic_{args.size}.tif")
    dst = os.path.join(args.workdir, f"boxmean_{args.size}.tif")
    if not os.path.exists(src):
        t0 = time.perf_counter()
        make_input(src, args.size)
        print(f"made {src} in {time.perf_counter() - t0:.1f} s")
    # A fresh process each, so the peak memory is that of the blocked processing alone. GDAL's
    # block cache (default 5 % of RAM, ~1.2 GB here) is most of the peak: measure both ways.
    runs = {}
    for label, cache in (("gdal_cache_default", None), ("gdal_cache_128mb", "128")):
        env = dict(os.environ)
        env.pop("GDAL_CACHEMAX", None)
        if cache:
            env["GDAL_CACHEMAX"] = cache
        child = subprocess.run([sys.executable, __file__, "--child", src, dst], env=env,
                               capture_output=True, text=True, check=True)
        measured = json.loads(child.stdout.strip().splitlines()[-1])
        runs[label] = {"seconds": round(measured["seconds"], 1),
                       "peak_rss_mb": round(measured["peak_rss_mb"])}
    result = {
        "what": f"process_blocks, {args.size}x{args.size} float32, block 512, halo 2, 5x5 mean",
        "cells": args.size * args.size,
        "runs": runs,
        "target_peak_mb": 1536,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                   f"{os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB",
        "input_mb_on_disk": round(os.path.getsize(src) / 2**20),
    }
    print(json.dumps(result, indent=2))
    with open(os.path.join(ROOT, "benchmarks", "results", "blocked_io.json"), "w") as f:
        json.dump(result, f, indent=2)
    os.remove(dst)


if __name__ == "__main__":
    main()
