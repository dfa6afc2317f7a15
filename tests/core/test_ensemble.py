"""Self-ensemble: the mean over the 8 rotations and flips equals running the network on each
rotated raster by hand and rotating back; its spread is their standard deviation."""
import os

import numpy as np
import pytest

from core.grid import raster, writing
from core.grid.progress import RecordingMonitor
from core.superres import inference
from tests.helpers_onnx import write_model

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
JACKSBORO = os.path.join(ROOT, "data", "jacksboro_fault_srtm3.tif")
UTM = 'PROJCS["WGS 84 / UTM zone 17N",GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",' \
      '6378137,298.257223563]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],' \
      'PROJECTION["Transverse_Mercator"],PARAMETER["latitude_of_origin",0],' \
      'PARAMETER["central_meridian",-81],PARAMETER["scale_factor",0.9996],' \
      'PARAMETER["false_easting",500000],PARAMETER["false_northing",0],UNIT["metre",1]]'


def _dem(tmp_path, z, name):
    info = raster.RasterInfo(z.shape[1], z.shape[0], (500000.0, 90.0, 0.0, 4000000.0, 0.0, -90.0),
                             UTM)
    path = str(tmp_path / name)
    writing.write_array(path, z.astype(np.float32), info)
    return path


@pytest.fixture
def crop(tmp_path):
    z, _ = raster.read_array(JACKSBORO)
    return z[:52, :70].astype(np.float64)  # not square: rotations swap the tile's sides


def test_the_eight_transforms_are_distinct_and_undone():
    a = np.arange(12.0).reshape(3, 4)
    seen = set()
    for k, flip in inference.DIHEDRAL:
        t = inference.dihedral(a, k, flip)
        seen.add(t.tobytes() + bytes(t.shape))
        np.testing.assert_array_equal(inference.undo_dihedral(t, k, flip), a)
    assert len(seen) == 8


def test_ensemble_equals_the_mean_of_eight_rotated_runs(tmp_path, crop):
    model = write_model(tmp_path / "smooth_x2.onnx", "smooth", 2)  # not rotation-equivariant
    src = _dem(tmp_path, crop, "dem.tif")
    out, spread = str(tmp_path / "mean.tif"), str(tmp_path / "spread.tif")
    inference.superresolve(src, out, 2, model_file=model, device="cpu", spread_output=spread)
    members = []
    for k, flip in inference.DIHEDRAL:
        turned = _dem(tmp_path, inference.dihedral(crop, k, flip), f"t{k}{int(flip)}.tif")
        fine = str(tmp_path / f"f{k}{int(flip)}.tif")
        inference.superresolve(turned, fine, 2, model_file=model, device="cpu")
        members.append(inference.undo_dihedral(raster.read_array(fine)[0], k, flip))
    members = np.array(members, dtype=np.float64)
    got_mean, got_spread = raster.read_array(out)[0], raster.read_array(spread)[0]
    np.testing.assert_allclose(got_mean, members.mean(axis=0), atol=2e-3)
    np.testing.assert_allclose(got_spread, members.std(axis=0), atol=2e-3)
    assert got_spread.max() > 0.05  # the members really differ


def test_an_equivariant_model_has_no_spread_and_the_plain_result(tmp_path, crop):
    model = write_model(tmp_path / "nearest_x3.onnx", "nearest", 3)
    src = _dem(tmp_path, crop, "dem.tif")
    plain, mean, spread = (str(tmp_path / n) for n in ("p.tif", "m.tif", "s.tif"))
    inference.superresolve(src, plain, 3, model_file=model, device="cpu")
    inference.superresolve(src, mean, 3, model_file=model, device="cpu", ensemble=True,
                           spread_output=spread)
    np.testing.assert_allclose(raster.read_array(mean)[0], raster.read_array(plain)[0],
                               atol=1e-3)
    assert np.nanmax(raster.read_array(spread)[0]) < 1e-3


def test_ensemble_is_seamless_and_masks_nodata_in_both_outputs(tmp_path, crop):
    holey = crop.copy()
    holey[10:14, 20:31] = np.nan
    holey[40:, :5] = np.nan
    model = write_model(tmp_path / "smooth_x2.onnx", "smooth", 2)
    src = _dem(tmp_path, holey, "holey.tif")
    results = {}
    for tile in (0, 16):
        out, spread = str(tmp_path / f"m{tile}.tif"), str(tmp_path / f"s{tile}.tif")
        inference.superresolve(src, out, 2, model_file=model, device="cpu", tile_size=tile,
                               spread_output=spread)
        results[tile] = raster.read_array(out)[0], raster.read_array(spread)[0]
    footprint = np.kron(np.isnan(holey), np.ones((2, 2))).astype(bool)
    for mean, spread in results.values():
        assert np.array_equal(np.isnan(mean), footprint)
        assert np.array_equal(np.isnan(spread), footprint)
    np.testing.assert_allclose(results[16][0], results[0][0], atol=1e-3, equal_nan=True)
    np.testing.assert_allclose(results[16][1], results[0][1], atol=1e-3, equal_nan=True)


def test_cancelled_ensemble_leaves_neither_output(tmp_path, crop):
    model = write_model(tmp_path / "smooth_x2.onnx", "smooth", 2)
    src = _dem(tmp_path, crop, "dem.tif")
    out, spread = tmp_path / "m.tif", tmp_path / "s.tif"
    with pytest.raises(Exception, match="cancel"):
        inference.superresolve(src, str(out), 2, model_file=model, device="cpu", tile_size=16,
                               spread_output=str(spread), monitor=RecordingMonitor(2))
    assert not out.exists() and not spread.exists()
