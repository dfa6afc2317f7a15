"""Model cards: read and check the card an ONNX file carries, and find the bundled models.

A model card is the ONNX ``metadata_props`` of the file, every value a JSON string
(docs/DESIGN.md §3).
The card is read with a few lines of protobuf wire-format parsing instead of the ``onnx`` package
or an onnxruntime session: listing the bundled models happens when QGIS loads the provider, must
work when onnxruntime is not installed, and must not load megabytes of weights per file.
"""
from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass, field

from ..errors import DemError

# The plugin folder (the repository root) holds models/: three levels up from core/superres/.
MODELS_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "models")
CARD_VERSION = 1
INPUT_SPACES = ("coarse", "upsampled")
REQUIRED_KEYS = (
    "card_version", "family", "scales", "input_space", "normalisation", "receptive_field",
)

# ModelProto field numbers (onnx.proto3): graph = 7, metadata_props = 14; inside a
# StringStringEntryProto key = 1 and value = 2.
_GRAPH_FIELD = 7
_METADATA_FIELD = 14


def normalisation_scale(coarse_cell_m, scale_m: float, scale_per_cell: float):
    """D of the card's normalisation x = (z − c) / D: D = scale_m + scale_per_cell · coarse cell
    (metres). The one definition, for the runner and for training; a number or an array."""
    return scale_m + scale_per_cell * coarse_cell_m


@dataclass(frozen=True)
class ModelCard:
    """What the runner needs to know about one ONNX super-resolution model."""

    path: str
    family: str
    scales: tuple[int, ...]
    input_space: str
    receptive_field: int
    scale_m: float
    scale_per_cell: float
    input_name: str | None = None
    output_name: str | None = None
    default: bool = False
    extra: dict = field(default_factory=dict, compare=False)

    def normalisation_scale(self, coarse_cell_m: float) -> float:
        """D of x = (z − c) / D for a coarse ground cell size in metres."""
        return normalisation_scale(coarse_cell_m, self.scale_m, self.scale_per_cell)

    def describe(self) -> str:
        arch = self.extra.get("architecture")
        return f"{self.family} ({arch})" if arch else self.family


def _varint(f, what: str) -> int:
    shift = result = 0
    while True:
        byte = f.read(1)
        if not byte:
            raise ValueError(f"truncated {what}")
        result |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return result
        shift += 7
        if shift > 63:
            raise ValueError(f"bad varint in {what}")


def _fields(f, end: int):
    """(field number, wire type, value or None) of one protobuf message up to offset `end`;
    length-delimited payloads are returned as (offset, length) so big ones can be skipped."""
    while f.tell() < end:
        key = _varint(f, "field key")
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        if wire == 0:
            yield number, wire, _varint(f, "varint")
        elif wire == 1:
            f.seek(8, os.SEEK_CUR)
            yield number, wire, None
        elif wire == 2:
            length = _varint(f, "length")
            start = f.tell()
            if start + length > end:
                raise ValueError("field runs past the end")
            yield number, wire, (start, length)
            f.seek(start + length)
        elif wire == 5:
            f.seek(4, os.SEEK_CUR)
            yield number, wire, None
        else:
            raise ValueError(f"wire type {wire}")
    if f.tell() != end:
        raise ValueError("message runs past the end")


def read_metadata(path: str) -> dict[str, str]:
    """The raw metadata_props of an ONNX file; DemError when the file is not an ONNX model."""
    if not os.path.isfile(path):
        raise DemError(f"The model file '{path}' does not exist.")
    size = os.path.getsize(path)
    props: dict[str, str] = {}
    seen_graph = False
    try:
        with open(path, "rb") as f:
            for number, wire, value in _fields(f, size):
                if number == _GRAPH_FIELD and wire == 2:
                    seen_graph = True
                elif number == _METADATA_FIELD and wire == 2:
                    start, length = value
                    entry: dict[int, str] = {}
                    for sub, sub_wire, sub_value in _fields(f, start + length):
                        if sub in (1, 2) and sub_wire == 2:
                            pos = f.tell()
                            f.seek(sub_value[0])
                            entry[sub] = f.read(sub_value[1]).decode("utf-8")
                            f.seek(pos)
                    f.seek(start + length)
                    props[entry.get(1, "")] = entry.get(2, "")
    except (ValueError, UnicodeDecodeError, OSError) as err:
        raise DemError(f"'{path}' is not a readable ONNX model ({err}).") from err
    if not seen_graph:
        raise DemError(f"'{path}' is not an ONNX model (no graph found in the file).")
    return props


def _json(props: dict[str, str], key: str, path: str):
    try:
        return json.loads(props[key])
    except json.JSONDecodeError as err:
        raise DemError(
            f"The model card of '{path}' is broken: '{key}' is not JSON ({props[key]!r})."
        ) from err


def read_card_items(path: str) -> dict:
    """Every item of an ONNX file's model card, JSON-decoded, unchecked ({} without a card):
    for tools that show or compare whole cards. The runner uses read_card."""
    props = read_metadata(path)
    return {k: _json(props, k, os.path.basename(path)) for k in props}


def read_card(path: str) -> ModelCard:
    """Read and check the model card of an ONNX file; a clear DemError names what is missing."""
    values = read_card_items(path)
    name = os.path.basename(path)
    if not values:
        raise DemError(
            f"'{name}' has no model card: its ONNX metadata_props are empty. A demsr model must "
            f"record {', '.join(REQUIRED_KEYS)} (model cards: docs/DESIGN.md, "
            "Super-resolution)."
        )
    missing = [k for k in REQUIRED_KEYS if k not in values]
    if missing:
        raise DemError(f"The model card of '{name}' lacks {', '.join(missing)}.")
    if values["card_version"] != CARD_VERSION:
        raise DemError(
            f"The model card of '{name}' has card_version {values['card_version']}; this "
            f"plugin reads version {CARD_VERSION}."
        )
    try:
        scales = tuple(int(s) for s in values["scales"])
        receptive_field = int(values["receptive_field"])
        norm = values["normalisation"]
        offset = norm.get("offset", "tile_mean")
        scale_m = float(norm["scale_m"])
        scale_per_cell = float(norm["scale_per_cell"])
    except (TypeError, KeyError, ValueError, AttributeError) as err:
        raise DemError(
            f"The model card of '{name}' is broken: scales, receptive_field or normalisation "
            f"({{'offset', 'scale_m', 'scale_per_cell'}}) cannot be read ({err})."
        ) from err
    if offset != "tile_mean":
        raise DemError(
            f"The model card of '{name}' asks for normalisation offset '{offset}'; only "
            "'tile_mean' is supported."
        )
    if values["input_space"] not in INPUT_SPACES:
        raise DemError(
            f"The model card of '{name}' has input_space '{values['input_space']}'; expected "
            f"one of {', '.join(INPUT_SPACES)}."
        )
    if not scales or receptive_field < 0 or scale_m + scale_per_cell <= 0:
        raise DemError(
            f"The model card of '{name}' is broken: scales must be listed, the receptive field "
            "must be ≥ 0 and the normalisation scale positive."
        )
    descriptive = {k: v for k, v in values.items() if k not in REQUIRED_KEYS}
    return ModelCard(
        path=str(path),
        family=str(values["family"]),
        scales=scales,
        input_space=values["input_space"],
        receptive_field=receptive_field,
        scale_m=scale_m,
        scale_per_cell=scale_per_cell,
        input_name=values.get("input_name"),
        output_name=values.get("output_name"),
        default=bool(values.get("default", False)),
        extra=descriptive,
    )


def require_scale(card: ModelCard, scale: int) -> None:
    if scale not in card.scales:
        raise DemError(
            f"The model '{os.path.basename(card.path)}' ({card.family}) does not support scale "
            f"x{scale}; its card lists x{', x'.join(map(str, card.scales))}."
        )


def bundled_cards(models_dir: str = MODELS_DIR) -> list[ModelCard]:
    """The cards of every readable model in models_dir; unreadable files are skipped here (the
    provider must still load) and reported when asked for by name."""
    cards = []
    for path in sorted(glob.glob(os.path.join(models_dir, "*.onnx"))):
        try:
            cards.append(read_card(path))
        except DemError:
            continue
    return cards


def bundled_families(models_dir: str = MODELS_DIR) -> tuple[list[str], str | None]:
    """Family names found in models_dir, sorted, and the default one: the family whose card says
    ``"default": true``, else the first alphabetically; (``[]``, None) when there is none."""
    cards = bundled_cards(models_dir)
    families = sorted({c.family for c in cards})
    if not families:
        return [], None
    flagged = sorted({c.family for c in cards if c.default})
    return families, (flagged[0] if flagged else families[0])


def bundled_model(family: str, scale: int, models_dir: str = MODELS_DIR) -> ModelCard:
    """The bundled model of `family` for `scale`: ``models/<family>_x<S>.onnx`` when the family
    has one file per scale, else any file of the family whose card lists the scale (a network
    whose weights serve every scale ships as one ``models/<family>.onnx``)."""
    cards = [c for c in bundled_cards(models_dir) if c.family == family]
    if not cards:
        expected = os.path.join(models_dir, f"{family}_x{scale}.onnx")
        if os.path.exists(expected):
            read_card(expected)  # raises the precise reason the file cannot be used
        families, _ = bundled_families(models_dir)
        raise DemError(
            f"No bundled model '{family}' in {models_dir}; installed: "
            f"{', '.join(families) or 'none'}."
        )
    for card in sorted(cards, key=lambda c: os.path.basename(c.path) != f"{family}_x{scale}.onnx"):
        if scale in card.scales:
            return card
    have = sorted({s for c in cards for s in c.scales})
    raise DemError(
        f"The bundled model '{family}' has no x{scale} version (it has "
        f"x{', x'.join(map(str, have))}); choose another scale or model."
    )
