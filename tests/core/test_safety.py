"""Inputs are never harmed, outputs come in the format asked, bad input is a message:
the QGIS-free core and the `python -m core.batch` front door. Every data-loss case compares the
checksums of every input file before and after (tests/helpers_guard.untouched)."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from osgeo import gdal, ogr

from core import batch
from core.errors import DemError
from core.grid import destinations, raster, safety
from core.grid.progress import Monitor
from core.largearea import manifest as manifests
from core.superres import inference
from tests.helpers_guard import batch_params, untouched
from tests.helpers_onnx import card_for, write_model
from tests.mosaic_data import MANDAKINI, cut_tiles

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Said(Monitor):
    def __init__(self):
        self.lines = []

    def info(self, message):
        self.lines.append(message)

    def warn(self, message):
        self.lines.append("warning: " + message)

    @property
    def text(self):
        return "\n".join(self.lines)


@pytest.fixture
def dem(tmp_path):
    path = tmp_path / "dem.tif"
    shutil.copy(MANDAKINI, path)
    return str(path)


def run_batch(argv, capsys):
    """core.batch.main through the inputs guard; (exit code, stderr)."""
    with untouched(batch_params(argv)):
        code = batch.main([*argv, "--workers", "0"])
    return code, capsys.readouterr().err


# --- 1. no output is an input, under any spelling ------------------------------------------


def test_every_spelling_of_the_input_is_refused_as_output(dem, tmp_path, monkeypatch):
    folder = os.path.dirname(dem)
    os.symlink(dem, tmp_path / "link.tif")
    os.link(dem, tmp_path / "hard.tif")
    monkeypatch.chdir(folder)
    spellings = ["dem.tif", "./dem.tif", f"{folder}/../{os.path.basename(folder)}/dem.tif",
                 str(tmp_path / "link.tif"), str(tmp_path / "hard.tif"), f"{dem}|layername=x",
                 dem + ".aux.xml"]
    for spelling in spellings:
        with pytest.raises(DemError, match="never writes over its inputs"):
            safety.check_apart([("INPUT", dem)], [("OUTPUT", spelling, "")])
    safety.check_apart([("INPUT", dem)], [("OUTPUT", str(tmp_path / "other.tif"), "")])


def test_a_vrt_source_and_an_archive_member_count_as_inputs(dem, tmp_path):
    vrt = str(tmp_path / "m.vrt")
    gdal.BuildVRT(vrt, [dem]).FlushCache()
    with pytest.raises(DemError, match=re.escape(f"would write over '{dem}'")):
        safety.check_apart([("INPUT", vrt)], [("OUTPUT", dem, "")])
    archive = tmp_path / "dem.zip"
    import zipfile

    with zipfile.ZipFile(archive, "w") as z:
        z.write(dem, "dem.tif")
    with pytest.raises(DemError, match="never writes over"):
        safety.check_apart([("INPUT", f"/vsizip/{archive}/dem.tif")],
                           [("OUTPUT", str(archive), "")])


def test_two_tables_of_one_geopackage_are_apart_one_table_twice_is_not(tmp_path):
    gpkg = str(tmp_path / "p.gpkg")
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(gpkg)
    ds.CreateLayer("pts", geom_type=ogr.wkbPoint)
    ds = None
    safety.check_apart([("POINTS", f"{gpkg}|layername=pts")],
                       [("OUTPUT_RESIDUALS", f"ogr:dbname='{gpkg}' table=\"res\" (geom)", "")])
    for same in (f"ogr:dbname='{gpkg}' table=\"pts\" (geom)", gpkg):
        with pytest.raises(DemError, match="OUTPUT_RESIDUALS"):
            safety.check_apart([("POINTS", f"{gpkg}|layername=pts")],
                               [("OUTPUT_RESIDUALS", same, "")])


def test_two_outputs_on_one_file_are_refused(dem, tmp_path):
    out = str(tmp_path / "o.tif")
    with pytest.raises(DemError, match="OUTPUT_SPREAD and OUTPUT name the same file"):
        safety.check_apart([("INPUT", dem)], [("OUTPUT", out, ""), ("OUTPUT_SPREAD", out, "")])


def test_core_batch_refuses_output_equal_input_even_with_overwrite(dem, tmp_path, capsys):
    os.symlink(dem, tmp_path / "link.tif")
    for out in (dem, str(tmp_path / "link.tif")):
        code, err = run_batch(["tpi", dem, out, "--overwrite"], capsys)
        assert code == 1
        assert "never writes over its inputs" in err and "Traceback" not in err


# --- 4. core.batch never binds its own output as a tile -------------------------------------


def test_output_inside_the_folder_of_tiles_is_refused(tmp_path, capsys):
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    cut_tiles(MANDAKINI, str(tiles), 2, 2)
    before = sorted(os.listdir(tiles))
    for out in (tiles / "tpi.tif", tiles / "tpi.vrt", tiles / "sub" / "tpi.tif"):
        (tiles / "sub").mkdir(exist_ok=True)
        code, err = run_batch(["tpi", str(tiles), str(out)], capsys)
        assert code == 1 and "inside the folder of tiles" in err, err
    (tiles / "sub").rmdir()
    assert sorted(os.listdir(tiles)) == before
    # Beside the folder it runs, and a rerun reads the same tiles (nothing was added to them).
    code, err = run_batch(["tpi", str(tiles), str(tmp_path / "tpi.tif")], capsys)
    assert code == 0, err
    assert sorted(os.listdir(tiles)) == before


# --- 2. the format asked for ---------------------------------------------------------------


def test_a_destination_names_its_driver_or_is_refused(tmp_path):
    assert destinations.resolve(str(tmp_path / "a")).path == str(tmp_path / "a.tif")
    for ext, driver in (("asc", "AAIGrid"), ("img", "HFA"), ("sdat", "SAGA"), ("nc", "netCDF"),
                        ("gpkg", "GPKG"), ("tif", "GTiff"), ("TIF", "GTiff")):
        assert destinations.resolve(str(tmp_path / f"a.{ext}")).driver == driver
    for ext in ("shp", "png", "csv", "vrt"):
        with pytest.raises(DemError, match=r"OUTPUT: GDAL cannot write a raster as .*\.tif, "):
            destinations.resolve(str(tmp_path / f"a.{ext}"))
    assert destinations.resolve(str(tmp_path / "a.vrt"), allow_vrt=True).driver == "VRT"


@pytest.mark.parametrize("ext,driver", [("asc", "AAIGrid"), ("img", "HFA"), ("sdat", "SAGA"),
                                        ("nc", "netCDF"), ("gpkg", "GPKG"), ("", "GTiff")])
def test_core_batch_writes_the_format_asked(ext, driver, dem, tmp_path, capsys):
    ref = str(tmp_path / "ref.tif")
    assert run_batch(["tpi", dem, ref], capsys)[0] == 0
    out = str(tmp_path / ("out." + ext if ext else "out"))
    code, err = run_batch(["tpi", dem, out], capsys)
    assert code == 0, err
    written = out if ext else out + ".tif"
    ds = gdal.Open(written)
    assert ds.GetDriver().ShortName == driver
    a, b = gdal.Open(ref).ReadAsArray(), ds.ReadAsArray()
    assert a.shape == b.shape
    np.testing.assert_allclose(b, a, atol=1e-3 if driver == "AAIGrid" else 0)
    hidden = [n for n in os.listdir(tmp_path) if n.startswith(".")]
    assert hidden == []


def test_an_existing_geopackage_gets_a_new_table_and_keeps_its_layers(dem, tmp_path, capsys):
    gpkg = str(tmp_path / "project.gpkg")
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(gpkg)
    layer = ds.CreateLayer("roads", geom_type=ogr.wkbLineString)
    feature = ogr.Feature(layer.GetLayerDefn())
    feature.SetGeometry(ogr.CreateGeometryFromWkt("LINESTRING (0 0, 1 1)"))
    layer.CreateFeature(feature)
    ds = feature = layer = None
    code, err = run_batch(["tpi", dem, gpkg], capsys)
    assert code == 0, err
    ds = ogr.Open(gpkg)
    assert ds.GetLayerByName("roads").GetFeatureCount() == 1
    assert gdal.Open(f"GPKG:{gpkg}:project").RasterXSize == gdal.Open(dem).RasterXSize
    # The table now exists: a second run is refused, the file left as it is.
    with untouched({"GPKG": gpkg}):
        code, err = run_batch(["tpi", dem, gpkg, "--overwrite"], capsys)
    assert code == 1 and "already holds a table named 'project'" in err
    # A run that fails after delivering drops its table, never the file with the others.
    destinations.discard(destinations.Destination(gpkg, "GPKG", "project", append=True))
    assert ogr.Open(gpkg).GetLayerByName("roads").GetFeatureCount() == 1
    assert "project" not in destinations.gpkg_tables(gpkg)
    assert destinations.resolve(gpkg).append  # the name is free again


# --- 5, 9. unreadable and complex inputs ---------------------------------------------------


def test_a_truncated_geotiff_is_a_message_naming_the_file_and_leaves_nothing(tmp_path, capsys):
    bad = tmp_path / "cut.tif"
    gdal.Translate(str(bad), MANDAKINI, creationOptions=["TILED=YES", "COMPRESS=DEFLATE"])
    size = os.path.getsize(bad)
    with open(bad, "r+b") as f:
        f.truncate(size // 2)
    out = tmp_path / "out" / "tpi.tif"
    out.parent.mkdir()
    code, err = run_batch(["tpi", str(bad), str(out)], capsys)
    assert code == 1 and str(bad) in err and "Traceback" not in err, err
    assert "truncated or corrupt" in err
    # No output and no hidden partial file; the job folder keeps only its record for a rerun.
    assert [p.name for p in out.parent.iterdir()] == ["tpi_chunks"]
    assert os.listdir(out.parent / "tpi_chunks") == ["manifest.json"]
    with pytest.raises(DemError, match="truncated or corrupt"):
        raster.read_array(str(bad))


def test_a_vrt_with_a_missing_source_is_refused_before_work(dem, tmp_path, capsys):
    vrt = str(tmp_path / "m.vrt")
    gdal.BuildVRT(vrt, [dem]).FlushCache()
    os.remove(dem)
    code, err = run_batch(["tpi", vrt, str(tmp_path / "o.tif")], capsys)
    assert code == 1 and "names 1 source file(s) that do not exist" in err and dem in err


def test_complex_input_is_refused(tmp_path, capsys):
    path = str(tmp_path / "c.tif")
    gdal.Translate(path, MANDAKINI, outputType=gdal.GDT_CFloat32)
    code, err = run_batch(["tpi", path, str(tmp_path / "o.tif")], capsys)
    assert code == 1 and "holds complex numbers (CFloat32)" in err
    assert not os.path.exists(tmp_path / "o.tif")


# --- 6. a full disk ------------------------------------------------------------------------


def test_too_little_free_space_is_refused_before_any_work_in_process(dem, tmp_path, monkeypatch):
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    from core.terrain import tpi

    with pytest.raises(DemError, match="Not enough free disk space"):
        tpi.tpi_raster(dem, str(tmp_path / "o.tif"), tpi.neighbourhood(
            "square", 2, 0, "cells", raster.read_info(dem)))
    assert sorted(os.listdir(tmp_path)) == ["dem.tif"]


DISK_FULL = """
import resource, signal, sys
sys.path.insert(0, sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (150_000, 150_000))
from core.terrain import tpi
from core.grid import raster
from core.errors import DemError
try:
    tpi.tpi_raster(sys.argv[2], sys.argv[3],
                   tpi.neighbourhood("square", 2, 0, "cells", raster.read_info(sys.argv[2])))
except DemError as err:
    print("DemError:", err)
"""


def test_a_disk_that_fills_up_is_a_message_and_the_partial_file_goes(dem, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run([sys.executable, "-c", DISK_FULL, ROOT, dem, str(out / "t.tif")],
                          capture_output=True, text=True, timeout=300)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout.startswith("DemError: Cannot write"), proc.stdout + proc.stderr
    assert str(out / "t.tif") in proc.stdout
    assert list(out.iterdir()) == []


# --- 7, 8, 12. user models and tile sizes --------------------------------------------------


def _model(path, inputs_shape, nan=False) -> str:
    """A ×2 nearest-neighbour model whose input has `inputs_shape`; `nan`: returns NaN."""
    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, 2, 2])
    nodes = [helper.make_node("Resize", ["x", "", "scales"], ["up"], mode="nearest")]
    inits = [scales]
    last = "up"
    if inputs_shape[1] != 1:
        nodes.append(helper.make_node("ReduceMean", ["up"], ["mean"], axes=[1], keepdims=1))
        last = "mean"
    if nan:
        inits.append(helper.make_tensor("nan", TensorProto.FLOAT, [1], [float("nan")]))
        nodes.append(helper.make_node("Mul", [last, "nan"], ["bad"]))
        last = "bad"
    nodes.append(helper.make_node("Identity", [last], ["y"]))
    graph = helper.make_graph(
        nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, inputs_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1, "h", "w"])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    card = card_for("nearest", 2)
    helper.set_model_props(model, {k: json.dumps(v) for k, v in card.items()})
    onnx.save(model, str(path))
    return str(path)


@pytest.mark.parametrize("shape,message", [
    (["N", 3, "H", "W"], "takes 3 input channels"),
    ([4, 1, "H", "W"], "fixed batch of 4"),
    (["N", 1, 64, 64], "fixed tile size"),
])
def test_a_model_with_another_input_layout_is_refused_before_running(
        shape, message, dem, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    model = _model(tmp_path / "m.onnx", shape)
    out = str(tmp_path / "sr.tif")
    code, err = run_batch(["superresolution", dem, out, "--model-file", model,
                           "--device", "cpu"], capsys)
    assert code == 1 and message in err and "Traceback" not in err, err
    assert not os.path.exists(out)


def test_a_model_returning_nan_is_an_error_not_an_empty_raster(dem, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    model = _model(tmp_path / "nan.onnx", ["N", 1, "H", "W"], nan=True)
    out = str(tmp_path / "sr.tif")
    with pytest.raises(DemError, match="returned NaN or infinite values"):
        inference.superresolve(dem, out, 2, model_file=model, device="cpu")
    assert not os.path.exists(out)
    code, err = run_batch(["superresolution", dem, out, "--model-file", model,
                           "--device", "cpu"], capsys)
    assert code == 1 and "returned NaN or infinite values" in err


def test_a_tile_size_beyond_memory_is_capped_with_a_message(dem, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    model = write_model(tmp_path / "m.onnx", "nearest", 2)
    card = inference.load_card(2, model_file=model)
    huge = raster.RasterInfo(10**6, 10**6, (0, 30, 0, 0, 0, -30))
    monkeypatch.setattr(inference, "_host_available_bytes", lambda: 2**30)
    plan = inference.plan_tiles(card, 2, huge, "CPUExecutionProvider", tile_size=10**7)
    per_px = inference.DEFAULT_BYTES_PER_OUTPUT_PIXEL
    assert inference.MIN_TILE <= plan.tile
    assert ((plan.tile + 2 * plan.context) * 2) ** 2 * per_px <= 0.5 * 2**30
    said = Said()
    out = str(tmp_path / "sr.tif")
    inference.superresolve(dem, out, 2, model_file=model, device="cpu", tile_size=10**7,
                           monitor=said)
    # The raster is smaller than the tile asked for: one tile of the raster's size.
    assert gdal.Open(out).RasterXSize == 2 * gdal.Open(dem).RasterXSize


# --- 10. undeclared nodata -----------------------------------------------------------------


def test_an_undeclared_nodata_sentinel_is_warned_with_its_count(tmp_path, capsys):
    values = gdal.Open(MANDAKINI).ReadAsArray().astype(np.float32)
    path = str(tmp_path / "undeclared.tif")
    ds = gdal.GetDriverByName("GTiff").Create(path, values.shape[1], values.shape[0], 1,
                                              gdal.GDT_Float32)
    ds.GetRasterBand(1).WriteArray(values)
    ds = None
    n = int(np.count_nonzero(values == -9999))
    assert n > 1000
    code, err = run_batch(["tpi", path, str(tmp_path / "o.tif")], capsys)
    assert code == 0  # a warning, not a refusal
    assert f"warning: INPUT: {n} cells ({100 * n / values.size:.2f} %) hold -9999" in err
    assert "gdal_edit.py -a_nodata -9999" in err
    # Declared, it is nodata and nothing is said.
    code, err = run_batch(["tpi", MANDAKINI, str(tmp_path / "o2.tif")], capsys)
    assert code == 0 and "nodata marker" not in err


def test_a_large_raster_is_sampled_for_sentinels():
    ds = gdal.GetDriverByName("MEM").Create("", 3000, 2000, 1, gdal.GDT_Int16)
    values = np.full((2000, 3000), 100, np.int16)
    values[:, :1500] = -32768  # the left half
    ds.GetRasterBand(1).WriteArray(values)
    value, cells, fraction, sampled = raster.undeclared_nodata(ds)
    assert value == -32768 and sampled and 0.4 < fraction < 0.6
    assert abs(cells - 3_000_000) < 0.1 * 3_000_000


# --- 13. the closing summary adds up ---------------------------------------------------------


SUMMARY = re.compile(r"(\d+) chunk\(s\) computed by this run, (-?\d+) from an earlier run, "
                     r"(\d+) empty")


def test_the_summary_counts_add_up_fresh_and_resumed(tmp_path, capsys):
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    # Two of nine tiles missing: their chunks are empty.
    cut_tiles(MANDAKINI, str(tiles), 3, 3, skip={(0, 0), (2, 2)})
    out = str(tmp_path / "tpi.vrt")
    code = batch.main(["tpi", str(tiles), out, "--chunk-size", "128", "--workers", "0"])
    err = capsys.readouterr().err
    assert code == 0, err
    now, earlier, empty = map(int, SUMMARY.search(err).groups())
    total = len(manifests.Manifest.load(os.path.join(manifests.job_folder(out), "manifest.json"))
                .chunks)
    assert earlier == 0 and empty > 0 and now + empty == total
    # Drop a third of the finished chunks from the record: a rerun computes just those.
    manifest_path = os.path.join(manifests.job_folder(out), "manifest.json")
    data = json.load(open(manifest_path, encoding="utf-8"))
    done = [r for r in data["chunks"] if r["state"] == "done"]
    for r in done[: len(done) // 3]:
        r["state"] = "pending"
    data["final"] = {"state": "pending"}
    json.dump(data, open(manifest_path, "w", encoding="utf-8"))
    code = batch.main(["tpi", str(tiles), out, "--chunk-size", "128", "--workers", "0"])
    err = capsys.readouterr().err
    assert code == 0, err
    now2, earlier2, empty2 = map(int, SUMMARY.search(err).groups())
    assert (now2, earlier2, empty2) == (len(done) // 3, len(done) - len(done) // 3, empty)


# --- 14. one run per job -------------------------------------------------------------------


def _lock(folder, pid, host=None):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, manifests.LOCK), "w", encoding="utf-8") as f:
        json.dump({"host": host or socket.gethostname(), "pid": pid,
                   "started": "2026-01-01T00:00:00+0000"}, f)


def test_a_second_run_on_the_same_output_is_refused_naming_the_holder(dem, tmp_path, capsys):
    out = str(tmp_path / "tpi.tif")
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _lock(manifests.job_folder(out), holder.pid)
        code, err = run_batch(["tpi", dem, out], capsys)
        assert code == 1
        assert f"process {holder.pid}" in err and socket.gethostname() in err
        assert "started 2026-01-01T00:00:00+0000" in err and "manifest" not in err
        assert not os.path.exists(out)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # The holder is dead now: its lock is stale and taken over, with a message.
    code, err = run_batch(["tpi", dem, out], capsys)
    assert code == 0, err
    assert "Taking over the job" in err and f"process {holder.pid}" in err
    assert os.path.exists(out) and not os.path.exists(manifests.job_folder(out))


def test_a_lock_from_another_host_is_respected(dem, tmp_path, capsys):
    out = str(tmp_path / "tpi.vrt")
    _lock(manifests.job_folder(out), 1, host="elsewhere.example")
    code, err = run_batch(["tpi", dem, out], capsys)
    assert code == 1 and "names host elsewhere.example, process 1" in err


def test_the_lock_is_released_after_a_run_and_after_a_refusal(dem, tmp_path, capsys):
    out = str(tmp_path / "tpi.vrt")
    assert run_batch(["tpi", dem, out], capsys)[0] == 0
    assert not os.path.exists(os.path.join(manifests.job_folder(out), manifests.LOCK))
    code, _ = run_batch(["tpi", dem, out, "--radius", "3"], capsys)  # other parameters
    assert code == 1
    assert not os.path.exists(os.path.join(manifests.job_folder(out), manifests.LOCK))


# --- the guard itself ------------------------------------------------------------------------


def test_the_inputs_guard_fails_on_a_changed_or_removed_input(dem, tmp_path):
    vrt = str(tmp_path / "m.vrt")
    gdal.BuildVRT(vrt, [dem]).FlushCache()
    with pytest.raises(AssertionError, match="modified or removed"):
        with untouched({"INPUT": vrt, "OUTPUT": dem}):  # the VRT's source counts as input
            with open(dem, "r+b") as f:
                f.seek(1000)
                f.write(b"\0")
    with pytest.raises(AssertionError, match="modified or removed"):
        with untouched({"INPUT": dem}):
            os.remove(dem)
    with untouched({"INPUT": vrt}):
        open(tmp_path / "new.aux.xml", "w").close()  # new files are not changes


def test_the_inputs_guard_watches_one_geopackage_table(tmp_path):
    gpkg = str(tmp_path / "p.gpkg")
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(gpkg)
    layer = ds.CreateLayer("pts", geom_type=ogr.wkbPoint)
    layer.CreateFeature(ogr.Feature(layer.GetLayerDefn()))
    ds = layer = None
    with untouched({"POINTS": f"{gpkg}|layername=pts"}):
        ds = ogr.Open(gpkg, 1)
        ds.CreateLayer("other", geom_type=ogr.wkbPoint)  # a new table beside it is fine
        ds = None
    with pytest.raises(AssertionError, match="modified or removed"):
        with untouched({"POINTS": f"{gpkg}|layername=pts"}):
            ds = ogr.Open(gpkg, 1)
            layer = ds.GetLayerByName("pts")
            layer.DeleteFeature(next(iter(layer)).GetFID())
            ds = layer = None
