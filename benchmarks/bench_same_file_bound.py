"""How far would training data of a held-out file's own product and terrain take `fastsr`?

A diagnostic, not a model to ship. The bundled `fastsr` was trained on SRTM only, and on the
Copernicus, ASTER and some LiDAR held-out files it gains much less over Lanczos than on SRTM.
Is that because it never saw such data (then more files of those products would close the
gap), or because their finest detail cannot be told from the coarse grid by a network of this
size, whatever it is trained on (then no corpus will)?

The closest thing to ideal training data for a file is the rest of that same file: same
sensor, processing chain, terrain and cell size. So each held-out file is cut in two halves
along its longer axis, the bundled weights are fine-tuned on one half and scored on the other,
then the other way round (two-fold cross-fitting). Scored cells lie at least GAP_COARSE coarse
cells beyond the cut, more than the network's receptive radius, so no scored cell's input
window reaches into the half whose truth was trained on. Lanczos, the bundled model and the
fine-tuned one are scored on the same cells; both folds' squared errors are pooled.

The recipe is fixed in the constants below. It was written down before the first run, except
the second, shorter length, added after that run showed the longer one over-fitting the
smallest files. The table's "best" column picks on the scored cells, so it is optimistic: a
bound, not an estimate. The held-out files stay held out for every shipped model: these
fine-tuned copies are thrown away.

    python benchmarks/bench_same_file_bound.py           # about 45 minutes on 2 CPU threads
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.superres.models import read_card_items  # noqa: E402
from core.superres.scoring import block_mean, upsample_baseline  # noqa: E402
from training.corpus import CORPUS_DIR, read_manifest  # noqa: E402
from training.dataset import Dem, PatchSampler, load_dem  # noqa: E402
from training.evaluate import upscale_like_runner  # noqa: E402
from training.train import bundled_fastsr, predict, training_loss  # noqa: E402

SCALES = (2, 3, 4)
# Fine-tune recipe: the bundled training's loss, a learning rate below its last cycle's start
# (the weights should adapt, not restart), scales taken in turn as in training. Two lengths:
# 3000 steps was the recipe; on the smallest files its copies over-fit one half and scored
# worse than the bundled model, so 300 steps was added and both are reported.
STEPS = (3000, 300)
TUNED = tuple(f"tuned_{n}" for n in STEPS)
LR_START, LR_END = 1e-4, 5e-6
BATCH = 5
MAX_PATCH = 72
GRAD_WEIGHT = 0.5
# fastsr sees 23 coarse cells across (radius 11); one more for the bicubic front.
GAP_COARSE = 12
# Scored cells per file and scale below which a row is not reported (too few to mean much).
MIN_CELLS = 1000


def halves(shape: tuple[int, int]) -> tuple[int, int]:
    """(axis, index) of the cut: across the longer axis, at its middle rounded down to 12."""
    axis = int(shape[1] > shape[0])
    return axis, shape[axis] // 2 // 12 * 12


def half_grid(z: np.ndarray, axis: int, cut: int, side: int) -> np.ndarray:
    """The part of z before (side 0) or from (side 1) the cut along the axis."""
    index = [slice(None), slice(None)]
    index[axis] = slice(0, cut) if side == 0 else slice(cut, None)
    return z[tuple(index)]


def scored_mask(shape: tuple[int, int], axis: int, cut: int, trained_side: int, scale: int,
                gap_coarse: int = GAP_COARSE) -> np.ndarray:
    """Fine cells scored when the half `trained_side` was trained on.

    Cells on the other side of the cut, at least gap_coarse coarse cells (gap_coarse * scale
    fine cells) from it and at least 2 * scale from the raster edge (the validation's border).
    """
    h, w = shape
    mask = np.zeros(shape, bool)
    b = 2 * scale
    mask[b:h - b, b:w - b] = True
    gap = gap_coarse * scale
    position = np.arange(shape[axis])
    beyond = position >= cut + gap if trained_side == 0 else position < cut - gap
    return mask & (beyond[:, None] if axis == 0 else beyond[None, :])


def fine_tuned(base: torch.nn.Module, train_half: Dem, steps: int, seed: int) -> torch.nn.Module:
    """A copy of `base` trained `steps` steps on (block mean -> truth) patches of the half."""
    model = copy.deepcopy(base).train()
    side = min(MAX_PATCH, min(train_half.z.shape) // 12 * 12)
    sampler = PatchSampler([train_half], side, seed=seed)
    opt = torch.optim.Adam(model.parameters(), lr=LR_START)
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = LR_START * (LR_END / LR_START) ** (step / steps)
        scale = SCALES[step % len(SCALES)]
        x, y, _ = sampler.batch(BATCH, scale)
        loss = training_loss(model(torch.from_numpy(x), scale), torch.from_numpy(y),
                             GRAD_WEIGHT, "mse")
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def upscaled(model: torch.nn.Module, coarse: np.ndarray, scale: int, coarse_cell_m: float,
             margin: int) -> np.ndarray:
    """The PyTorch model's fine grid, run as the plugin runs it."""
    return upscale_like_runner(coarse, scale, margin,
                               lambda filled: predict(model, filled, scale, coarse_cell_m))


def pooled_rmse(errors: list[np.ndarray]) -> tuple[float, int]:
    """RMSE over the finite values of several error arrays together, and their count."""
    values = np.concatenate([e[np.isfinite(e)] for e in errors])
    if values.size == 0:  # a file too small to keep any cell beyond the gap at this scale
        return float("nan"), 0
    return float(np.sqrt(np.mean(values ** 2))), int(values.size)


def file_rows(dem: Dem, base: torch.nn.Module, margin: int, log=print) -> list[dict]:
    """Per scale: Lanczos, bundled and fine-tuned RMSE (one per length in STEPS) on both
    folds' scored cells."""
    axis, cut = halves(dem.z.shape)
    methods = ("lanczos", "bundled") + TUNED
    # Per scale: the truth, its coarse grid and the predictions that do not depend on the fold.
    grids = {}
    for s in SCALES:
        h, w = dem.z.shape[0] // s * s, dem.z.shape[1] // s * s
        truth = dem.z[:h, :w].astype(np.float64)
        coarse = block_mean(truth, s)
        grids[s] = (truth, coarse, {
            "lanczos": upsample_baseline(coarse, s, "lanczos"),
            "bundled": upscaled(base, coarse, s, dem.cell_m * s, margin)})
    errors = {s: {m: [] for m in methods} for s in SCALES}
    seconds = 0.0
    for side in (0, 1):
        half = Dem(dem.name, half_grid(dem.z, axis, cut, side), dem.dx_m, dem.dy_m)
        t = time.monotonic()
        tuned = {n: fine_tuned(base, half, n, seed=side) for n in STEPS}
        seconds += time.monotonic() - t
        for s in SCALES:
            truth, coarse, fixed = grids[s]
            mask = scored_mask(truth.shape, axis, cut, side, s)
            preds = {**fixed, **{f"tuned_{n}": upscaled(m, coarse, s, dem.cell_m * s, margin)
                                 for n, m in tuned.items()}}
            # Only cells every method and the truth have, so all see the same cells.
            ok = mask & np.isfinite(truth) & np.logical_and.reduce(
                [np.isfinite(p) for p in preds.values()])
            for name, pred in preds.items():
                errors[s][name].append((pred - truth)[ok])
    rows = []
    for s in SCALES:
        rmse = {name: pooled_rmse(e) for name, e in errors[s].items()}
        n = rmse["lanczos"][1]
        row = {"file": dem.name, "scale": s, "cells": n, "axis": axis, "cut": cut,
               "fine_tune_seconds": seconds}
        if n >= MIN_CELLS:
            row.update({f"rmse_{k}": v[0] for k, v in rmse.items()})
            log(f"{dem.name} x{s}: {n} cells, / Lanczos: " + ", ".join(
                f"{m} {row['rmse_' + m] / row['rmse_lanczos']:.3f}" for m in methods[1:]))
        rows.append(row)
    return rows


def markdown(rows: list[dict], products: dict[str, str]) -> str:
    lines = ["# Same-file bound: `fastsr` fine-tuned on one half of a held-out file, scored on "
             "the other", "",
             "Generated by `benchmarks/bench_same_file_bound.py` (see its docstring): the "
             f"bundled weights fine-tuned {' or '.join(map(str, STEPS))} steps (batch {BATCH}, "
             f"patches up to {MAX_PATCH}², Adam {LR_START:g} → {LR_END:g}, MSE + {GRAD_WEIGHT} "
             "× MSE of finite differences, x2/x3/x4 in turn) on one half, scored on the cells "
             f"of the other half at least {GAP_COARSE} coarse cells from the cut, both ways, "
             "errors pooled. RMSE / Lanczos on the same cells. *Best* is the lowest of the "
             "bundled model and the fine-tuned copies, chosen on the scored cells themselves: "
             "an optimistic figure, which is what a bound should be. A diagnostic: these "
             "copies are not shipped and the files stay held out.", "",
             "| file | product | scale | scored cells | Lanczos RMSE m | bundled | "
             + " | ".join(f"fine-tuned {n} steps" for n in STEPS) + " | best |",
             "| --- | --- | --- | --- | --- | --- | " + " | ".join("---" for _ in STEPS)
             + " | --- |"]
    for r in rows:
        head = f"| {r['file']} | {products[r['file']]} | x{r['scale']} | {r['cells']} |"
        if "rmse_lanczos" not in r:
            lines.append(head + " — | too few cells |" + " |" * (len(STEPS) + 1))
            continue
        ratios = [r[f"rmse_{m}"] / r["rmse_lanczos"] for m in ("bundled",) + TUNED]
        lines.append(head + f" {r['rmse_lanczos']:.3f} | "
                     + " | ".join(f"{x:.3f}" for x in ratios) + f" | {min(ratios):.3f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", type=Path, default=CORPUS_DIR)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", nargs="*", help="held-out file names (default: all)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results"
                   / "sr_same_file_bound")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    base = bundled_fastsr()
    # Like the runner: nearest-valid values over the whole receptive field (+2) beyond the edge.
    margin = int(read_card_items(str(ROOT / "models" / "fastsr_x2.onnx"))["receptive_field"]) + 2
    entries = [e for e in read_manifest() if e.split == "holdout"
               and (not args.only or e.file in args.only)]
    products = {e.file: e.product for e in entries}
    rows = []
    for entry in entries:
        rows += file_rows(load_dem(args.corpus / entry.file), base, margin)
        args.out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    args.out.with_suffix(".md").write_text(markdown(rows, products))
    print(markdown(rows, products))


if __name__ == "__main__":
    main()
