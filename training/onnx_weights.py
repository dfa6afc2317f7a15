"""Networks rebuilt from the weights of their bundled ONNX files, so that a model shipped in
``models/`` can be fine-tuned (``train.py --init models/fastsr_x2.onnx ...``) when its
training checkpoint is no longer on the machine.

The ONNX initialisers keep PyTorch's parameter names under the export wrapper's ``model.``
prefix; the fixed bicubic kernels are buffers rebuilt by the network itself.
"""
from __future__ import annotations

from pathlib import Path

import onnx
import torch
from torch import nn

from core.superres.models import read_card_items
from training import networks


def onnx_weights(path: Path | str) -> dict[str, torch.Tensor]:
    """The file's parameters by their PyTorch names (export wrapper prefix removed)."""
    return {i.name.removeprefix("model."): torch.from_numpy(onnx.numpy_helper.to_array(i).copy())
            for i in onnx.load(str(path)).graph.initializer if i.name.startswith("model.")}


def _load(model: nn.Module, weights: dict[str, torch.Tensor], source: str) -> nn.Module:
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise ValueError(f"{source}: weights do not fit {type(model).__name__}: "
                         f"missing {missing}, unexpected {unexpected}")
    return model.eval()


def vdsr30_from_onnx(path: Path | str) -> nn.Module:
    """The Vdsr30 network rebuilt from the weights of one of its ONNX exports."""
    weights = {k: v for k, v in onnx_weights(path).items() if k.startswith("body")}
    return _load(networks.Vdsr30(), weights, str(path))


def fastsr_from_onnx(paths: list[Path | str]) -> nn.Module:
    """One FastSR from its per-scale files: the shared body must be identical in all of them
    (it is one set of weights), each file adds its own scale's last conv."""
    body: dict[str, torch.Tensor] | None = None
    tails: dict[str, torch.Tensor] = {}
    scales = []
    for path in paths:
        weights = onnx_weights(path)
        scale = read_card_items(str(path))["scales"][0]
        scales.append(scale)
        own = {k: v for k, v in weights.items() if k.startswith(f"tails.{scale}.")}
        shared = {k: v for k, v in weights.items() if not k.startswith("tails.")}
        if body is None:
            body = shared
        elif body.keys() != shared.keys() or any(not torch.equal(body[k], shared[k])
                                                  for k in body):
            raise ValueError(f"{path}: its shared body differs from {paths[0]}'s; "
                             "these files are not one FastSR")
        tails.update(own)
    if body is None:
        raise ValueError("no ONNX file given")
    channels = body["head.weight"].shape[0]
    blocks = len({k.split(".")[1] for k in body if k.startswith("body.")})
    model = networks.FastSR(scales=sorted(scales), channels=channels, blocks=blocks)
    return _load(model, {**body, **tails}, ", ".join(map(str, paths)))


def checkpoint_from_onnx(paths: list[Path | str]) -> dict:
    """A training checkpoint (weights, config, the card's training stages and files) for
    ``train.py --init``: what the shipped model's own checkpoint would have held."""
    items = read_card_items(str(paths[0]))
    family = items["family"]
    if family == "fastsr":
        model = fastsr_from_onnx(paths)
        config = {"scales": list(model.scales), "channels": model.channels,
                  "blocks": model.blocks}
    elif family == "vdsr30":
        if len(paths) != 1:
            raise ValueError("vdsr30 is one file for every scale; give only that file")
        model = vdsr30_from_onnx(paths[0])
        config = {"scales": items["scales"]}
    else:
        raise ValueError(f"{paths[0]}: cannot rebuild a {family!r} network from ONNX")
    return {"family": family, "config": config, "model": model.state_dict(),
            "train_files": items["training_data"],
            "stages": items["trained_on"]["stages"]}
