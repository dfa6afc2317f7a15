"""The super-resolution runner with tiny ONNX models built here (tests/helpers_onnx.py)."""
import glob
import math
import os
import sys
import time

import numpy as np
import pytest
from osgeo import gdal

from core.errors import Cancelled, DemError
from core.grid import raster, writing
from core.grid.progress import RecordingMonitor
from core.superres import inference, models
from core.superres.scoring import upsample_baseline
from tests.helpers_onnx import write_model

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MANDAKINI = os.path.join(ROOT, "data", "mandakini_srtm90_utm44.tif")
JACKSBORO = os.path.join(ROOT, "data", "jacksboro_fault_srtm3.tif")
BUNDLED = sorted(glob.glob(os.path.join(ROOT, "models", "*.onnx")))


def read(path):
    return raster.read_array(path)


def write_dem(path, z, like=MANDAKINI, nodata=-9999.0):
    info = raster.read_info(like)
    writing.write_array(str(path), z, info, "Float32", nodata)
    return str(path)


@pytest.fixture
def smooth2(tmp_path):
    return write_model(tmp_path / "smooth_x2.onnx", "smooth", 2)


# Model cards ---------------------------------------------------------------------------------


def test_card_is_read_from_metadata(smooth2):
    card = models.read_card(smooth2)
    assert card.scales == (2,) and card.receptive_field == 3 and card.input_space == "coarse"
    assert card.normalisation_scale(90.0) == pytest.approx(9.0)
    # the card's rule is the one training uses on arrays: D = scale_m + scale_per_cell · cell
    np.testing.assert_allclose(models.normalisation_scale(np.array([30.0, 90.0]), 2.0, 0.1),
                               [5.0, 11.0])
    items = models.read_card_items(smooth2)  # the whole card as written, unchecked
    assert items["scales"] == [2] and items["receptive_field"] == 3
    assert items["normalisation"]["scale_per_cell"] == card.scale_per_cell


def test_model_without_card_is_refused(tmp_path):
    path = write_model(tmp_path / "nocard.onnx", "nearest", 2, card=None)
    with pytest.raises(DemError, match="no model card"):
        inference.superresolve(JACKSBORO, str(tmp_path / "o.tif"), 2, model_file=path)


def test_card_missing_a_key_names_it(tmp_path):
    card = {"card_version": 1, "family": "x", "scales": [2], "input_space": "coarse",
            "normalisation": {"offset": "tile_mean", "scale_m": 0, "scale_per_cell": 0.1}}
    path = write_model(tmp_path / "m.onnx", "nearest", 2, card=card)
    with pytest.raises(DemError, match="lacks receptive_field"):
        models.read_card(path)


@pytest.mark.parametrize("content", [b"", b"hello, I am not a model\n", os.urandom(4096)])
def test_corrupt_or_non_onnx_file(tmp_path, content):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(DemError, match="ONNX"):
        inference.superresolve(JACKSBORO, str(tmp_path / "o.tif"), 2, model_file=str(path))
    assert not (tmp_path / "o.tif").exists()


def test_truncated_onnx_file(tmp_path, smooth2):
    data = open(smooth2, "rb").read()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DemError):
        inference.superresolve(JACKSBORO, str(tmp_path / "o.tif"), 2, model_file=str(path))


def test_scale_the_model_lacks(tmp_path, smooth2):
    with pytest.raises(DemError, match="does not support scale x3"):
        inference.superresolve(JACKSBORO, str(tmp_path / "o.tif"), 3, model_file=smooth2)


def test_model_with_two_inputs(tmp_path):
    path = write_model(tmp_path / "two.onnx", "nearest", 2, two_inputs=True)
    with pytest.raises(DemError, match="2 input"):
        inference.superresolve(JACKSBORO, str(tmp_path / "o.tif"), 2, model_file=path)


def test_card_scale_not_matching_the_network(tmp_path):
    path = write_model(tmp_path / "liar.onnx", "nearest", 2, extra={"scales": [3]})
    with pytest.raises(DemError, match="expected"):
        inference.superresolve(JACKSBORO, str(tmp_path / "o.tif"), 3, model_file=path)
    assert not (tmp_path / "o.tif").exists()


def test_bundled_family_discovery(tmp_path):
    write_model(tmp_path / "alpha_x2.onnx", "nearest", 2, extra={"family": "alpha"})
    write_model(tmp_path / "beta_x2.onnx", "smooth", 2, extra={"family": "beta"})
    write_model(tmp_path / "beta_x3.onnx", "smooth", 3, extra={"family": "beta"})
    (tmp_path / "junk.onnx").write_bytes(b"junk")
    assert models.bundled_families(str(tmp_path)) == (["alpha", "beta"], "alpha")
    write_model(tmp_path / "beta_x4.onnx", "smooth", 4, extra={"family": "beta", "default": True})
    assert models.bundled_families(str(tmp_path)) == (["alpha", "beta"], "beta")
    assert models.bundled_model("beta", 3, str(tmp_path)).path.endswith("beta_x3.onnx")
    with pytest.raises(DemError, match="no x4 version"):
        models.bundled_model("alpha", 4, str(tmp_path))
    with pytest.raises(DemError, match="No bundled model 'gamma'"):
        models.bundled_model("gamma", 2, str(tmp_path))


# Devices -------------------------------------------------------------------------------------


def test_cuda_asked_without_cuda_is_an_error(tmp_path, smooth2):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine has the CUDA provider")
    with pytest.raises(DemError, match="DEVICE=cuda.*CPU build"):
        inference.superresolve(JACKSBORO, str(tmp_path / "o.tif"), 2, model_file=smooth2,
                              device="cuda")
    assert not (tmp_path / "o.tif").exists()


def test_auto_reports_the_provider_used(tmp_path, smooth2):
    mon = RecordingMonitor()
    res = inference.superresolve(JACKSBORO, str(tmp_path / "o.tif"), 2, model_file=smooth2,
                                monitor=mon)
    assert res.device_used in ("CPUExecutionProvider", "CUDAExecutionProvider")
    assert any(res.device_used in m for m in mon.infos)


def test_onnxruntime_missing(tmp_path, smooth2, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    assert inference.onnxruntime_available() == (False, inference.INSTALL_HINT)
    with pytest.raises(DemError, match="onnxruntime is not installed.*pip install"):
        inference.superresolve(JACKSBORO, str(tmp_path / "o.tif"), 2, model_file=smooth2)


@pytest.mark.parametrize("platform,says", [
    ("linux", "--user --break-system-packages onnxruntime"),
    ("win32", "OSGeo4W Shell"),
    ("darwin", "QGIS.app"),
    ("freebsd14", "python3 -m pip install --user"),
])
def test_install_hint_fits_the_platform(platform, says):
    hint = inference.install_hint(platform)
    assert says in hint and "onnxruntime" in hint


def test_linux_install_keeps_the_numpy_qgis_runs_with():
    # numpy<2 would make pip replace (or fail to build) numpy where the system's is 2.x.
    hint = inference.install_hint("linux")
    assert f'onnxruntime "numpy=={np.__version__}"' in hint
    assert "numpy<" not in hint


# Numbers and georeferencing ------------------------------------------------------------------


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_nearest_model_repeats_each_cell(tmp_path, scale):
    path = write_model(tmp_path / "n.onnx", "nearest", scale)
    out = inference.superresolve(JACKSBORO, str(tmp_path / "o.tif"), scale, model_file=path)
    z, info = read(JACKSBORO)
    y, out_info = read(out.output)
    assert y.dtype == np.float32 and out_info.data_type == "Float32"
    expected = np.repeat(np.repeat(z, scale, 0), scale, 1)
    assert np.nanmax(np.abs(y - expected)) <= 1e-3


@pytest.mark.parametrize("dem", [MANDAKINI, JACKSBORO])
@pytest.mark.parametrize("scale", [2, 3])
def test_georeferencing_projected_and_geographic(tmp_path, smooth2, dem, scale):
    path = smooth2 if scale == 2 else write_model(tmp_path / "s3.onnx", "smooth", 3)
    out = inference.superresolve(dem, str(tmp_path / "o.tif"), scale, model_file=path)
    src = gdal.Open(dem)
    dst = gdal.Open(out.output)
    gs, gd = src.GetGeoTransform(), dst.GetGeoTransform()
    assert (gd[0], gd[3]) == (gs[0], gs[3])
    assert gd[1] == pytest.approx(gs[1] / scale, rel=1e-12)
    assert gd[5] == pytest.approx(gs[5] / scale, rel=1e-12)
    assert (dst.RasterXSize, dst.RasterYSize) == (src.RasterXSize * scale,
                                                  src.RasterYSize * scale)
    assert dst.GetProjection() == src.GetProjection()
    band = dst.GetRasterBand(1)
    assert band.DataType == gdal.GDT_Float32
    assert band.GetMetadataItem("COMPRESSION", "IMAGE_STRUCTURE") or True
    assert dst.GetMetadata("IMAGE_STRUCTURE").get("COMPRESSION") == "DEFLATE"
    nodata = src.GetRasterBand(1).GetNoDataValue()
    if nodata is not None:
        assert band.GetNoDataValue() == nodata
    else:
        assert math.isnan(band.GetNoDataValue())


@pytest.fixture
def holey_mandakini(tmp_path):
    """Mandakini (its own −9999 mask) with an extra 6×9 hole and a lone nodata cell."""
    z, _ = read(MANDAKINI)
    z = z.copy()
    z[300:306, 250:259] = np.nan
    z[100, 400] = np.nan
    return write_dem(tmp_path / "holey.tif", z)


def test_tiled_equals_untiled(tmp_path, smooth2, holey_mandakini):
    info = raster.read_info(holey_mandakini)
    results = {}
    for tile in (64, 200, max(info.width, info.height)):
        out = inference.superresolve(holey_mandakini, str(tmp_path / f"t{tile}.tif"), 2,
                                    model_file=smooth2, tile_size=tile)
        results[tile] = read(out.output)[0]
    whole = results[max(info.width, info.height)]
    for tile in (64, 200):
        assert np.array_equal(np.isnan(results[tile]), np.isnan(whole))
        assert np.nanmax(np.abs(results[tile] - whole)) <= 1e-3, tile


def test_nodata_hole_is_exactly_the_upscaled_footprint(tmp_path, smooth2, holey_mandakini):
    for scale, path in ((2, smooth2), (3, write_model(tmp_path / "s3.onnx", "smooth", 3))):
        out = inference.superresolve(holey_mandakini, str(tmp_path / f"o{scale}.tif"), scale,
                                    model_file=path, tile_size=128)
        z, _ = read(holey_mandakini)
        y, info = read(out.output)
        footprint = np.repeat(np.repeat(np.isnan(z), scale, 0), scale, 1)
        assert np.array_equal(np.isnan(y), footprint)
        assert info.nodata == -9999.0
        # The ring of cells around the hole: finite and within the local relief.
        ring = z[298:308, 248:261]
        y_ring = y[298 * scale : 308 * scale, 248 * scale : 261 * scale]
        valid = ~np.isnan(y_ring)
        assert valid.sum() == (10 * 13 - 6 * 9) * scale * scale
        lo, hi = np.nanmin(ring), np.nanmax(ring)
        margin = 0.2 * (hi - lo) + 1
        assert np.all((y_ring[valid] > lo - margin) & (y_ring[valid] < hi + margin))


def test_all_nodata_raster_is_a_clear_error(tmp_path, smooth2):
    z = np.full((50, 60), np.nan, np.float32)
    dem = write_dem(tmp_path / "empty.tif", z)
    with pytest.raises(DemError, match="no valid cell"):
        inference.superresolve(dem, str(tmp_path / "o.tif"), 2, model_file=smooth2)
    assert not (tmp_path / "o.tif").exists()


def test_raster_smaller_than_one_tile(tmp_path, smooth2):
    z, _ = read(JACKSBORO)
    small = z[:7, :11]
    info = raster.read_info(JACKSBORO)
    writing.write_array(str(tmp_path / "small.tif"), small, info, "Float32")
    for tile in (0, 64):
        out = inference.superresolve(str(tmp_path / "small.tif"), str(tmp_path / f"o{tile}.tif"),
                                    2, model_file=smooth2, tile_size=tile)
        y, _ = read(out.output)
        assert y.shape == (14, 22) and np.isfinite(y).all()


def test_upsampled_input_space(tmp_path):
    path = write_model(tmp_path / "up.onnx", "upsampled", 2)
    out = inference.superresolve(JACKSBORO, str(tmp_path / "o.tif"), 2, model_file=path,
                                tile_size=100)
    whole = inference.superresolve(JACKSBORO, str(tmp_path / "w.tif"), 2, model_file=path)
    z, _ = read(JACKSBORO)
    y, _ = read(out.output)
    bic = inference.bicubic_upsample(z, 2)
    assert y.shape == bic.shape
    relief = np.nanmax(z) - np.nanmin(z)
    assert np.sqrt(np.mean((y - bic) ** 2)) < 0.02 * relief
    assert np.max(np.abs(y - read(whole.output)[0])) <= 1e-3


def test_bicubic_matches_gdal_cubic_inside(tmp_path):
    z, _ = read(JACKSBORO)
    z = z[:60, :80].astype(np.float64)
    for s in (2, 3, 4):
        ours = inference.bicubic_upsample(z, s)
        gdal_cubic = upsample_baseline(z, s, "bicubic")
        b = 3 * s
        assert np.max(np.abs(ours - gdal_cubic)[b:-b, b:-b]) < 1e-6


def test_progress_per_tile_and_cancel_leaves_nothing(tmp_path, smooth2):
    mon = RecordingMonitor()
    inference.superresolve(MANDAKINI, str(tmp_path / "o.tif"), 2, model_file=smooth2,
                          tile_size=200, monitor=mon)
    assert len(mon.fractions) == 4 * 3 and mon.fractions[-1] == 1.0
    mon = RecordingMonitor(cancel_after=2)
    with pytest.raises(Cancelled):
        inference.superresolve(MANDAKINI, str(tmp_path / "c.tif"), 2, model_file=smooth2,
                              tile_size=200, monitor=mon)
    assert not (tmp_path / "c.tif").exists()


def test_tile_plan(smooth2):
    card = models.read_card(smooth2)
    info = raster.read_info(MANDAKINI)
    plan = inference.plan_tiles(card, 2, info, inference.CPU)
    assert plan.context >= card.receptive_field
    assert plan.halo >= plan.context + math.sqrt(2) * card.receptive_field
    assert inference.MIN_TILE <= plan.tile <= max(info.width, info.height)
    with pytest.raises(DemError, match="TILE_SIZE"):
        inference.plan_tiles(card, 2, info, inference.CPU, tile_size=3)


# Bundled models (skipped until the trained models are in models/) -----------------------------


@pytest.mark.skipif(not BUNDLED, reason="no bundled model in models/ yet")
@pytest.mark.parametrize("path", BUNDLED, ids=[os.path.basename(p) for p in BUNDLED])
def test_bundled_model_loads_and_is_close_to_bicubic(tmp_path, path):
    card = models.read_card(path)
    assert card.family and card.scales and card.receptive_field >= 0
    # One file per scale is <family>_x<S>.onnx; one file for several scales is <family>.onnx.
    single = f"{card.family}_x{card.scales[0]}.onnx"
    assert os.path.basename(path) == (single if len(card.scales) == 1 else f"{card.family}.onnx")
    scale = card.scales[0]
    z, info = read(JACKSBORO)
    crop = z[:96, :128]
    dem = str(tmp_path / "crop.tif")
    writing.write_array(dem, crop, info, "Float32")
    out = inference.superresolve(dem, str(tmp_path / "o.tif"), scale, model_file=path)
    y, _ = read(out.output)
    assert np.isfinite(y).all()
    bic = inference.bicubic_upsample(crop.astype(np.float64), scale)
    relief = float(np.max(crop) - np.min(crop))
    rmse = float(np.sqrt(np.mean((y - bic) ** 2)))
    assert rmse < 0.05 * relief, (rmse, relief)


def test_tiles_are_evened_out_over_the_raster():
    from core.superres.inference import even_tile

    halo = 57
    # 3601 cells by tiles of at most 1184: 4 per side either way, but 912 wastes no last row.
    assert even_tile(1184, 3601, 3601, halo) == 912
    work = {t: math.ceil(3601 / t) ** 2 * (t + 2 * halo) ** 2 for t in (1184, 912)}
    assert work[912] < 0.65 * work[1184]
    # A strip: 1000 rows fit one tile row; the columns still get 4 tiles, a little smaller.
    assert even_tile(1184, 3601, 1000, halo) == 1008
    # Already even: unchanged; never larger than allowed.
    assert even_tile(1024, 1024, 1024, halo) == 1024
    for w, h in ((500, 7000), (2049, 2049), (100, 90)):
        assert even_tile(1184, w, h, halo) <= 1184


class CancelAfter(RecordingMonitor):
    """Says cancelled once `seconds` have passed since it was made."""

    def __init__(self, seconds):
        super().__init__()
        self.at = time.perf_counter() + seconds

    def cancelled(self):
        return time.perf_counter() >= self.at


def test_a_cancel_stops_a_network_pass_midway_and_results_stay_the_same_to_the_bit():
    session = inference.open_session(inference.load_card(2, "fastsr"), "cpu")
    x = np.random.default_rng(4).normal(size=(1, 1, 160, 160)).astype(np.float32)
    # with a monitor the pass is the same computation, to the bit
    assert np.array_equal(session.run(x), session.run(x, RecordingMonitor()))
    # a pass that takes seconds stops within a fraction of one after the cancel
    big = np.random.default_rng(5).normal(size=(1, 1, 640, 640)).astype(np.float32)
    t0 = time.perf_counter()
    session.run(big)
    whole = time.perf_counter() - t0
    monitor = CancelAfter(0.2 * whole)
    with pytest.raises(Cancelled):
        session.run(big, monitor)
    assert time.perf_counter() - monitor.at < max(0.5 * whole, 1.0)
