"""Throughput of the bundled networks on a GPU, in output megapixels per second.

    python3 benchmarks/bench_gpu.py --out DIR [--size 1024] [--repeats 10]

Run on a machine with an NVIDIA GPU (benchmarks/gpu/device_check.sh runs it there). Each
bundled model's weights are read from its ONNX file and run two ways:

* PyTorch on the GPU, float32 and bfloat16 autocast: the network alone, input already on the
  device, timed with CUDA events (median of `repeats` after 3 warm-ups) on a random coarse
  tile of size² cells. This is what training and a GPU-side pipeline see.
* onnxruntime with CUDAExecutionProvider, when the installed onnxruntime has it: the plugin's
  own path, host arrays in and out (copies included), wall-clock median.

No GDAL is needed. Writes DIR/sr_gpu.json and DIR/sr_gpu.md, naming the device.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

SCALES = (2, 3, 4)


def _input(size: int, seed: int = 0) -> np.ndarray:
    # Never time on zeros (they can run faster than real data): a smooth random surface.
    rng = np.random.default_rng(seed)
    z = np.cumsum(np.cumsum(rng.normal(size=(size, size)), axis=0), axis=1)
    return ((z - z.mean()) / z.std()).astype(np.float32)[None, None]


def torch_rate(model, scale: int, x: np.ndarray, dtype: str, repeats: int,
               device: str = "cuda") -> float:
    """Output MP/s of model(x, scale) (CUDA events on a GPU, median; `device` cpu only to try
    the script where there is no GPU)."""
    import torch

    xt = torch.from_numpy(x).to(device)
    times = []
    with torch.no_grad(), torch.autocast(device, dtype=torch.bfloat16,
                                         enabled=dtype == "bfloat16"):
        for i in range(3 + repeats):
            if device == "cuda":
                start, end = (torch.cuda.Event(enable_timing=True),
                              torch.cuda.Event(enable_timing=True))
                start.record()
                y = model(xt, scale)
                end.record()
                torch.cuda.synchronize()
                seconds = start.elapsed_time(end) / 1000
            else:
                t0 = time.perf_counter()
                y = model(xt, scale)
                seconds = time.perf_counter() - t0
            if not torch.isfinite(y).all():
                raise RuntimeError(f"non-finite output at x{scale} ({dtype})")
            if i >= 3:
                times.append(seconds)
    return y.numel() / 1e6 / statistics.median(times)


def onnxruntime_rate(path: str, x: np.ndarray, repeats: int) -> tuple[float, str]:
    """Output MP/s through onnxruntime's CUDA provider, host copies included."""
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CUDAExecutionProvider"])
    used = session.get_providers()[0]
    name = session.get_inputs()[0].name
    times = []
    for i in range(3 + repeats):
        t0 = time.perf_counter()
        y = session.run(None, {name: x})[0]
        if i >= 3:
            times.append(time.perf_counter() - t0)
    return y.size / 1e6 / statistics.median(times), used


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--size", type=int, default=1024, help="coarse tile side in cells")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda",
                   help="cpu only to try the script on a machine without a GPU")
    args = p.parse_args(argv)
    import torch

    from training.onnx_weights import fastsr_from_onnx, vdsr30_from_onnx

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device visible to PyTorch")
    device = torch.cuda.get_device_name(0) if args.device == "cuda" else platform.processor() \
        or "CPU"
    models_dir = os.path.join(ROOT, "models")
    fast_files = sorted(glob.glob(os.path.join(models_dir, "fastsr_x*.onnx")))
    nets = {"fastsr": fastsr_from_onnx(fast_files),
            "vdsr30": vdsr30_from_onnx(os.path.join(models_dir, "vdsr30.onnx"))}
    x = _input(args.size)
    rows = []
    for family, net in nets.items():
        net = net.to(args.device).eval()
        for scale in SCALES:
            for dtype in ("float32", "bfloat16"):
                rate = torch_rate(net, scale, x, dtype, args.repeats, args.device)
                rows.append({"model": family, "scale": scale, "engine": "PyTorch",
                             "dtype": dtype, "mp_per_s": float(f"{rate:.3g}")})
    ort_info = {"available": False}
    try:
        import onnxruntime as ort

        ort_info = {"version": ort.__version__, "providers": ort.get_available_providers()}
        ort_info["available"] = "CUDAExecutionProvider" in ort_info["providers"]
    except ImportError:
        ort_info = {"version": None, "providers": [], "available": False}
    if ort_info["available"] and args.device == "cuda":
        for path in fast_files:
            scale = int(os.path.basename(path)[len("fastsr_x")])
            rate, used = onnxruntime_rate(path, x, args.repeats)
            rows.append({"model": "fastsr", "scale": scale, "engine": f"onnxruntime ({used})",
                         "dtype": "float32", "mp_per_s": float(f"{rate:.3g}")})
    result = {"device": device, "torch": torch.__version__, "onnxruntime": ort_info,
              "python": platform.python_version(), "coarse_tile": args.size,
              "repeats": args.repeats, "rows": rows}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "sr_gpu.json"), "w") as f:
        json.dump(result, f, indent=1)
    lines = [f"# Super-resolution throughput on {device}", "",
             f"PyTorch {torch.__version__}; onnxruntime {ort_info['version']} (providers: "
             f"{', '.join(ort_info['providers']) or 'none'}). Output megapixels per second, "
             f"median of {args.repeats} runs on a {args.size}² coarse tile "
             "(`benchmarks/bench_gpu.py`).", "",
             "| model | scale | engine | precision | MP/s |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['model']} | x{r['scale']} | {r['engine']} | {r['dtype']} | {r['mp_per_s']} |"
              for r in rows]
    with open(os.path.join(args.out, "sr_gpu.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
