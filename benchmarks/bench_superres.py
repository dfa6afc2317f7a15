"""Speed and peak memory of demsr super-resolution on this machine's CPU (issue 7).

    .venv/bin/python benchmarks/bench_superres.py [--models models/*.onnx] [--device cpu]

For every model: seconds per output megapixel, end to end (read, fill, infer, write a compressed
GeoTIFF) and inference only, on a SPEED_SIZE² crop of a real DEM at the model's first scale.
For the default model (or --big-model) at x2: peak resident memory on a 3601 × 3601 input
(SRTM 1° tile size), measured with resource.getrusage in a child process, so each figure is that
run's own peak. Results: benchmarks/results/superres_<device>.json and .md.
"""
from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from core.grid import files, raster, writing  # noqa: E402
from core.superres import inference, models  # noqa: E402

SOURCE = os.path.join(ROOT, "data", "jacksboro_fault_srtm3.tif")
SPEED_SIZE = 1024
BIG_SIZE = 3601


def make_input(path: str, size: int) -> str:
    """A size² DEM mirrored from the bundled SRTM tile (real relief statistics, any size)."""
    z, info = raster.read_array(SOURCE)
    reps = (size // z.shape[0] + 2, size // z.shape[1] + 2)
    tiled = np.block([[z if (i + j) % 2 == 0 else z[::-1, ::-1] for j in range(reps[1])]
                      for i in range(reps[0])])[:size, :size]
    writing.write_array(path, tiled.astype(np.float32), info, "Float32")
    return path


def child(args) -> None:
    """One run in a fresh process; prints its timings and its own peak RSS as JSON."""
    res = inference.superresolve(args.input, args.output, args.scale, model_file=args.model,
                                device=args.device, tile_size=args.tile)
    out_mp = res.info.width * res.info.height / 1e6
    print(json.dumps({
        "seconds": res.total_seconds,
        "inference_seconds": res.inference_seconds,
        "output_mp": out_mp,
        "tile": res.plan.tile,
        "tiles": res.tiles_run,
        "device_used": res.device_used,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


def run_child(inp, model, scale, device, tile, tmp) -> dict:
    out = os.path.join(tmp, "out.tif")
    cmd = [sys.executable, __file__, "--child", "--input", inp, "--model", model,
           "--scale", str(scale), "--device", device, "--tile", str(tile), "--output", out]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    files.remove_raster(out)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", help="ONNX files (default: models/*.onnx)")
    parser.add_argument("--device", default="cpu", choices=inference.DEVICES)
    parser.add_argument("--tile", type=int, default=0)
    parser.add_argument("--big-model", help="model for the 3601² memory run (default: the "
                        "default family's x2 model)")
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--speed-size", type=int, default=SPEED_SIZE,
                        help="side of the speed-test input in cells")
    parser.add_argument("--results", default=os.path.join(ROOT, "benchmarks", "results"))
    parser.add_argument("--note", default="", help="free text stored with the results")
    # child mode
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--scale", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return 0

    paths = args.models or sorted(glob.glob(os.path.join(ROOT, "models", "*.onnx")))
    if not paths:
        print("no model to benchmark: models/ is empty and --models was not given")
        return 1
    _, default_family = models.bundled_families()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        speed_input = make_input(os.path.join(tmp, "speed.tif"), args.speed_size)
        for path in paths:
            card = models.read_card(path)
            scale = card.scales[0]
            r = run_child(speed_input, path, scale, args.device, args.tile, tmp)
            row = {"model": os.path.basename(path), "family": card.family, "scale": scale,
                   "default": card.family == default_family,
                   "macs_per_output_mp": card.extra.get("macs_per_output_mp"), **r}
            if "error" not in r:
                row["s_per_output_mp"] = r["seconds"] / r["output_mp"]
                row["inference_s_per_output_mp"] = r["inference_seconds"] / r["output_mp"]
                row["output_mp_per_s"] = r["output_mp"] / r["seconds"]
            rows.append(row)
            print(json.dumps(row))
        big = None
        if not args.skip_big:
            big_model = args.big_model
            if not big_model:
                x2 = [p for p in paths if 2 in models.read_card(p).scales]
                preferred = [p for p in x2 if models.read_card(p).family == default_family]
                big_model = (preferred or x2 or [None])[0]
            if big_model:
                big_input = make_input(os.path.join(tmp, "big.tif"), BIG_SIZE)
                big = {"model": os.path.basename(big_model), "input": f"{BIG_SIZE}x{BIG_SIZE}",
                       "scale": 2,
                       **run_child(big_input, big_model, 2, args.device, args.tile, tmp)}
                if "output_mp" in big:
                    big["s_per_output_mp"] = big["seconds"] / big["output_mp"]
                print(json.dumps(big))
    load = os.getloadavg()
    result = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "device": args.device,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_1_5_15": load,
        "onnxruntime": inference.onnxruntime_available()[1],
        "speed_input": f"{args.speed_size}² cells mirrored from jacksboro_fault_srtm3",
        "note": args.note,
        "models": rows,
        "peak_memory_run": big,
    }
    os.makedirs(args.results, exist_ok=True)
    stem = os.path.join(args.results, f"superres_{args.device}")
    with open(stem + ".json", "w") as f:
        json.dump(result, f, indent=2)
    with open(stem + ".md", "w") as f:
        f.write(f"# Super-resolution speed on {args.device} ({result['date']})\n\n")
        f.write(f"{result['cpu_count']} logical CPUs, load average {load[0]:.1f}/{load[1]:.1f}/"
                f"{load[2]:.1f}, onnxruntime {result['onnxruntime']}. {args.note}\n\n")
        f.write("| model | scale | default | s / output MP (end to end) | s / output MP "
                "(inference) | output MP/s | tile | peak RSS MB |\n"
                "|---|---|---|---|---|---|---|---|\n")
        for r in rows:
            if "error" in r:
                f.write(f"| {r['model']} | x{r['scale']} | | error: {r['error']} | | | | |\n")
                continue
            f.write(f"| {r['model']} | x{r['scale']} | {'yes' if r['default'] else ''} | "
                    f"{r['s_per_output_mp']:.3f} | {r['inference_s_per_output_mp']:.3f} | "
                    f"{r['output_mp_per_s']:.2f} | {r['tile']} | {r['maxrss_mb']:.0f} |\n")
        if big and "maxrss_mb" in big:
            f.write(f"\nPeak memory, {big['model']} on a {big['input']} input at x2 "
                    f"({big['output_mp']:.1f} output MP): **{big['maxrss_mb']:.0f} MB** resident, "
                    f"{big['seconds']:.1f} s ({big['s_per_output_mp']:.3f} s/MP), "
                    f"{big['tiles']} tiles of {big['tile']}².\n")
        elif big:
            f.write(f"\nPeak memory run failed: {big.get('error')}\n")
    print(f"results written to {stem}.json and {stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
