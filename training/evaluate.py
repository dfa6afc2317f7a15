"""Score ONNX super-resolution models on the held-out files (docs/DESIGN.md §7) beside the
baselines.

    python -m training.evaluate --models models [training/runs/srcnn3/onnx] \
        --out benchmarks/results/sr_validation.json

For each held-out file and scale: truth = the real DEM, coarse = S x S block mean, upscale back
with nearest / bilinear / bicubic / Lanczos (GDAL) and with every ONNX model for that scale,
score with ``core.superres.scoring.score`` (border 2·S left out). Models see the whole file at once,
with nodata and the margin beyond the edge filled by the nearest valid cell and the output
masked back to NaN wherever the coarse cell was nodata: the same numbers as the plugin's tiled
runner (``core.superres.inference``) gives, which a test checks. Prints markdown tables; writes
per-file scores and the mean over files to JSON.

Per product (the multi-product corpus, training/corpus.csv):

    python -m training.evaluate --manifest training/corpus.csv --max-size 600 \
        --out benchmarks/results/sr_validation_products.json \
        --markdown benchmarks/results/sr_validation_products.md

scores every held-out row of the manifest (in training/corpus/ unless --data-dir says
otherwise) and adds the mean per product and scale, the model / Lanczos ratios, which products
meet the target ratio and which files exceed the per-file limit.
"""
from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import ndimage

from core.superres.inference import bicubic_upsample
from core.superres.models import normalisation_scale, read_card_items
from core.superres.scoring import BASELINES, block_mean, score, upsample_baseline
from training.corpus import CORPUS_DIR, PRODUCTS, products_of, read_manifest
from training.dataset import (
    DATA_DIR,
    DEGRADATIONS,
    VALIDATION_FILES,
    Dem,
    load_dem,
)

METRICS = ("rmse", "mae", "psnr", "slope_rmse_deg", "checkpoint_rmse")
# Issue #12's bars: a product's mean RMSE (and slope RMSE) at most 0.80 x Lanczos; no held-out
# file above 0.88 x Lanczos.
PRODUCT_TARGET = 0.80
FILE_LIMIT = 0.88


def fill_nearest(z: np.ndarray) -> np.ndarray:
    """NaN cells take the value of the nearest valid cell (inference input only)."""
    holes = np.isnan(z)
    if not holes.any():
        return z
    idx = ndimage.distance_transform_edt(holes, return_distances=False, return_indices=True)
    return z[tuple(idx)]


def upscale_like_runner(coarse: np.ndarray, scale: int, margin: int,
                        network: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """A network's fine grid with the runner's edge handling.

    Beyond the raster edge (margin coarse cells: the receptive field + 2) and in nodata, the
    network sees nearest-valid values, never its own zero padding; the output is NaN where the
    coarse cell is nodata. `network` maps a NaN-free coarse array to its fine array, in metres.
    """
    fine = network(fill_nearest(np.pad(coarse, margin, constant_values=np.nan)))
    m = margin * scale
    fine = fine[m:m + coarse.shape[0] * scale, m:m + coarse.shape[1] * scale]
    return np.where(np.kron(np.isfinite(coarse), np.ones((scale, scale), bool)), fine, np.nan)


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
        offset = float(coarse[np.isfinite(coarse)].mean())
        d = float(normalisation_scale(coarse_cell_m, norm["scale_m"], norm["scale_per_cell"]))
        name = self.session.get_inputs()[0].name

        def network(filled: np.ndarray) -> np.ndarray:
            x = (filled - offset) / d
            if self.card["input_space"] == "upsampled":
                x = bicubic_upsample(x, scale)
            x = x.astype(np.float32)[None, None]
            return self.session.run(["fine"], {name: x})[0][0, 0].astype(np.float64) * d + offset

        return upscale_like_runner(coarse, scale, int(self.card["receptive_field"]) + 2, network)


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


def carried_families(earlier: dict, scored: set[str], files: list[str],
                     scale_keys: list[str]) -> list[str]:
    """The model families of an earlier result of the same protocol that this run does not
    score (a baseline whose run folder is gone, say). Raises ValueError when the earlier result
    lacks one of their scores for a file and scale of this run, since the means would then not
    be over the same cells; checked before scoring, so a mismatch costs no run."""
    carried = {m["family"] for m in earlier["models"].values()} - scored
    if not carried:
        return []
    for name in files:
        for scale_key in scale_keys:
            old = earlier["per_file"].get(name, {}).get(scale_key)
            if old is None or not carried <= set(old):
                raise ValueError(f"the earlier result has no {', '.join(sorted(carried))} "
                                 f"score for {name} {scale_key}")
    return sorted(carried)


def carry_over(per_file: dict, models: dict, earlier: dict, carried: list[str]) -> None:
    """Add the `carried` families' scores and model records from `earlier` to this run's
    `per_file` and `models` (in place), cell by cell."""
    for name, scales in per_file.items():
        for scale_key, methods in scales.items():
            methods.update({f: earlier["per_file"][name][scale_key][f] for f in carried})
    models.update({n: m for n, m in earlier["models"].items() if m["family"] in carried})


def summarise_products(per_file: dict, products: dict[str, str]) -> dict:
    """The mean over each product's files, per scale and method (``summarise`` per product)."""
    out = {}
    for product in [p for p in PRODUCTS if p in set(products.values())]:
        files = {f: v for f, v in per_file.items() if products.get(f) == product}
        if files:
            out[product] = {"files": sorted(files), "summary": summarise(files)}
    return out


def product_checks(per_file: dict, products: dict[str, str], method: str,
                   reference: str = "lanczos", target: float = PRODUCT_TARGET,
                   limit: float = FILE_LIMIT) -> dict:
    """Ratios of `method` to `reference` per product and scale, and the files above `limit`.

    A product meets the target when, at every scale, both its mean RMSE and its mean slope RMSE
    are at most `target` times the reference's (ratio of the means over its files). A file
    exceeds the limit when its own RMSE or slope RMSE ratio is above `limit` at any scale.
    """
    by_product = summarise_products(per_file, products)
    checks: dict = {"method": method, "reference": reference, "target": target,
                    "limit": limit, "products": {}, "files_over_limit": []}
    for product, block in by_product.items():
        ratios = {}
        for scale_key, methods in sorted(block["summary"].items()):
            if method not in methods:
                continue
            ref, m = methods[reference], methods[method]
            ratios[scale_key] = {"rmse": m["rmse"] / ref["rmse"],
                                 "slope": m["slope_rmse_deg"] / ref["slope_rmse_deg"]}
        meets = bool(ratios) and all(r["rmse"] <= target and r["slope"] <= target
                                     for r in ratios.values())
        checks["products"][product] = {"files": block["files"], "ratios": ratios,
                                       "meets_target": meets}
    for name, scales in sorted(per_file.items()):
        for scale_key, methods in sorted(scales.items()):
            if method not in methods:
                continue
            ref, m = methods[reference], methods[method]
            r_rmse = m["rmse"] / ref["rmse"]
            r_slope = m["slope_rmse_deg"] / ref["slope_rmse_deg"]
            if r_rmse > limit or r_slope > limit:
                checks["files_over_limit"].append(
                    {"file": name, "product": products.get(name), "scale": scale_key,
                     "rmse_ratio": r_rmse, "slope_ratio": r_slope})
    return checks


def products_markdown(by_product: dict, checks: dict, methods=("bicubic", "lanczos")) -> str:
    """Per product and scale: RMSE and slope RMSE of the model beside the baselines, ratios."""
    model = checks["method"]
    lines = ["| product | files | scale | RMSE " + model + " m | RMSE bicubic m | RMSE Lanczos m"
             " | slope " + model + " ° | slope bicubic ° | slope Lanczos ° | RMSE / Lanczos "
             "| slope / Lanczos |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- "
             "| --- |"]
    for product, block in by_product.items():
        for scale_key, ms in sorted(block["summary"].items()):
            if model not in ms:
                continue
            m, b, lz = ms[model], ms[methods[0]], ms[methods[1]]
            lines.append(
                f"| {product} | {len(block['files'])} | {scale_key} | {m['rmse']:.2f} | "
                f"{b['rmse']:.2f} | {lz['rmse']:.2f} | {m['slope_rmse_deg']:.2f} | "
                f"{b['slope_rmse_deg']:.2f} | {lz['slope_rmse_deg']:.2f} | "
                f"{m['rmse'] / lz['rmse']:.3f} | "
                f"{m['slope_rmse_deg'] / lz['slope_rmse_deg']:.3f} |")
    return "\n".join(lines)


def compact_products_table(by_product: dict, model: str, scales=("x2", "x3", "x4")) -> str:
    """The README's table: per product, bicubic, Lanczos and the model as "RMSE m / slope
    RMSE °" per scale (means over the product's held-out files), then the model's ratios."""
    names = {"bicubic": "bicubic", "lanczos": "Lanczos", model: f"**`{model}`**"}
    lines = ["| product (held-out files) | method | " + " | ".join(s.replace("x", "×")
                                                                  for s in scales) + " |",
             "| --- | --- | " + " | ".join("---" for _ in scales) + " |"]
    for product, block in by_product.items():
        summary = block["summary"]
        label = f"{product} ({len(block['files'])})"
        for method, name in names.items():
            cells = [f"{summary[s][method]['rmse']:.2f} / "
                     f"{summary[s][method]['slope_rmse_deg']:.2f}" for s in scales]
            lines.append(f"| {label} | {name} | " + " | ".join(cells) + " |")
            label = ""
        ratio = {s: {k: summary[s][model][k] / summary[s]["lanczos"][k]
                     for k in ("rmse", "slope_rmse_deg")} for s in scales}
        ratios = [f"{ratio[s]['rmse']:.2f} / {ratio[s]['slope_rmse_deg']:.2f}" for s in scales]
        lines.append(f"| | `{model}` / Lanczos | " + " | ".join(ratios) + " |")
    return "\n".join(lines)


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
    p.add_argument("--files", nargs="+", default=None,
                   help="file names in --data-dir (default: the held-out SRTM files)")
    p.add_argument("--manifest", type=Path, default=None,
                   help="score the manifest's held-out rows, with per-product means")
    p.add_argument("--products", nargs="+", default=None, choices=PRODUCTS,
                   help="with --manifest: only these products")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="default: the SRTM corpus, or training/corpus/ with --manifest")
    p.add_argument("--degradation", choices=sorted(DEGRADATIONS), default="block_mean")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-size", type=int, default=None,
                   help="score only a central window of at most this many fine cells a side")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/sr_validation.json"))
    p.add_argument("--markdown", type=Path, default=None,
                   help="with --manifest: also write the per-product tables here")
    p.add_argument("--carry-from", type=Path, default=None,
                   help="an earlier result (same files, scales and degradation) whose models "
                        "not given here are kept in the tables, e.g. a baseline not on this "
                        "machine")
    args = p.parse_args(argv)
    if args.manifest is None and (args.products or args.markdown):
        p.error("--products and --markdown need --manifest")
    if args.data_dir is None:
        args.data_dir = CORPUS_DIR if args.manifest is not None else DATA_DIR
    products: dict[str, str] = {}
    if args.manifest is not None:
        entries = [e for e in read_manifest(args.manifest) if e.split == "holdout"
                   and (args.products is None or e.product in args.products)]
        products = products_of(entries)
        if args.files is None:
            args.files = [e.file for e in entries]
    if args.files is None:
        args.files = list(VALIDATION_FILES)

    models = load_models(args.models, args.threads)
    print(f"models: {', '.join(m.path.name for m in models)}", flush=True)
    window = (f"central {args.max_size} x {args.max_size} fine cells" if args.max_size
              else "whole files")
    earlier, carried = None, []
    if args.carry_from is not None:
        earlier = json.loads(args.carry_from.read_text())
        if (earlier["degradation"], earlier["window"]) != (args.degradation, window):
            p.error(f"{args.carry_from} was scored on {earlier['window']} with "
                    f"{earlier['degradation']} degradation, this run on {window} with "
                    f"{args.degradation}")
        try:
            carried = carried_families(earlier, {m.card["family"] for m in models}, args.files,
                                       [f"x{s}" for s in args.scales])
        except ValueError as e:
            p.error(f"{args.carry_from}: {e}")
    per_file: dict = {}
    windows: dict = {}
    for name in args.files:
        dem = central_window(load_dem(args.data_dir / name), args.max_size)
        windows[name] = list(dem.z.shape)
        per_file[name] = {f"x{s}": evaluate_file(dem, s, models, args.degradation,
                                                  lambda m: print(m, flush=True))
                          for s in args.scales}
    scored_models = {m.path.name: {k: m.card[k] for k in ("family", "scales", "parameters",
                                                          "macs_per_output_mp", "trained_on")}
                     for m in models}
    if earlier is not None:
        carry_over(per_file, scored_models, earlier, carried)
        print(f"carried over from {args.carry_from}: {', '.join(carried) or 'nothing'}")
    summary = summarise(per_file)
    result = {
        "protocol": "docs/DESIGN.md §7: truth = held-out real DEM, coarse = S x S "
                    f"{args.degradation}, border 2·S excluded, mean over files",
        "degradation": args.degradation,
        "validation_files": args.files,
        "window": window,
        "window_shapes": windows,
        "models": scored_models,
        "summary": summary,
        "per_file": per_file,
    }
    tables = []
    if products:
        by_product = summarise_products(per_file, products)
        families = sorted({m.family for m in models})
        result["manifest"] = str(args.manifest)
        result["products"] = products
        result["per_product"] = by_product
        result["checks"] = {f: product_checks(per_file, products, f) for f in families}
        for family in families:
            tables.append(products_markdown(by_product, result["checks"][family]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    if args.markdown is not None:
        args.markdown.write_text(products_report(result, tables))
    print(markdown_table(summary))
    for table in tables:
        print()
        print(table)
    if "x3" in summary and not products:
        print()
        print(reproduction_table(summary))


def products_report(result: dict, tables: list[str]) -> str:
    """The markdown companion of the per-product JSON: tables, then the two checks."""
    lines = ["# Super-resolution per product (held-out files of training/corpus.csv)", "",
             f"Protocol: {result['protocol']}; {result['window']} "
             "(`python -m training.evaluate --manifest training/corpus.csv`, "
             "numbers in the JSON beside this file).", ""]
    for family, table in zip(sorted(result["checks"]), tables):
        checks = result["checks"][family]
        lines += [f"## {family}", "", table, "",
                  "The same as \"RMSE m / slope RMSE °\" (the README's table):", "",
                  compact_products_table(result["per_product"], family), ""]
        lines += [f"Products at most {checks['target']:.2f} × Lanczos (RMSE and slope RMSE, "
                  "every scale):"]
        for product, c in checks["products"].items():
            worst = max(max(r["rmse"], r["slope"]) for r in c["ratios"].values())
            verdict = "meets" if c["meets_target"] else "does not meet"
            lines.append(f"- {product}: {verdict} (worst ratio {worst:.3f}; files: "
                         f"{', '.join(c['files'])})")
        for product in PRODUCTS:
            if product not in checks["products"]:
                lines.append(f"- {product}: no held-out file (none in the corpus; see "
                             "training/CORPUS.md)")
        over = checks["files_over_limit"]
        lines += ["", f"Files above {checks['limit']:.2f} × Lanczos (RMSE or slope RMSE):"]
        lines += [f"- {o['file']} ({o['product']}) {o['scale']}: RMSE ratio "
                  f"{o['rmse_ratio']:.3f}, slope ratio {o['slope_ratio']:.3f}" for o in over]
        if not over:
            lines.append("- none")
        lines += ["", "Per file (" + family + " / Lanczos):", "",
                  "| file | product | scale | RMSE " + family + " m | RMSE Lanczos m | RMSE ratio "
                  "| slope ratio |", "| --- | --- | --- | --- | --- | --- | --- |"]
        for name, scales in result["per_file"].items():
            for scale_key, ms in sorted(scales.items()):
                if family not in ms:
                    continue
                m, lz = ms[family], ms["lanczos"]
                lines.append(f"| {name} | {result['products'].get(name, '')} | {scale_key} | "
                             f"{m['rmse']:.3f} | {lz['rmse']:.3f} | "
                             f"{m['rmse'] / lz['rmse']:.3f} | "
                             f"{m['slope_rmse_deg'] / lz['slope_rmse_deg']:.3f} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
