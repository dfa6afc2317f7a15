"""Train a super-resolution network on the real DEMs, with whole files held out for validation.

    python -m training.train --model fastsr --scales 2 3 4 --minutes 60 --out training/runs/fastsr

Files: by default every GeoTIFF in --data-dir (the project's SRTM corpus) except the held-out
``VALIDATION_FILES``; with ``--manifest training/corpus.csv`` the rows marked ``train`` of the
multi-product corpus (in --data-dir, default training/corpus/, built by
``python -m training.build_corpus``), validated on the rows marked ``holdout``.

Adam with an exponentially decaying learning rate (decay driven by the fraction of the time or
step budget spent, so a short CPU run still ends at a low rate), AMP and channels-last when CUDA
is available, a checkpoint every epoch (``last.pt``, resumed with ``--resume``), a fixed seed,
a log line every few steps and a validation table on the held-out files every epoch. The model
kept is the last one: picking the "best" epoch on the validation files would tune on the files
we report.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (PyTorch's convention)

from core.superres.models import normalisation_scale
from core.terrain.slope import slope_degrees
from training import networks
from training.corpus import CORPUS_DIR, PRODUCTS, manifest_split, products_of, read_manifest
from training.dataset import (
    DATA_DIR,
    SCALE_M,
    SCALE_PER_CELL,
    VALIDATION_FILES,
    Dem,
    PatchSampler,
    block_mean,
    coarsened,
    load_dem,
    split_files,
    validation_crops,
)
from training.pack import load_packed


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Train a DEM super-resolution network.")
    p.add_argument("--model", choices=sorted(networks.NETWORKS), required=True)
    p.add_argument("--scales", type=int, nargs="+", default=[2, 3, 4])
    p.add_argument("--minutes", type=float, default=None, help="total time budget (all runs)")
    p.add_argument("--steps", type=int, default=None, help="total step budget (all runs)")
    p.add_argument("--out", type=Path, required=True, help="run folder (checkpoint, log)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--patch", type=int, default=96, help="fine patch size, a multiple of 12")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-final", type=float, default=0.05, help="final lr as a fraction")
    p.add_argument("--grad-weight", type=float, default=0.5,
                   help="weight of the loss on finite differences (slope accuracy)")
    p.add_argument("--loss", choices=["l1", "mse"], default="l1",
                   help="mse optimises RMSE, the reported score; l1 is more robust early on")
    p.add_argument("--init", type=Path, nargs="+", default=None,
                   help="start from these weights (fresh optimizer and budget): a checkpoint "
                        "(.pt), or a bundled model's ONNX files (fastsr: one per scale, "
                        "vdsr30: its one file), whose card supplies the earlier stages")
    p.add_argument("--coarsen", type=int, nargs="+", default=[1],
                   help="also train on the files block-averaged by these factors")
    p.add_argument("--clip", type=float, default=0.0, help="gradient norm clip (0: off)")
    p.add_argument("--epoch-steps", type=int, default=200)
    p.add_argument("--log-every", type=int, default=20)
    p.add_argument("--degradation", choices=["block_mean", "bicubic"], default="block_mean")
    p.add_argument("--channels", type=int, default=None, help="fastsr/vdsr30 width")
    p.add_argument("--blocks", type=int, default=None, help="fastsr residual blocks")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="folder of the GeoTIFFs (default: the SRTM corpus, or training/corpus/ "
                        "with --manifest)")
    p.add_argument("--packed", type=Path, default=None,
                   help="read the corpus from this archive (python -m training.pack) instead "
                        "of GeoTIFFs: trains where GDAL is not installed; needs --manifest")
    p.add_argument("--manifest", type=Path, default=None,
                   help="corpus manifest (training/corpus.csv): train on its 'train' rows, "
                        "validate on its 'holdout' rows")
    p.add_argument("--products", nargs="+", default=None, choices=PRODUCTS,
                   help="with --manifest: only these products")
    p.add_argument("--balance-products", action="store_true",
                   help="with --manifest: draw patches from every product equally often")
    p.add_argument("--product-shares", nargs="+", default=None, metavar="PRODUCT=SHARE",
                   type=product_share,
                   help="with --manifest: draw patches from the products in these relative "
                        "shares (e.g. SRTM=0.5 Copernicus=0.3 LiDAR-derived=0.2); a product "
                        "not named is not drawn from")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    if args.minutes is None and args.steps is None:
        p.error("give --minutes or --steps")
    if args.packed is not None and args.manifest is None:
        p.error("--packed needs --manifest (which files to train on and which to hold out)")
    if (args.products or args.balance_products or args.product_shares) and args.manifest is None:
        p.error("--products, --balance-products and --product-shares need --manifest")
    if args.balance_products and args.product_shares:
        p.error("give --balance-products (equal shares) or --product-shares, not both")
    if args.product_shares is not None:
        args.product_shares = dict(args.product_shares)
    if args.data_dir is None:
        args.data_dir = CORPUS_DIR if args.manifest is not None else DATA_DIR
    return args


def product_share(text: str) -> tuple[str, float]:
    """``PRODUCT=SHARE`` of --product-shares, checked."""
    product, _, share = text.partition("=")
    if product not in PRODUCTS:
        raise argparse.ArgumentTypeError(f"unknown product {product!r}; choose from {PRODUCTS}")
    try:
        value = float(share)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: the share must be a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: the share must not be negative")
    return product, value


def training_files(args: argparse.Namespace, packed: dict | None = None,
                   ) -> tuple[list[Path], list[Path]]:
    """Training and validation files: the manifest's split, or the fixed SRTM hold-out."""
    if args.manifest is not None:
        products = tuple(args.products) if args.products else None
        return manifest_split(read_manifest(args.manifest), args.data_dir, products,
                              set(packed) if packed is not None else None)
    return split_files(args.data_dir, VALIDATION_FILES)


def model_config(args: argparse.Namespace) -> dict:
    config = {"scales": sorted(args.scales)}
    if args.channels is not None:
        config["channels"] = args.channels
    if args.blocks is not None:
        config["blocks"] = args.blocks
    return config


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


LOSSES = {"l1": F.l1_loss, "mse": F.mse_loss}


def training_loss(pred: torch.Tensor, target: torch.Tensor, grad_weight: float,
                  kind: str = "l1") -> torch.Tensor:
    """Loss on elevations plus the same loss on the x and y finite differences (slope)."""
    distance = LOSSES[kind]
    loss = distance(pred, target)
    if grad_weight:
        dx = lambda t: t[..., :, 1:] - t[..., :, :-1]  # noqa: E731
        dy = lambda t: t[..., 1:, :] - t[..., :-1, :]  # noqa: E731
        loss = loss + grad_weight * (distance(dx(pred), dx(target))
                                     + distance(dy(pred), dy(target)))
    return loss


def budget_fraction(step: int, elapsed_s: float, args: argparse.Namespace) -> float:
    """How much of the run's budget (time or steps, whichever binds first) is spent."""
    fractions = []
    if args.minutes is not None:
        fractions.append(elapsed_s / (60 * args.minutes))
    if args.steps is not None:
        fractions.append(step / args.steps)
    return min(1.0, max(fractions))


def learning_rate(fraction: float, args: argparse.Namespace) -> float:
    """Exponential decay from lr to lr * lr_final over the budget."""
    return args.lr * args.lr_final ** fraction


@torch.no_grad()
def predict(model: torch.nn.Module, coarse: np.ndarray, scale: int, coarse_cell_m: float,
            device: torch.device | str = "cpu") -> np.ndarray:
    """Elevations in metres from a NaN-free coarse array, with the card's normalisation."""
    offset = float(coarse.mean())
    d = float(normalisation_scale(coarse_cell_m, SCALE_M, SCALE_PER_CELL))
    x = torch.from_numpy(((coarse - offset) / d).astype(np.float32))[None, None].to(device)
    return model(x, scale)[0, 0].float().cpu().numpy().astype(np.float64) * d + offset


def validate(model: torch.nn.Module, crops: list[Dem], scales, device) -> list[dict]:
    """Per scale: RMSE and slope RMSE of the model and of its own bicubic front, on the crops."""
    model.eval()
    rows = []
    for scale in scales:
        sums = {"n": 0, "rmse": 0.0, "rmse_bic": 0.0, "slope": 0.0, "slope_bic": 0.0}
        for crop in crops:
            fine = crop.z.astype(np.float64)
            coarse = block_mean(fine, scale)
            cell = crop.cell_m * scale
            pred = predict(model, coarse, scale, cell, device)
            base = _bicubic(model, coarse, scale, cell, device)
            b = 2 * scale
            inner = (slice(b, -b), slice(b, -b))
            truth_slope = slope_degrees(fine, crop.dx_m, crop.dy_m)[inner]
            for key, field in ((pred, ""), (base, "_bic")):
                sums["rmse" + field] += float(np.mean((key - fine)[inner] ** 2))
                s = slope_degrees(key, crop.dx_m, crop.dy_m)[inner]
                sums["slope" + field] += float(np.nanmean((s - truth_slope) ** 2))
            sums["n"] += 1
        n = sums.pop("n")
        rows.append({"scale": scale, **{k: math.sqrt(v / n) for k, v in sums.items()}})
    model.train()
    return rows


@torch.no_grad()
def _bicubic(model, coarse, scale, cell, device) -> np.ndarray:
    """The network's fixed bicubic front alone: the baseline its residual must improve on."""
    offset = float(coarse.mean())
    d = float(normalisation_scale(cell, SCALE_M, SCALE_PER_CELL))
    x = torch.from_numpy(((coarse - offset) / d).astype(np.float32))[None, None].to(device)
    return model.upsample[str(scale)](x)[0, 0].float().cpu().numpy() * d + offset


def format_table(rows: list[dict], epoch: int) -> str:
    lines = [f"validation after epoch {epoch} (held-out crops, metres / degrees)",
             "| scale | RMSE model | RMSE bicubic | ratio | slope RMSE model | slope bicubic |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| x{r['scale']} | {r['rmse']:.3f} | {r['rmse_bic']:.3f} | "
                     f"{r['rmse'] / r['rmse_bic']:.3f} | {r['slope']:.3f} | "
                     f"{r['slope_bic']:.3f} |")
    return "\n".join(lines)


def save_checkpoint(path: Path, state: dict) -> None:
    """Write atomically so that an export running beside training never reads half a file."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path | str) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def training_stage(ckpt: dict) -> dict:
    """What a checkpoint's own run did, with the run it started from (for the model card)."""
    args = ckpt.get("args", {})
    return {"run": args.get("out"), "steps": ckpt["step"],
            "minutes": round(ckpt["elapsed_s"] / 60, 1),
            "device": ckpt.get("device"), "loss": args.get("loss", "l1"),
            "lr": args.get("lr"), "coarsen": args.get("coarsen", [1]),
            "init_from": ckpt.get("init_from")}


def load_parent(paths: list[Path]) -> dict:
    """Weights, config, stage chain and training files to fine-tune from: one checkpoint, or
    a bundled model's ONNX files (its card gives the earlier stages, oldest first)."""
    if len(paths) == 1 and paths[0].suffix != ".onnx":
        ckpt = load_checkpoint(paths[0])
        return {"family": ckpt["family"], "config": ckpt["config"], "model": ckpt["model"],
                "stage": training_stage(ckpt), "train_files": ckpt.get("train_files", [])}
    from training.onnx_weights import checkpoint_from_onnx

    ckpt = checkpoint_from_onnx(paths)
    stage = None
    for earlier in ckpt["stages"]:
        stage = {**earlier, "init_from": stage}
    return {**ckpt, "stage": stage}


def deepens(parent: dict, family: str, config: dict) -> bool:
    """Whether `config` is the parent's FastSR with more residual blocks, all else equal."""
    if parent["family"] != "fastsr" or family != "fastsr":
        return False
    mine, theirs = dict(config), dict(parent["config"])
    more = mine.pop("blocks", None), theirs.pop("blocks", None)
    return None not in more and more[0] > more[1] and mine == theirs


def load_deepened(model: torch.nn.Module, parent_state: dict) -> None:
    """The parent's weights into a FastSR with more blocks: blocks beyond the parent's are
    appended before the body tail with their last conv zeroed, so each adds nothing (EDSR
    blocks are x + conv2(relu(conv1(x)))) until training moves it (Net2Net-style growth)."""
    own = model.state_dict()
    missing = [k for k in own if k not in parent_state]
    if any(not k.startswith("body.") for k in missing):
        raise SystemExit(f"--init lacks weights outside the new blocks: {missing}")
    with torch.no_grad():
        for name in missing:
            if ".conv2." in name:
                own[name].zero_()
    own.update(parent_state)
    model.load_state_dict(own)


def model_from_checkpoint(ckpt: dict) -> torch.nn.Module:
    model = networks.build(ckpt["family"], **ckpt["config"])
    model.load_state_dict(ckpt["model"])
    return model.eval()


# The bundled fastsr (stage 3c) as a PyTorch checkpoint, for benchmarks that start from it;
# tests/core/test_bundled_checkpoint.py checks that it computes what models/fastsr_x*.onnx do.
BUNDLED_FASTSR = Path(__file__).resolve().parent / "checkpoints" / "fastsr10_srtm_ft2.pt"


def bundled_fastsr() -> torch.nn.Module:
    """The bundled fastsr network in PyTorch, in eval mode."""
    return model_from_checkpoint(load_checkpoint(BUNDLED_FASTSR))


def train(args: argparse.Namespace, train_dems: list[Dem], val_dems: list[Dem],
          log=print) -> dict:
    """Run (or resume) training; returns the final checkpoint dict."""
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    device = pick_device()
    cuda = device.type == "cuda"
    args.out.mkdir(parents=True, exist_ok=True)
    ckpt_path = args.out / "last.pt"

    model = networks.build(args.model, **model_config(args)).to(device)
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    scaler = torch.amp.GradScaler("cuda", enabled=cuda)
    state = {"step": 0, "elapsed_s": 0.0, "history": [], "init_from": None,
             "inherited_train_files": []}
    if args.init is not None:
        parent = load_parent(args.init)
        if parent["family"] == args.model and parent["config"] == model_config(args):
            model.load_state_dict(parent["model"])
        elif deepens(parent, args.model, model_config(args)):
            load_deepened(model, parent["model"])
            log(f"deepened from {parent['config']['blocks']} to {model.blocks} residual "
                "blocks; the new ones start as the identity, so the network starts as the "
                "parent")
        else:
            raise SystemExit(f"--init holds a {parent['family']} {parent['config']}, not the "
                             f"{args.model} {model_config(args)} asked for (a fastsr can only "
                             "be given more --blocks)")
        state["init_from"] = parent["stage"]
        state["inherited_train_files"] = parent["train_files"]
        log(f"initialised from {', '.join(map(str, args.init))}")
    groups = None
    shares = getattr(args, "product_shares", None)
    if getattr(args, "balance_products", False) or shares:
        product = products_of(read_manifest(args.manifest))
        groups = [product[d.name] for d in train_dems for _ in args.coarsen]
    sampler = PatchSampler([coarsened(d, f) for d in train_dems for f in args.coarsen],
                           args.patch, seed=args.seed, degradation=args.degradation,
                           groups=groups, shares=shares)
    if groups:
        shares = {g: float(sampler.weights[[x == g for x in groups]].sum())
                  for g in dict.fromkeys(groups)}
        log("patches per product: " + ", ".join(f"{g} {v:.2f}" for g, v in shares.items()))
    crops = validation_crops(val_dems)
    if args.resume and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        state = {k: ckpt.get(k) for k in state}
        sampler.rng = np.random.default_rng([args.seed, state["step"]])
        log(f"resumed from {ckpt_path} at step {state['step']}")

    scales = sorted(args.scales)
    log(f"{args.model}: {networks.count_parameters(model):,} parameters on {device}, "
        f"{len(train_dems)} training files, {len(crops)} validation crops")
    start = time.monotonic() - state["elapsed_s"]
    loss_sum, loss_n, t_log = 0.0, 0, time.monotonic()
    while True:
        elapsed = time.monotonic() - start
        fraction = budget_fraction(state["step"], elapsed, args)
        if fraction >= 1.0:
            break
        lr = learning_rate(fraction, args)
        for group in opt.param_groups:
            group["lr"] = lr
        scale = scales[state["step"] % len(scales)]
        coarse, fine, _ = sampler.batch(args.batch, scale)
        x = torch.from_numpy(coarse).to(device)
        y = torch.from_numpy(fine).to(device)
        if cuda:
            x = x.to(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            pred = model(x, scale)
        loss = training_loss(pred.float(), y, args.grad_weight, args.loss)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if args.clip:
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        scaler.step(opt)
        scaler.update()
        state["step"] += 1
        loss_sum += loss.item()
        loss_n += 1
        if state["step"] % args.log_every == 0:
            rate = loss_n / (time.monotonic() - t_log)
            log(f"step {state['step']} | {100 * fraction:5.1f}% | loss {loss_sum / loss_n:.4f} "
                f"| lr {lr:.2e} | {rate:.2f} steps/s | {elapsed / 60:.1f} min")
            loss_sum, loss_n, t_log = 0.0, 0, time.monotonic()
        if state["step"] % args.epoch_steps == 0:
            _end_epoch(model, opt, state, args, crops, train_dems, device, start, log)
    if state["history"] and state["history"][-1]["step"] == state["step"]:
        return load_checkpoint(args.out / "last.pt")  # the budget ended on an epoch boundary
    return _end_epoch(model, opt, state, args, crops, train_dems, device, start, log)


def _end_epoch(model, opt, state, args, crops, train_dems, device, start, log) -> dict:
    """Validation table, history entry and checkpoint at the end of an epoch."""
    state["elapsed_s"] = time.monotonic() - start
    rows = validate(model, crops, sorted(args.scales), device) if crops else []
    epoch = state["step"] // args.epoch_steps
    if rows:
        log(format_table(rows, epoch))
    state["history"].append({"step": state["step"], "elapsed_s": state["elapsed_s"],
                             "validation": rows})
    ckpt = {
        "family": args.model,
        "config": model_config(args),
        "model": {k: v.detach().float().cpu() for k, v in model.state_dict().items()},
        "optimizer": opt.state_dict(),
        **state,
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "torch": torch.__version__,
        "normalisation": {"offset": "tile_mean", "scale_m": SCALE_M,
                          "scale_per_cell": SCALE_PER_CELL},
        "degradation": args.degradation,
        # A fine-tune's weights also carry what its parent was trained on.
        "train_files": sorted({d.name for d in train_dems}
                              | set(state.get("inherited_train_files") or [])),
        "validation_files": sorted({c.name for c in crops}),
        "device": _device_name(device, args.threads),
    }
    save_checkpoint(args.out / "last.pt", ckpt)
    return ckpt


def _device_name(device: torch.device, threads: int) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({threads} threads of a {os.cpu_count()}-core machine)"


def main(argv=None) -> None:
    args = parse_args(argv)
    packed = load_packed(args.packed) if args.packed is not None else None
    train_files, val_files = training_files(args, packed)
    train_dems = [packed[f.name] if packed else load_dem(f) for f in train_files]
    val_dems = [packed[f.name] if packed else load_dem(f) for f in val_files]
    log_path = args.out / "train.log"
    args.out.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as log_file:
        def log(message: str) -> None:
            print(message, flush=True)
            log_file.write(message + "\n")
            log_file.flush()
        log(f"$ {' '.join(sys.argv)}")
        ckpt = train(args, train_dems, val_dems, log)
        log(json.dumps({"final_step": ckpt["step"], "elapsed_s": round(ckpt["elapsed_s"], 1)}))


if __name__ == "__main__":
    main()
