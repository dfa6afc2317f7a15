"""The published results describe the bundled models, and the docs quote them as measured.

When a new default model is kept, every result file that scores it has to be regenerated and
every table that quotes one rewritten; these tests fail on the one that was forgotten (the
Jiao et al. reproduction kept an older fastsr's numbers for a stage once).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.superres.models import read_card_items
from training.evaluate import markdown_table, reproduction_table

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
SCALES = (2, 3, 4)

# Result files that score the bundled fastsr (not the archived ones of tried stages).
SCORING_RESULTS = ["sr_validation.json", "sr_validation_products.json",
                   "sr_reproduction_bicubic.json"]


def _load(name: str) -> dict:
    return json.loads((RESULTS / name).read_text())


def _training(card_or_record: dict) -> dict:
    """What identifies a trained network: its training record without the export time (a
    re-export with the validation figures in its card is the same network)."""
    return {k: v for k, v in card_or_record["trained_on"].items() if k != "exported"}


def _bundled_card(scale: int) -> dict:
    return read_card_items(str(ROOT / "models" / f"fastsr_x{scale}.onnx"))


@pytest.mark.parametrize("name", SCORING_RESULTS)
def test_results_score_the_bundled_fastsr(name):
    models = _load(name)["models"]
    for scale in SCALES:
        record = models[f"fastsr_x{scale}.onnx"]
        card = _bundled_card(scale)
        assert record["parameters"] == card["parameters"], (name, scale)
        assert _training(record) == _training(card), (
            f"{name} scored a fastsr x{scale} trained otherwise than the bundled one: "
            "regenerate it with python -m training.evaluate")


def test_cpu_speed_was_measured_on_the_bundled_architecture():
    timed = {m["model"]: m for m in _load("superres_cpu.json")["models"]}
    for scale in SCALES:
        card = _bundled_card(scale)
        assert timed[f"fastsr_x{scale}.onnx"]["macs_per_output_mp"] == card["macs_per_output_mp"]


def _compact_table(markdown: str) -> str:
    """The per-product "RMSE m / slope RMSE °" table: from its header row to the first line
    that is not a table row."""
    lines = markdown.splitlines()
    start = lines.index("| product (held-out files) | method | ×2 | ×3 | ×4 |")
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "\n".join(lines[start:end])


@pytest.mark.parametrize("doc", ["README.md", "docs/algorithms.md"])
def test_per_product_table_is_the_measured_one(doc):
    measured = _compact_table((RESULTS / "sr_validation_products.md").read_text())
    assert _compact_table((ROOT / doc).read_text()) == measured


def test_models_md_validation_table_is_the_measured_one():
    table = markdown_table(_load("sr_validation.json")["summary"])
    models_md = (ROOT / "models" / "MODELS.md").read_text()
    for row in table.splitlines():
        assert row in models_md, row


@pytest.mark.parametrize("name", ["sr_validation.json", "sr_reproduction_bicubic.json"])
def test_reproduction_tables_are_the_measured_ones(name):
    """Every row, with the paper's published columns beside ours, as evaluate writes it."""
    table = reproduction_table(_load(name)["summary"])
    reproduction = (ROOT / "benchmarks" / "REPRODUCTION.md").read_text()
    for row in table.splitlines():
        assert row in reproduction, (name, row)
