"""A packed corpus (training.pack): the same Dems as the GeoTIFFs, and training from it with no
GDAL importable (what a GPU machine with PyTorch but without GDAL offers)."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from training.corpus import COLUMNS
from training.dataset import load_dem
from training.pack import INT16_NODATA, load_packed, main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "data")
FILES = {"jacksboro_fault_srtm3.tif": "train",  # Int16 heights, geographic
         "mandakini_srtm90_utm44.tif": "holdout"}  # Float32 whole metres, UTM, 45 % nodata


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("packed")
    manifest = folder / "m.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for name, split in FILES.items():
            w.writerow({**dict.fromkeys(COLUMNS, ""), "file": name, "product": "SRTM",
                        "split": split, "convert": "copy"})
    out = folder / "corpus.npz"
    main(["--out", str(out), "--manifest", str(manifest), "--data-dir", DATA])
    return out, manifest


def test_packed_dems_equal_the_geotiffs_bit_for_bit(packed):
    out, _ = packed
    dems = load_packed(out)
    assert list(dems) == list(FILES)
    for name in FILES:
        want, got = load_dem(os.path.join(DATA, name)), dems[name]
        assert got.z.dtype == np.float32 and got.z.shape == want.z.shape
        assert np.array_equal(got.z, want.z, equal_nan=True)
        assert np.isnan(want.z).any() == (name.startswith("mandakini"))
        assert (got.dx_m, got.dy_m) == (want.dx_m, want.dy_m)
    with np.load(out) as archive:
        meta = json.loads(str(archive["meta"]))
        names = [f["name"] for f in meta["files"]]
        stored = {n: archive[f"z{i}"].dtype for i, n in enumerate(names)}
    # Both hold whole metres (the Float32 one too), so both are stored as Int16, exactly.
    assert set(stored.values()) == {np.dtype(np.int16)}


def test_int16_is_used_only_where_it_is_exact(tmp_path):
    from training.dataset import Dem
    from training.pack import pack

    z = np.array([[1.0, 2.0], [np.nan, -5.0]], dtype=np.float32)
    cases = {"ints": z, "halves": z + 0.5, "low": np.where(np.isnan(z), 0, INT16_NODATA),
             "high": z + 40000}
    out = tmp_path / "c.npz"
    pack([Dem(name, v.astype(np.float32), 30.0, 30.0) for name, v in cases.items()], out)
    back = load_packed(out)
    for name, v in cases.items():
        assert np.array_equal(back[name].z, v.astype(np.float32), equal_nan=True), name
    with np.load(out) as archive:
        assert [archive[f"z{i}"].dtype for i in range(4)] == [np.int16, np.float32,
                                                             np.float32, np.float32]


BLOCK_GDAL = """
import runpy, sys
# None in sys.modules: `import osgeo` fails and find_spec says absent, as where it is missing.
for name in ("osgeo", "osgeo.gdal", "osgeo.osr", "onnxruntime"):
    sys.modules[name] = None
sys.argv = ["train.py"] + sys.argv[1:]
runpy.run_module("training.train", run_name="__main__")
"""


@pytest.mark.parametrize("network", [
    ["--model", "fastsr", "--channels", "8", "--blocks", "2", "--patch", "24"],
    # benchmarks/gpu/device_check.sh's second run: the bundled vdsr30 read from its ONNX file
    ["--model", "vdsr30", "--init", os.path.join(ROOT, "models", "vdsr30.onnx"),
     "--patch", "24", "--clip", "1"],
], ids=["fastsr", "vdsr30-init"])
def test_training_from_a_packed_corpus_needs_no_gdal(packed, tmp_path, network):
    pytest.importorskip("torch")
    out, manifest = packed
    run = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-c", BLOCK_GDAL, *network, "--steps", "4", "--batch", "2",
         "--epoch-steps", "2", "--threads", "1", "--packed", str(out),
         "--manifest", str(manifest), "--out", str(run)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "1 training files" in proc.stdout
    log = (run / "train.log").read_text()
    assert '"final_step": 4' in log
    assert (run / "last.pt").exists()
