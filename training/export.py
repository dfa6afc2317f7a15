"""Export a training checkpoint to one ONNX file per scale, with the model card inside.

    python -m training.export training/runs/fastsr/last.pt --out models/ [--scales 2 3 4]
        [--validation benchmarks/results/sr_validation.json]

Each file ``<family>_x<S>.onnx`` has one input ``coarse`` (N, 1, H, W) and one output ``fine``
(N, 1, H*S, W*S), both normalised as the card says, dynamic H and W, and the card of
docs/DESIGN.md §3
as JSON strings in ``metadata_props``. After writing, onnxruntime is run beside PyTorch on a real
(or synthetic) coarse tile of odd, non-square size and the export fails if they differ by more
than 1e-3 m.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from core.superres.models import normalisation_scale, read_card_items
from training.onnx_weights import vdsr30_from_onnx
from training.train import load_checkpoint, model_from_checkpoint, predict, training_stage

CARD_VERSION = 1
PARITY_TOLERANCE_M = 1e-3
OPSET = 17
PLUGIN_LICENSE = "GPL-2.0-or-later, as the plugin"
# Article 4 of the Copernicus DEM licence: products made from the data carry this notice.
COPERNICUS_NOTICE = ("produced using Copernicus WorldDEM-30 © DLR e.V. 2010-2014 and © Airbus "
                     "Defence and Space GmbH 2014-2018 provided under COPERNICUS by the European "
                     "Union and ESA; all rights reserved")
DATA_TERMS = {"SRTM": "public-domain SRTM data", "Copernicus": "Copernicus GLO-30 data",
              "LiDAR-derived": "LiDAR DTMs (public domain and CC BY 4.0)",
              "ASTER/ALOS": "ASTER/ALOS data"}


def model_license(train_files: list[str]) -> str:
    """The card's licence line: the plugin's licence, the kinds of data the weights were trained
    on (products from the corpus manifest; files it does not list are the SRTM corpus's) and
    any notice their licences require of derived products."""
    from training.corpus import products_of, read_manifest

    product = products_of(read_manifest())
    products = sorted({product.get(f, "SRTM") for f in train_files}, key=list(DATA_TERMS).index)
    text = (f"{PLUGIN_LICENSE}; trained on {', '.join(DATA_TERMS[p] for p in products)} "
            "(files, sources and licences: models/MODELS.md)")
    if "Copernicus" in products:
        text += "; " + COPERNICUS_NOTICE
    return text


class FixedScale(nn.Module):
    """The network with its scale bound, so the ONNX graph has the single input ``coarse``."""

    def __init__(self, model: nn.Module, scale: int):
        super().__init__()
        self.model = model
        self.scale = scale

    def forward(self, coarse: torch.Tensor) -> torch.Tensor:
        return self.model(coarse, self.scale)


class BodyOnUpsampled(nn.Module):
    """A network whose weights do not depend on the scale (VDSR: the scale only picks the
    bicubic front) as one graph on the bicubic-upsampled tile, which the runner makes
    (core.superres.inference.bicubic_upsample, the same operator): one file then serves every
    scale."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, upsampled: torch.Tensor) -> torch.Tensor:
        return upsampled + self.model.body(upsampled)


# Families exported as one BodyOnUpsampled file instead of one file per scale.
SHARED_SCALE_FAMILIES = ("vdsr30",)


def export_shared_onnx(model: nn.Module, path: Path) -> None:
    wrapper = BodyOnUpsampled(model.eval()).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper, (torch.zeros(1, 1, 48, 40),), str(path), input_names=["upsampled"],
            output_names=["fine"],
            dynamic_axes={"upsampled": {0: "n", 2: "h", 3: "w"}, "fine": {0: "n", 2: "h", 3: "w"}},
            opset_version=OPSET, dynamo=False,
        )


def shared_card(cards: dict[int, dict]) -> dict:
    """One card for every scale from the per-scale cards of the same weights: the largest
    receptive field (the runner's halo must cover every scale) and each scale's scores."""
    first = cards[min(cards)]
    return {
        **first,
        "scales": sorted(cards),
        "input_space": "upsampled",
        "input_name": "upsampled",
        "receptive_field": max(c["receptive_field"] for c in cards.values()),
        "validation": {f"x{s}": c["validation"] for s, c in sorted(cards.items())},
    }


def parameters_at_scale(model: nn.Module, scale: int) -> int:
    """Parameters the scale's graph uses: shared ones plus only this scale's own modules."""
    own = {str(scale)}
    total = 0
    for name, p in model.named_parameters():
        parts = name.split(".")
        if parts[0] in ("tails", "upsample") and parts[1] not in own:
            continue
        total += p.numel()
    return total


def export_onnx(model: nn.Module, scale: int, path: Path) -> None:
    """Trace the fixed-scale network to ONNX with dynamic batch, height and width."""
    wrapper = FixedScale(model.eval(), scale).eval()
    dummy = torch.zeros(1, 1, 24, 20)
    with warnings.catch_warnings():
        # The legacy exporter is chosen on purpose (plain ops, dynamic axes, no extra deps) and
        # warns about itself and about an unfoldable edge-pad slice; neither affects the graph.
        warnings.simplefilter("ignore")
        _export(wrapper, dummy, path)


def _export(wrapper: nn.Module, dummy: torch.Tensor, path: Path) -> None:
    torch.onnx.export(
        wrapper, (dummy,), str(path), input_names=["coarse"], output_names=["fine"],
        dynamic_axes={"coarse": {0: "n", 2: "h", 3: "w"}, "fine": {0: "n", 2: "hs", 3: "ws"}},
        opset_version=OPSET, dynamo=False,
    )


def card(ckpt: dict, model: nn.Module, scale: int, validation: dict,
         default: bool = False) -> dict:
    """The model card of docs/DESIGN.md §3 (values are JSON-encoded when stored)."""
    stages = training_stages(ckpt)
    return {
        "card_version": CARD_VERSION,
        "family": ckpt["family"],
        "scales": [scale],
        "input_space": "coarse",
        "input_name": "coarse",
        "output_name": "fine",
        "normalisation": ckpt["normalisation"],
        "receptive_field": int(model.receptive_field(scale)),
        "architecture": model.architecture(),
        "parameters": parameters_at_scale(model, scale),
        "macs_per_output_mp": float(model.macs_per_output_pixel(scale) * 1e6),
        "activation_bytes_per_output_pixel": int(model.activation_bytes_per_output_pixel(scale)),
        "default": default,
        "training_data": ckpt["train_files"],
        "validation_files": ckpt["validation_files"],
        "degradation": ckpt["degradation"],
        "validation": validation,
        "trained_on": {
            "device": ckpt["device"],
            "minutes": round(sum(st["minutes"] for st in stages), 1),
            "steps": sum(st["steps"] for st in stages),
            "stages": stages,
            "scales_trained_together": ckpt["config"]["scales"],
            "exported": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%MZ"),
        },
        "license": model_license(ckpt["train_files"]),
    }


def training_stages(ckpt: dict) -> list[dict]:
    """Every run that shaped the weights, oldest first (a fine-tune names the run it began
    from), each with its steps, minutes, device, loss and learning rate."""
    stages = []
    stage = training_stage(ckpt)
    while stage is not None:
        stages.append({k: v for k, v in stage.items() if k != "init_from"})
        stage = stage["init_from"]
    return stages[::-1]


def validation_entry(ckpt: dict, scale: int, results_path: Path | None) -> dict:
    """This scale's scores: full held-out files from evaluate.py when given, else the crops."""
    if results_path is not None and results_path.exists():
        results = json.loads(results_path.read_text())
        entry = results.get("summary", {}).get(f"x{scale}", {})
        methods = {k: v for k, v in entry.items()
                   if k in (ckpt["family"], "bicubic", "lanczos")}
        if ckpt["family"] in methods:
            return {"source": "evaluate.py, whole held-out files, mean over files", **methods}
    rows = [r for r in ckpt["history"][-1]["validation"] if r["scale"] == scale]
    if not rows:
        return {}
    r = rows[0]
    return {
        "source": "training crops of the held-out files (192x192), last epoch",
        ckpt["family"]: {"rmse": r["rmse"], "slope_rmse_deg": r["slope"]},
        "bicubic": {"rmse": r["rmse_bic"], "slope_rmse_deg": r["slope_bic"]},
    }


def write_card(path: Path, items: dict) -> None:
    model = onnx.load(str(path))
    del model.metadata_props[:]
    for key, value in items.items():
        prop = model.metadata_props.add()
        prop.key = key
        prop.value = json.dumps(value)
    onnx.save(model, str(path))


def parity_tile(scale: int) -> tuple[np.ndarray, float]:
    """A rough synthetic coarse tile in metres (odd, non-square) and its coarse cell size."""
    rng = np.random.default_rng(scale)
    y, x = np.mgrid[0:37, 0:53]
    z = 800 + 300 * np.sin(x / 7.0) * np.cos(y / 5.0) + np.cumsum(rng.normal(0, 8, (37, 53)), 1)
    return z.astype(np.float64), 90.0 * scale


def onnx_predict(session, coarse: np.ndarray, coarse_cell_m: float, card_norm: dict,
                 scale: int | None = None):
    """What the runner does: subtract the tile mean, divide by D, (bicubic-upsample by `scale`
    for a graph on the upsampled grid), run, scale back."""
    from core.superres.inference import bicubic_upsample

    offset = float(coarse.mean())
    d = float(normalisation_scale(coarse_cell_m, card_norm["scale_m"],
                                  card_norm["scale_per_cell"]))
    x = (coarse - offset) / d
    name = session.get_inputs()[0].name
    if name == "upsampled":
        x = bicubic_upsample(x, scale)
    x = x.astype(np.float32)[None, None]
    return session.run(["fine"], {name: x})[0][0, 0].astype(np.float64) * d + offset


def check_parity(path: Path, model: nn.Module, scale: int, norm: dict) -> float:
    """Max |onnxruntime - PyTorch| in metres on the parity tile; raises above tolerance."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    coarse, cell = parity_tile(scale)
    expected = predict(model, coarse, scale, cell)
    got = onnx_predict(session, coarse, cell, norm, scale)
    if got.shape != (coarse.shape[0] * scale, coarse.shape[1] * scale):
        raise AssertionError(f"ONNX output shape {got.shape} is wrong for x{scale}")
    diff = float(np.max(np.abs(got - expected)))
    if diff > PARITY_TOLERANCE_M:
        raise AssertionError(f"{path.name}: onnxruntime differs from PyTorch by {diff:.2e} m")
    return diff


def export_checkpoint(ckpt_path: Path | str, out_dir: Path, scales=None,
                      validation_json: Path | None = None, default: bool = False,
                      log=print) -> list[Path]:
    """Write, card and parity-check one ONNX file per scale; returns their paths."""
    ckpt = load_checkpoint(ckpt_path)
    model = model_from_checkpoint(ckpt)
    out_dir.mkdir(parents=True, exist_ok=True)
    scales = scales or ckpt["config"]["scales"]
    if ckpt["family"] in SHARED_SCALE_FAMILIES:
        cards = {s: card(ckpt, model, s, validation_entry(ckpt, s, validation_json), default)
                 for s in scales}
        return [export_shared(model, shared_card(cards), out_dir / f"{ckpt['family']}.onnx",
                              log)]
    paths = []
    for scale in scales:
        path = out_dir / f"{ckpt['family']}_x{scale}.onnx"
        tmp = path.with_suffix(".tmp.onnx")
        export_onnx(model, scale, tmp)
        entry = validation_entry(ckpt, scale, validation_json)
        write_card(tmp, card(ckpt, model, scale, entry, default))
        diff = check_parity(tmp, model, scale, ckpt["normalisation"])
        tmp.replace(path)  # atomic: the runner never sees a half-written model
        log(f"{path}: {path.stat().st_size / 1e6:.2f} MB, parity {diff:.1e} m, "
            f"step {ckpt['step']}")
        paths.append(path)
    return paths


def export_shared(model: nn.Module, items: dict, path: Path, log=print) -> Path:
    """Write, card and parity-check (at every scale of the card) one shared-scale file."""
    tmp = path.with_suffix(".tmp.onnx")
    export_shared_onnx(model, tmp)
    write_card(tmp, items)
    diffs = [check_parity(tmp, model, s, items["normalisation"]) for s in items["scales"]]
    tmp.replace(path)
    log(f"{path}: {path.stat().st_size / 1e6:.2f} MB, scales {items['scales']}, parity "
        f"{max(diffs):.1e} m")
    return path


def merge_shared_scales(paths: list[Path], out: Path, log=print) -> Path:
    """Turn per-scale exports of a shared-weight family (vdsr30_x2/x3/x4.onnx, identical
    weights) into one file for all their scales, with their cards merged."""
    cards = {read_card_items(str(p))["scales"][0]: read_card_items(str(p)) for p in paths}
    model = vdsr30_from_onnx(paths[0])
    for p in paths[1:]:  # the files must really hold the same weights
        other = vdsr30_from_onnx(p)
        if any(not torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                      other.state_dict().values())):
            raise ValueError(f"{p} holds other weights than {paths[0]}")
    return export_shared(model, shared_card(cards), out, log)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="Export a checkpoint to ONNX with its model card.")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--out", type=Path, default=Path("models"), help="output folder")
    p.add_argument("--scales", type=int, nargs="+", default=None)
    p.add_argument("--validation", type=Path, default=None,
                   help="sr_validation.json from training.evaluate, for the card's scores")
    p.add_argument("--default", action="store_true",
                   help="mark this family as the runner's default (the best one measured)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    export_checkpoint(args.checkpoint, args.out, args.scales, args.validation, args.default)


if __name__ == "__main__":
    main()
