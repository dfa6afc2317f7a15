"""The multi-product corpus: manifest, hold-out split, rebuild recipe, per-product scoring."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest
from osgeo import gdal, osr

from training.build_corpus import build_entry, find_mirror
from training.corpus import (
    COLUMNS,
    CORPUS_DIR,
    PRODUCTS,
    Entry,
    manifest_split,
    read_manifest,
)
from training.dataset import VALIDATION_FILES, Dem, validation_crops
from training.evaluate import product_checks, summarise_products


def _row(**kw) -> dict:
    row = dict.fromkeys(COLUMNS, "")
    row.update(product="SRTM", split="train", convert="copy")
    row.update(kw)
    return row


def _write_manifest(path, rows) -> None:
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)


# --- the committed manifest --------------------------------------------------------------------

def test_committed_manifest_holds_out_whole_files_per_product():
    entries = read_manifest()
    by_split = {s: {e.file for e in entries if e.split == s} for s in ("train", "holdout")}
    assert not by_split["train"] & by_split["holdout"]
    srtm_held = {e.file for e in entries if e.product == "SRTM" and e.split == "holdout"}
    assert srtm_held == set(VALIDATION_FILES)  # the SRTM protocol is unchanged
    for product in {e.product for e in entries}:
        rows = [e for e in entries if e.product == product]
        assert any(e.split == "holdout" for e in rows), product
    # LiDAR is scored only: the one tile whose licence is unquestioned is the harder test,
    # and the other's licence is unconfirmed (training/CORPUS.md)
    trained = {e.product for e in entries if e.split == "train"}
    assert trained == {"SRTM", "Copernicus"}
    for e in entries:
        assert e.licence, e.file
        if e.convert != "copy":  # rebuilt from a mirror: the exact commit must be recorded
            assert len(e.source_commit) == 40 and e.source_repo.count("/") == 1, e.file


def test_manifest_rejects_bad_rows(tmp_path):
    path = tmp_path / "m.csv"
    _write_manifest(path, [_row(file="a.tif", product="ASTER GDEM v2")])
    with pytest.raises(ValueError, match="unknown product"):
        read_manifest(path)
    _write_manifest(path, [_row(file="a.tif", split="val")])
    with pytest.raises(ValueError, match="split"):
        read_manifest(path)
    _write_manifest(path, [_row(file="a.tif"), _row(file="a.tif", split="holdout")])
    with pytest.raises(ValueError, match="twice"):
        read_manifest(path)


def test_manifest_split_and_product_filter(tmp_path):
    path = tmp_path / "m.csv"
    _write_manifest(path, [_row(file="s1.tif"), _row(file="s2.tif", split="holdout"),
                           _row(file="c1.tif", product="Copernicus"),
                           _row(file="c2.tif", product="Copernicus", split="holdout")])
    entries = read_manifest(path)
    with pytest.raises(FileNotFoundError, match="build_corpus"):
        manifest_split(entries, tmp_path)
    for name in ("s1.tif", "s2.tif", "c1.tif", "c2.tif"):
        (tmp_path / name).write_bytes(b"")
    train, held = manifest_split(entries, tmp_path)
    assert [p.name for p in train] == ["s1.tif", "c1.tif"]
    assert [p.name for p in held] == ["s2.tif", "c2.tif"]
    train, held = manifest_split(entries, tmp_path, ("Copernicus",))
    assert [p.name for p in train] == ["c1.tif"] and [p.name for p in held] == ["c2.tif"]


def test_train_cli_reads_the_manifest(tmp_path):
    pytest.importorskip("torch")
    from training.train import parse_args, training_files

    base = ["--model", "fastsr", "--steps", "1", "--out", str(tmp_path / "run")]
    assert parse_args(base + ["--manifest", "training/corpus.csv"]).data_dir == CORPUS_DIR
    path = tmp_path / "m.csv"
    _write_manifest(path, [_row(file="a.tif"), _row(file="b.tif", split="holdout"),
                           _row(file="l.tif", product="LiDAR-derived", split="holdout")])
    for name in ("a.tif", "b.tif", "l.tif"):
        (tmp_path / name).write_bytes(b"")
    args = parse_args(base + ["--manifest", str(path), "--data-dir", str(tmp_path)])
    train, val = training_files(args)
    assert [p.name for p in train] == ["a.tif"] and [p.name for p in val] == ["b.tif", "l.tif"]
    with pytest.raises(SystemExit):
        parse_args(base + ["--products", "SRTM"])  # --products needs --manifest


# --- rebuilding from a git mirror ---------------------------------------------------------------

def _geotiff(path, z, gt, epsg=None, nodata=None):
    ds = gdal.GetDriverByName("GTiff").Create(str(path), z.shape[1], z.shape[0], 1,
                                              gdal.GDT_Float32)
    ds.SetGeoTransform(gt)
    if epsg:
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(epsg)
        ds.SetProjection(srs.ExportToWkt())
    band = ds.GetRasterBand(1)
    if nodata is not None:
        band.SetNoDataValue(nodata)
    band.WriteArray(z)
    ds = None


@pytest.fixture
def mirror(tmp_path):
    """A bare mirror of a one-commit repository holding a 1 m DTM (10 x 15) in owner+name/repo."""
    work = tmp_path / "work"
    work.mkdir()
    z = np.arange(150, dtype=np.float32).reshape(10, 15) * 0.5 + 100
    z[0, 0] = -9999.0
    _geotiff(work / "dtm.tif", z, (500000.0, 1.0, 0.0, 4000000.0, 0.0, -1.0), 32611, -9999.0)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(git + ["init", "-q", str(work)], check=True)
    subprocess.run(git + ["-C", str(work), "add", "dtm.tif"], check=True)
    subprocess.run(git + ["-C", str(work), "commit", "-qm", "dtm"], check=True)
    commit = subprocess.run(["git", "-C", str(work), "rev-parse", "HEAD"], check=True,
                            capture_output=True, text=True).stdout.strip()
    mirrors = tmp_path / "mirrors"
    subprocess.run(["git", "clone", "-q", "--mirror", str(work), str(mirrors / "o+n" / "repo")],
                   check=True)
    return mirrors, commit, z


def test_build_block_mean_and_translate_from_the_mirror(mirror, tmp_path):
    mirrors, commit, z = mirror
    assert find_mirror(mirrors, "o/n") == mirrors / "o+n" / "repo"
    out = tmp_path / "out"
    out.mkdir()
    common = dict(product="LiDAR-derived", terrain="t", split="train", cell="5 m",
                  source_repo="o/n", source_commit=commit, source_path="dtm.tif", licence="PD")
    agg = build_entry(Entry(file="agg.tif", convert="block_mean:5", a_srs="EPSG:32610",
                            **common), out, mirrors, tmp_path, log=lambda m: None)
    ds = gdal.Open(str(agg))
    a = ds.GetRasterBand(1).ReadAsArray()
    nodata = ds.GetRasterBand(1).GetNoDataValue()
    assert a.shape == (2, 3)
    assert a[0, 0] == nodata  # the block touching the nodata cell is nodata
    np.testing.assert_allclose(a[1, 2], z[5:10, 10:15].mean(), rtol=1e-6)
    np.testing.assert_allclose(a[0, 1], z[0:5, 5:10].mean(), rtol=1e-6)
    assert ds.GetGeoTransform() == (500000.0, 5.0, 0.0, 4000000.0, 0.0, -5.0)
    srs = osr.SpatialReference(wkt=ds.GetProjection())
    assert srs.GetAuthorityCode(None) == "32610"  # the override, not the file's 32611

    same = build_entry(Entry(file="same.tif", convert="translate", **common), out, mirrors,
                       tmp_path, log=lambda m: None)
    b = gdal.Open(str(same)).ReadAsArray()
    np.testing.assert_array_equal(b, z)  # lossless
    with pytest.raises(RuntimeError, match="git show"):
        build_entry(Entry(file="x.tif", convert="translate", **{**common, "source_path":
                                                                   "absent.tif"}),
                    out, mirrors, tmp_path, log=lambda m: None)
    with pytest.raises(FileNotFoundError, match="git clone --mirror"):
        find_mirror(mirrors, "nobody/nothing")


# --- per-product scores -------------------------------------------------------------------------

def _scores(rmse, slope):
    return {"rmse": rmse, "mae": rmse, "psnr": 0.0, "slope_rmse_deg": slope,
            "checkpoint_rmse": rmse}


def test_product_checks_by_hand():
    per_file = {
        "a.tif": {"x2": {"lanczos": _scores(10.0, 2.0), "fastsr": _scores(7.0, 1.5)}},
        "b.tif": {"x2": {"lanczos": _scores(10.0, 2.0), "fastsr": _scores(9.0, 1.9)}},
        "l.tif": {"x2": {"lanczos": _scores(1.0, 4.0), "fastsr": _scores(0.5, 2.0)}},
    }
    products = {"a.tif": "SRTM", "b.tif": "SRTM", "l.tif": "LiDAR-derived"}
    by_product = summarise_products(per_file, products)
    assert list(by_product) == ["SRTM", "LiDAR-derived"]  # in PRODUCTS order
    assert by_product["SRTM"]["summary"]["x2"]["fastsr"]["rmse"] == pytest.approx(8.0)
    checks = product_checks(per_file, products, "fastsr")
    srtm = checks["products"]["SRTM"]
    assert srtm["ratios"]["x2"] == pytest.approx({"rmse": 0.8, "slope": 0.85})
    assert not srtm["meets_target"]  # slope 0.85 > 0.80 although RMSE is at 0.80
    assert checks["products"]["LiDAR-derived"]["meets_target"]
    over = checks["files_over_limit"]
    assert [(o["file"], o["scale"]) for o in over] == [("b.tif", "x2")]
    assert over[0]["rmse_ratio"] == pytest.approx(0.9)
    assert set(PRODUCTS) >= set(checks["products"])


def test_small_held_out_files_still_give_validation_crops():
    z = np.random.default_rng(0).normal(size=(171, 184)).astype(np.float32)
    crops = validation_crops([Dem("small.tif", z, 5.0, 5.0)], size=192, per_file=2)
    assert len(crops) == 2 and crops[0].z.shape == (168, 168)
    tiny = Dem("tiny.tif", z[:40, :40], 5.0, 5.0)
    assert validation_crops([tiny]) == []


def test_product_balanced_sampling():
    from training.dataset import PatchSampler

    rng = np.random.default_rng(1)
    big = Dem("big.tif", rng.normal(size=(300, 300)).astype(np.float32), 90.0, 90.0)
    small = Dem("small.tif", rng.normal(size=(72, 96)).astype(np.float32), 5.0, 5.0)
    other = Dem("other.tif", rng.normal(size=(72, 72)).astype(np.float32), 5.0, 5.0)
    plain = PatchSampler([big, small, other], 48)
    counts = np.array([253 * 253, 25 * 49, 25 * 25], dtype=float)  # valid 48 x 48 windows
    np.testing.assert_allclose(plain.weights, counts / counts.sum())
    balanced = PatchSampler([big, small, other], 48, groups=["SRTM", "LiDAR", "LiDAR"])
    np.testing.assert_allclose(balanced.weights, [0.5, 0.5 * 49 / 74, 0.5 * 25 / 74])
    drawn = [balanced.rng.choice(3, p=balanced.weights) for _ in range(2000)]
    assert 0.45 < np.mean(np.array(drawn) == 0) < 0.55
    with pytest.raises(ValueError, match="one group label"):
        PatchSampler([big, small], 48, groups=["SRTM"])


def test_model_licence_names_the_data_and_the_copernicus_notice():
    pytest.importorskip("torch")
    from training.export import COPERNICUS_NOTICE, model_license

    srtm_only = model_license(["N41E001_srtm.tif", "jacksboro_fault_srtm3.tif"])
    assert "public-domain SRTM data" in srtm_only and COPERNICUS_NOTICE not in srtm_only
    mixed = model_license(["lidar5m_slovenia_tm1_564_146.tif", "cop30_kars_plateau.tif",
                           "N41E001_srtm.tif"])
    assert mixed.startswith("GPL-2.0-or-later")
    assert ("SRTM data, Copernicus GLO-30 data, LiDAR DTMs" in mixed
            and mixed.endswith(COPERNICUS_NOTICE))


def _evaluate_result(rmse: dict[tuple[str, str], float]) -> dict:
    """A minimal ``training.evaluate --manifest`` result: fastsr's mean scores per product."""
    per_product: dict = {}
    for (product, scale), value in rmse.items():
        block = per_product.setdefault(product, {"files": [], "summary": {}})
        block["summary"][scale] = {"fastsr": {"rmse": value, "slope_rmse_deg": 2 * value},
                                   "lanczos": {"rmse": 10.0, "slope_rmse_deg": 20.0}}
    return {"per_product": per_product}


def test_keep_rule_needs_every_product_and_scale_lower():
    from training.compare import compare, markdown

    bundled = _evaluate_result({("SRTM", "x2"): 6.0, ("SRTM", "x3"): 9.0,
                                ("Copernicus", "x2"): 6.0})
    better = _evaluate_result({("SRTM", "x2"): 5.9, ("SRTM", "x3"): 8.9,
                               ("Copernicus", "x2"): 5.0, ("LiDAR-derived", "x2"): 1.0})
    result = compare(bundled, better)
    assert result["keep"] and len(result["rows"]) == 3  # LiDAR is scored by one side only
    assert "| SRTM | x2 | 6.000 | 5.900 | -1.7 % |" in markdown(result)
    tie = _evaluate_result({("SRTM", "x2"): 5.9, ("SRTM", "x3"): 9.0, ("Copernicus", "x2"): 5.0})
    assert not compare(bundled, tie)["keep"]  # equal is not better
    with pytest.raises(ValueError, match="share no product"):
        compare(bundled, _evaluate_result({("ASTER/ALOS", "x2"): 1.0}))


def test_compact_products_table_shows_means_and_ratios():
    from training.evaluate import compact_products_table

    def scores(rmse, slope):
        return {"rmse": rmse, "slope_rmse_deg": slope}

    summary = {"x2": {"bicubic": scores(8.0, 3.0), "lanczos": scores(7.0, 2.5),
                      "fastsr": scores(5.6, 2.0)}}
    table = compact_products_table({"Copernicus": {"files": ["a.tif", "b.tif"],
                                                   "summary": summary}}, "fastsr", ("x2",))
    rows = table.splitlines()
    assert rows[2] == "| Copernicus (2) | bicubic | 8.00 / 3.00 |"
    assert rows[4] == "|  | **`fastsr`** | 5.60 / 2.00 |"
    assert rows[5] == "| | `fastsr` / Lanczos | 0.80 / 0.80 |"


def test_carry_over_keeps_earlier_models_and_refuses_missing_cells():
    from training.evaluate import carried_families, carry_over

    earlier = {"models": {"fastsr_x2.onnx": {"family": "fastsr"},
                          "srcnn3_x2.onnx": {"family": "srcnn3"}},
               "per_file": {"a.tif": {"x2": {"fastsr": {"rmse": 9.0}, "srcnn3": {"rmse": 7.0}}},
                            "b.tif": {"x2": {"fastsr": {"rmse": 9.0}, "srcnn3": {"rmse": 5.0}}}}}
    carried = carried_families(earlier, {"fastsr"}, ["a.tif", "b.tif"], ["x2"])
    assert carried == ["srcnn3"]
    per_file = {"a.tif": {"x2": {"lanczos": {"rmse": 8.0}, "fastsr": {"rmse": 6.0}}},
                "b.tif": {"x2": {"lanczos": {"rmse": 6.0}, "fastsr": {"rmse": 4.0}}}}
    models = {"fastsr_x2.onnx": {"family": "fastsr", "new": True}}
    carry_over(per_file, models, earlier, carried)
    # the run's own fastsr stays; the earlier srcnn3 joins it, cell by cell
    assert per_file["a.tif"]["x2"] == {"lanczos": {"rmse": 8.0}, "fastsr": {"rmse": 6.0},
                                       "srcnn3": {"rmse": 7.0}}
    assert per_file["b.tif"]["x2"]["srcnn3"] == {"rmse": 5.0}
    assert models == {"fastsr_x2.onnx": {"family": "fastsr", "new": True},
                      "srcnn3_x2.onnx": {"family": "srcnn3"}}
    # a scale (or file) the earlier result did not score cannot be filled in: refused up front
    with pytest.raises(ValueError, match="srcnn3 score for a.tif x3"):
        carried_families(earlier, {"fastsr"}, ["a.tif"], ["x2", "x3"])
    with pytest.raises(ValueError, match="srcnn3 score for c.tif x2"):
        carried_families(earlier, {"fastsr"}, ["a.tif", "c.tif"], ["x2"])
    # scoring every family of the earlier result carries nothing and needs nothing of it
    assert carried_families(earlier, {"fastsr", "srcnn3"}, ["c.tif"], ["x4"]) == []
