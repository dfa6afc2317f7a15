"""Tiny ONNX super-resolution models built with onnx.helper, with hand-computable outputs.

- "nearest": Resize nearest ×S — output = each coarse cell repeated S × S (receptive field 0).
- "smooth": coarse 5×5 zero-sum residual conv, nearest ×S, fine 3×3 zero-sum residual conv, both
  zero-padded: offset-equivariant like the real networks, receptive field 2 + 1 = 3 coarse cells,
  and wrong near a tile border unless the runner keeps only tile centres.
- "upsampled": input already on the fine grid (VDSR style): x + 3×3 zero-sum conv.
Cards follow the contract of core.superres.models; `card=None` writes no card, `extra`
adds/overrides keys.
"""
from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

NORMALISATION = {"offset": "tile_mean", "scale_m": 0.0, "scale_per_cell": 0.1}
RECEPTIVE_FIELD = {"nearest": 0, "smooth": 3, "upsampled": 1}

LAPLACE = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32)


def _zero_sum(k: int, seed: int, amp: float) -> np.ndarray:
    w = np.random.default_rng(seed).normal(size=(k, k)).astype(np.float32)
    return (amp * (w - w.mean())).reshape(1, 1, k, k)


def _conv_residual(x: str, name: str, weights: np.ndarray, nodes: list, inits: list) -> str:
    k = weights.shape[-1]
    inits.append(numpy_helper.from_array(weights, f"{name}_w"))
    nodes.append(helper.make_node("Conv", [x, f"{name}_w"], [f"{name}_c"],
                                  pads=[k // 2] * 4, kernel_shape=[k, k]))
    nodes.append(helper.make_node("Add", [x, f"{name}_c"], [f"{name}_out"]))
    return f"{name}_out"


def _resize(x: str, scale: int, nodes: list, inits: list) -> str:
    inits.append(numpy_helper.from_array(np.array([1, 1, scale, scale], np.float32), "scales"))
    nodes.append(helper.make_node(
        "Resize", [x, "", "scales"], ["up"], mode="nearest",
        coordinate_transformation_mode="asymmetric", nearest_mode="floor",
    ))
    return "up"


def build_model(kind: str, scale: int, two_inputs: bool = False, strength: float = 0.05):
    nodes: list = []
    inits: list = []
    if kind == "nearest":
        y = _resize("x", scale, nodes, inits)
    elif kind == "smooth":
        a = _conv_residual("x", "coarse", _zero_sum(5, 1, strength), nodes, inits)
        b = _resize(a, scale, nodes, inits)
        y = _conv_residual(b, "fine", 0.1 * LAPLACE.reshape(1, 1, 3, 3), nodes, inits)
    elif kind == "upsampled":
        y = _conv_residual("x", "fine", 0.1 * LAPLACE.reshape(1, 1, 3, 3), nodes, inits)
    else:
        raise ValueError(kind)
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, "H", "W"])]
    out_name = "y"
    if two_inputs:
        inputs.append(helper.make_tensor_value_info("x2", TensorProto.FLOAT, ["N", 1, "h", "w"]))
        nodes.append(helper.make_node("Add", [y, "x2"], ["y_sum"]))
        y = "y_sum"
    nodes.append(helper.make_node("Identity", [y], [out_name]))
    outputs = [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, ["N", 1, "h", "w"])]
    graph = helper.make_graph(nodes, f"demsr_test_{kind}", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model, out_name


def card_for(kind: str, scale: int, family: str | None = None) -> dict:
    return {
        "card_version": 1,
        "family": family or f"test{kind}",
        "scales": [scale],
        "input_space": "upsampled" if kind == "upsampled" else "coarse",
        "input_name": "x",
        "output_name": "y",
        "normalisation": NORMALISATION,
        "receptive_field": RECEPTIVE_FIELD[kind],
        "architecture": f"test model '{kind}'",
    }


def write_model(path, kind: str = "smooth", scale: int = 2, card: dict | None | str = "default",
                extra: dict | None = None, two_inputs: bool = False,
                strength: float = 0.05) -> str:
    """Write a test model to `path` and return the path as a string; `strength` is the size of
    the smooth model's coarse residual weights."""
    model, out_name = build_model(kind, scale, two_inputs, strength)
    if card == "default":
        card = card_for(kind, scale)
        card["output_name"] = out_name
    if card is not None:
        card = dict(card, **(extra or {}))
        helper.set_model_props(model, {k: json.dumps(v) for k, v in card.items()})
    onnx.save(model, str(path))
    return str(path)
