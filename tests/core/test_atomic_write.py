"""Outputs appear under their final name only when complete: temporary name, then rename."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from osgeo import gdal

from core.errors import Cancelled, DemError
from core.grid import writing
from core.grid.progress import RecordingMonitor

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "data")
GEO_DEM = os.path.join(DATA, "jacksboro_fault_srtm3.tif")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def _listing(folder):
    return sorted(os.listdir(folder))


def test_final_name_appears_only_after_the_last_block(tmp_path):
    out = str(tmp_path / "o.tif")
    seen = []

    def identity(padded, block):
        # While blocks are written only the hidden temporary exists.
        seen.append((os.path.exists(out), [n for n in _listing(tmp_path) if ".partial-" in n]))
        return padded

    writing.process_blocks(GEO_DEM, out, identity, block_size=64)
    assert all(not exists and len(partials) == 1 for exists, partials in seen)
    assert all(p[0].startswith(".o.tif.partial-") for _, p in seen)
    assert _listing(tmp_path) == ["o.tif"]
    assert np.array_equal(gdal.Open(out).ReadAsArray(), gdal.Open(GEO_DEM).ReadAsArray())


def test_cancel_keeps_the_previous_output_and_removes_the_temporary(tmp_path):
    out = str(tmp_path / "o.tif")
    writing.process_blocks(GEO_DEM, out, lambda p, b: p + 1, block_size=64)
    before = gdal.Open(out).ReadAsArray()
    with pytest.raises(Cancelled):
        writing.process_blocks(GEO_DEM, out, lambda p, b: p - 1, block_size=64,
                              monitor=RecordingMonitor(cancel_after=3))
    assert _listing(tmp_path) == ["o.tif"]
    assert np.array_equal(gdal.Open(out).ReadAsArray(), before)


def test_a_new_output_drops_the_old_side_car(tmp_path):
    # An .aux.xml describing the previous raster (class names, statistics) must not survive.
    out = str(tmp_path / "o.tif")
    writing.process_blocks(GEO_DEM, out, lambda p, b: p, block_size=64)
    with open(out + ".aux.xml", "w") as f:
        f.write("<PAMDataset><Metadata><MDI key='OLD'>1</MDI></Metadata></PAMDataset>")
    writing.process_blocks(GEO_DEM, out, lambda p, b: p, block_size=64)
    assert not os.path.exists(out + ".aux.xml")
    assert "OLD" not in gdal.Open(out).GetMetadata()


def test_decoration_travels_with_the_rename(tmp_path):
    out = str(tmp_path / "o.tif")

    def decorate(ds):
        ds.GetRasterBand(1).SetCategoryNames(["zero", "one"])  # GDAL keeps these in the .aux.xml

    writing.process_blocks(GEO_DEM, out, lambda p, b: p > 500, block_size=64, data_type="Byte",
                          nodata=255, decorate=decorate)
    assert sorted(_listing(tmp_path)) == ["o.tif", "o.tif.aux.xml"]
    ds = gdal.Open(out)
    band = ds.GetRasterBand(1)
    band.GetMetadata()  # GDAL 3.6's GTiff loads the .aux.xml lazily, not on GetCategoryNames
    assert band.GetCategoryNames() == ["zero", "one"]


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path):
    out = str(tmp_path / "o.tif")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)
    host = os.uname().nodename
    stale = tmp_path / f".o.tif.partial-{host}-{dead_pid}-deadbeef"
    alive = tmp_path / f".o.tif.partial-{host}-{os.getpid()}-cafecafe"
    other_host = tmp_path / f".o.tif.partial-elsewhere-{dead_pid}-12345678"
    for path in (stale, alive, other_host):
        path.write_bytes(b"partial")
    writing.process_blocks(GEO_DEM, out, lambda p, b: p, block_size=256)
    assert not stale.exists()
    assert alive.exists() and other_host.exists()


def test_unwritable_folder_fails_before_any_block(tmp_path):
    calls = []
    missing = str(tmp_path / "no" / "such" / "o.tif")
    with pytest.raises(DemError, match="does not exist"):
        writing.process_blocks(GEO_DEM, missing, lambda p, b: calls.append(1) or p)
    assert calls == []


@pytest.mark.skipif(os.name != "posix", reason="signals")
def test_killed_writer_leaves_nothing_under_the_final_name(tmp_path):
    out = str(tmp_path / "killed.tif")
    script = (
        "import sys, time; sys.path.insert(0, sys.argv[1]); from core.grid import writing\n"
        "def slow(p, b):\n"
        "    print(b.index, flush=True); time.sleep(0.2); return p\n"
        "writing.process_blocks(sys.argv[2], sys.argv[3], slow, block_size=32)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, REPO, GEO_DEM, out],
                            stdout=subprocess.PIPE, text=True)
    proc.stdout.readline()
    proc.stdout.readline()  # two blocks are in the file: it is well under way
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    time.sleep(0.1)
    assert proc.returncode != 0
    assert not os.path.exists(out)
    leftovers = _listing(tmp_path)
    assert len(leftovers) == 1 and leftovers[0].startswith(".killed.tif.partial-")
    # The next run cleans the dead run's temporary and writes the whole raster.
    writing.process_blocks(GEO_DEM, out, lambda p, b: p, block_size=256)
    assert _listing(tmp_path) == ["killed.tif"]
