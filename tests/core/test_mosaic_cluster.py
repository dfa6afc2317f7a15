"""Large-area jobs on a Dask LocalCluster of 2 worker processes: a 16-tile mosaic cut from a real
DEM gives the in-process result of the uncut DEM for every raster algorithm and two chunk sizes;
a killed worker is replaced and the job still finishes with the same result; an interrupted job
resumes with only its missing chunks; a worker that cannot run the job is named."""
import os
import re
import signal
import sys
import time

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from core.declarations import RASTER_ALGORITHMS  # noqa: E402
from core.errors import DemError  # noqa: E402
from core.grid.progress import RecordingMonitor  # noqa: E402
from core.grid.raster import read_info  # noqa: E402
from core.largearea import chunks, cluster, mosaic  # noqa: E402
from core.largearea import manifest as manifests  # noqa: E402
from tests.mosaic_data import (  # noqa: E402
    JACKSBORO,
    OPTIONS,
    assert_same,
    cancelled_run,
    cut_tiles,
    job_manifest,
    reference,
)

CHUNK_SIZES = (64, 150)


@pytest.fixture(scope="module")
def engine():
    eng = cluster.DaskEngine.connect(None, workers=2, memory_limit="1GB")
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """16 tiles of about 100 × 86 cells cut from the Jacksboro SRTM3 DEM, and the in-process
    result of every algorithm on the uncut DEM."""
    root = tmp_path_factory.mktemp("mosaic")
    tiles = cut_tiles(JACKSBORO, str(root / "tiles"))
    refs = {name: reference(name, JACKSBORO, str(root / f"ref_{name}.tif"))
            for name in RASTER_ALGORITHMS}
    return {"root": root, "tiles": str(root / "tiles"), "count": len(tiles), "refs": refs}


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
@pytest.mark.parametrize("algorithm", RASTER_ALGORITHMS)
def test_mosaic_equals_single_raster(engine, data, algorithm, chunk_size, tmp_path):
    assert data["count"] >= 16
    out = str(tmp_path / f"{algorithm}.tif")
    result = mosaic.run_job(algorithm, data["tiles"], out, OPTIONS[algorithm], engine=engine,
                            chunk_size=chunk_size)
    assert_same(algorithm, out, data["refs"][algorithm])
    expected = len(mosaic.plan_chunks(read_info(JACKSBORO), chunk_size))
    assert len(result.computed) == result.chunks_total == expected
    # Every chunk was computed by a worker process, none by this one.
    assert not (tmp_path / f"{algorithm}_chunks").exists()


def test_statistics_pass_merges_to_the_whole_raster_moments(engine, data, tmp_path):
    from core.grid.raster import read_array
    from core.terrain import tpi

    result = mosaic.run_job("tpi", data["tiles"], str(tmp_path / "tpi.vrt"), OPTIONS["tpi"],
                            engine=engine, chunk_size=64)
    z, info = read_array(JACKSBORO)
    raw = tpi.tpi(z, tpi.neighbourhood("circle", 3.0, 0.0, "cells", info))
    assert result.stats["cells"] == np.isfinite(raw).sum()
    assert result.stats["mean"] == pytest.approx(np.nanmean(raw), abs=1e-9)
    assert result.stats["sd"] == pytest.approx(np.nanstd(raw), rel=1e-9)


def test_killed_worker_is_replaced_and_the_result_unchanged(engine, data, tmp_path):
    client = engine.client
    killed = []

    class KillOneWorker(RecordingMonitor):
        def chunks(self, phase, done, total, cells):
            if phase == "chunks" and done >= 3 and not killed:
                busy = [w for w, keys in client.processing().items() if keys]
                if not busy:  # between two chunks no worker holds one: try at the next
                    return
                pid = client.run(os.getpid)[busy[0]]
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    out = str(tmp_path / "sr.tif")
    result = mosaic.run_job("superresolution", data["tiles"], out, {}, engine=engine,
                            chunk_size=64, monitor=KillOneWorker())
    assert killed, "the monitor never killed a worker"
    assert_same("superresolution", out, data["refs"]["superresolution"])
    assert len(result.computed) == result.chunks_total
    client.wait_for_workers(2, timeout=60)  # the nanny restarted it
    assert killed[0] not in client.run(os.getpid).values()


def test_interrupted_job_resumes_with_only_the_missing_chunks(engine, data, tmp_path):
    out = str(tmp_path / "lf.tif")
    stop_after = 5

    records = cancelled_run("landforms", data["tiles"], out, stop_after, engine=engine,
                            chunk_size=64)["chunks"]
    assert not os.path.exists(out)
    first = {r["name"] for r in records if r["state"] == "done"}
    assert all(r.get("moments") for r in records)  # the statistics pass was complete
    assert stop_after <= len(first) < len(records)
    for name in first:  # each recorded chunk is a finished file
        assert os.path.exists(os.path.join(manifests.job_folder(out), name + ".tif"))

    result = mosaic.run_job("landforms", data["tiles"], out, {}, engine=engine, chunk_size=64)
    assert result.reduced == []  # the statistics were not computed again
    assert set(result.computed).isdisjoint(first)
    assert set(result.computed) | first == {r["name"] for r in records}
    assert_same("landforms", out, data["refs"]["landforms"])


def test_failing_chunk_names_itself_its_bounds_and_the_worker(engine, data, tmp_path):
    tiles = cut_tiles(JACKSBORO, str(tmp_path / "tiles"))
    broken = tiles[-1]
    size = os.path.getsize(broken)
    with open(broken, "r+b") as f:  # header intact, pixel data cut: reading it fails
        f.truncate(size // 2)
    out = str(tmp_path / "tpi.tif")
    with pytest.raises(DemError) as err:
        mosaic.run_job("tpi", str(tmp_path / "tiles"), out, {}, engine=engine, chunk_size=100)
    text = str(err.value)
    # Whichever chunk over the broken tile failed first, it is named with its own window.
    found = re.search(r"Chunk r(\d{4})_c(\d{4}) \(input rows (\d+)–(\d+), columns (\d+)–(\d+); "
                      r"x -?[\d.]+ to -?[\d.]+, y -?[\d.]+ to -?[\d.]+\) failed", text)
    assert found, text
    r, c, r0, r1, c0, c1 = map(int, found.groups())
    assert (r0, r1, c0, c1) == (100 * r, min(100 * r + 99, 343), 100 * c, min(100 * c + 99, 402))
    assert "tile_3_3.tif" in text  # the cause, as GDAL reported it
    assert "on worker tcp://" in text
    assert "run the same command again" in text
    assert not os.path.exists(out)
    folder = manifests.job_folder(out)
    done = [r["name"] for r in job_manifest(out)["chunks"] if r["state"] == "done"]
    assert done  # the chunks away from the broken tile are kept for a resume
    assert all(os.path.exists(os.path.join(folder, n + ".tif")) for n in done)


def test_worker_without_onnxruntime_is_named(engine, data, tmp_path):
    client = engine.client
    victim = sorted(client.nthreads())[0]

    def hide_onnxruntime():
        chunks._SESSIONS.clear()
        sys.modules["onnxruntime"] = None  # `import onnxruntime` now raises ImportError

    def restore_onnxruntime():
        sys.modules.pop("onnxruntime", None)

    client.run(hide_onnxruntime, workers=[victim])
    try:
        with pytest.raises(DemError) as err:
            mosaic.run_job("superresolution", data["tiles"], str(tmp_path / "sr.tif"), {},
                           engine=engine, chunk_size=150)
    finally:
        client.run(restore_onnxruntime, workers=[victim])
    assert f"worker {victim}" in str(err.value)
    assert "onnxruntime is not installed" in str(err.value)
    assert not os.path.exists(tmp_path / "sr_chunks")


def test_unreachable_scheduler_fails_fast_with_no_output(tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    with pytest.raises(DemError, match="Cannot reach the Dask scheduler"):
        cluster.DaskEngine.connect(f"tcp://127.0.0.1:{port}", connect_timeout=2)
    assert time.monotonic() - t0 < 10
    assert list(tmp_path.iterdir()) == []
