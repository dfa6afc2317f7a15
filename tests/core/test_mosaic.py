"""Large-area jobs in this process (no Dask): tile binding, gaps, the manifest, resume and refusal,
output formats, bad input, the command line."""
import io
import os
import sys

import numpy as np
import pytest
from osgeo import gdal

from core import batch
from core.declarations import RASTER_ALGORITHMS, SPECS
from core.errors import Cancelled, DemError
from core.grid.raster import read_array, read_info
from core.largearea import cluster, inputs, mosaic
from core.largearea import manifest as manifests
from core.terrain import tpi
from tests.mosaic_data import (
    JACKSBORO,
    MANDAKINI,
    OPTIONS,
    StopAfterChunks,
    assert_same,
    cancelled_run,
    cut_tiles,
    read,
    reference,
    tile_window,
)

DEFAULT_TPI = {"radius": 2.0, "shape": "square", "standardize": False}


@pytest.fixture(scope="module")
def tiles(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiles")
    cut_tiles(JACKSBORO, str(folder))
    return str(folder)


def test_bound_tiles_have_the_grid_of_the_uncut_dem(tiles):
    xml = inputs.bind_tiles(inputs.list_tiles(tiles))
    gdal.FileFromMemBuffer("/vsimem/t.vrt", xml.encode())
    try:
        a, info = read_array("/vsimem/t.vrt")
    finally:
        gdal.Unlink("/vsimem/t.vrt")
    b, ref = read_array(JACKSBORO)
    assert (info.width, info.height, info.geotransform) == (ref.width, ref.height,
                                                             ref.geotransform)
    assert np.array_equal(a, b)
    assert info.nodata == -32768  # Int16 tiles declaring no nodata: SRTM's void value


def test_gap_between_tiles_is_nodata(tmp_path):
    """A mosaic with one tile missing equals the uncut DEM with that tile's cells as nodata; the
    chunks inside the gap are skipped without reading anything."""
    cut_tiles(JACKSBORO, str(tmp_path / "tiles"), skip={(1, 2)})
    z, info = read_array(JACKSBORO)
    rows, cols = tile_window(JACKSBORO, 4, 4, 1, 2)
    z[rows, cols] = np.nan
    holed = str(tmp_path / "holed.tif")
    ds = gdal.GetDriverByName("GTiff").Create(holed, info.width, info.height, 1, gdal.GDT_Int16)
    ds.SetGeoTransform(info.geotransform)
    ds.SetProjection(info.crs_wkt)
    ds.GetRasterBand(1).SetNoDataValue(-32768)
    ds.GetRasterBand(1).WriteArray(np.where(np.isnan(z), -32768, z).astype(np.int16))
    ds = None
    ref = reference("tpi", holed, str(tmp_path / "ref.tif"))
    out = str(tmp_path / "tpi.tif")
    result = mosaic.run_job("tpi", str(tmp_path / "tiles"), out,
                            {"radius": 3.0, "shape": "circle", "standardize": True},
                            chunk_size=40)
    assert_same("tpi", out, ref)
    assert result.chunks_empty >= 1
    assert result.chunks_empty + len(result.computed) == result.chunks_total


def test_tile_list_file_with_relative_paths(tiles, tmp_path):
    listing = tmp_path / "tiles.txt"
    rel = [os.path.relpath(p, tmp_path) for p in inputs.list_tiles(tiles)]
    listing.write_text("# the Jacksboro tiles\n" + "\n".join(rel) + "\n\n")
    assert inputs.list_tiles(str(listing)) == inputs.list_tiles(tiles)


def test_tiles_in_two_crs_are_refused(tiles, tmp_path):
    other = str(tmp_path / "utm.tif")
    gdal.Translate(other, MANDAKINI, srcWin=[0, 0, 50, 50])
    with pytest.raises(DemError, match="another CRS"):
        inputs.bind_tiles(inputs.list_tiles(tiles) + [other])


def test_vrt_output_keeps_chunks_and_carries_the_legend(tiles, tmp_path):
    ref = reference("landforms", JACKSBORO, str(tmp_path / "ref.tif"))
    out = str(tmp_path / "lf.vrt")
    mosaic.run_job("landforms", tiles, out, {}, chunk_size=100)
    assert_same("landforms", out, ref)
    ds = gdal.Open(out)
    band = ds.GetRasterBand(1)
    assert band.GetColorTable() is not None
    assert band.GetCategoryNames()[10] == "Mountain tops, high ridges"
    assert band.GetNoDataValue() == 0
    assert os.path.isdir(manifests.job_folder(out))


def test_cog_output_on_projected_dem_with_nodata(tmp_path):
    """Mandakini (UTM, 45 % nodata), radii in map units: the COG equals the in-process result."""
    options = {"radius": 300.0, "shape": "circle", "units": "map units"}
    ref = reference("tpi", MANDAKINI, str(tmp_path / "ref.tif"), options)
    out = str(tmp_path / "tpi.tif")
    result = mosaic.run_job("tpi", MANDAKINI, out, {**OPTIONS["tpi"], **options}, chunk_size=128,
                            cog=True)
    assert_same("tpi", out, ref)
    assert gdal.Open(out).GetMetadata("IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    assert result.chunks_empty >= 1  # the basin mask leaves whole chunks without data
    assert not os.path.exists(manifests.job_folder(out))  # removed once the .tif is in place


def test_manifest_records_the_job_and_refuses_other_parameters(tiles, tmp_path):
    out = str(tmp_path / "lf.tif")
    manifest = cancelled_run("landforms", tiles, out, 8, chunk_size=100)
    assert manifest["job"]["algorithm"] == "landforms"
    assert manifest["job"]["parameters"]["large_radius"] == 22.0
    assert manifest["job"]["grid"]["chunk_size"] == 100
    assert manifest["job"]["grid"]["halo"] == 23  # large radius 22 + 1 for the slope
    assert len(manifest["chunks"]) == 4 * 5
    assert {r["state"] for r in manifest["chunks"]} == {"done", "pending"}
    with pytest.raises(DemError, match=r"large_radius: 22.0 → 10.0.*overwrite"):
        mosaic.run_job("landforms", tiles, out, {"large_radius": 10.0}, chunk_size=100)
    with pytest.raises(DemError, match=r"chunk_size: 100 → 120"):
        mosaic.run_job("landforms", tiles, out, {}, chunk_size=120)
    ref = reference("landforms", JACKSBORO, str(tmp_path / "ref.tif"), {"large_radius": 10.0})
    result = mosaic.run_job("landforms", tiles, out, {"large_radius": 10.0}, chunk_size=100,
                            overwrite=True)
    assert len(result.computed) == 20
    assert_same("landforms", out, ref)


def _rewrite_tile(path: str, offset: float) -> None:
    """Edit a tile in place (what re-running a correction over one tile does): same grid, cells
    raised by `offset`, a later modification time."""
    ds = gdal.Open(path, gdal.GA_Update)
    band = ds.GetRasterBand(1)
    band.WriteArray(band.ReadAsArray() + offset)
    ds = None
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


def test_resume_refuses_a_tile_edited_added_or_removed_since_the_job_started(tmp_path):
    folder = tmp_path / "tiles"
    paths = cut_tiles(JACKSBORO, str(folder), skip={(3, 3)})
    out = str(tmp_path / "att.tif")
    manifest = cancelled_run("attraction", str(folder), out, 3, chunk_size=100)
    assert sorted(manifest["job"]["input_files"]) == sorted(paths)
    _rewrite_tile(paths[5], 100.0)
    cut_tiles(JACKSBORO, str(tmp_path / "all"))
    os.rename(tmp_path / "all" / "tile_3_3.tif", folder / "tile_3_3.tif")
    os.remove(paths[0])
    with pytest.raises(DemError, match=r"tile_1_1\.tif changed; tile_3_3\.tif added; "
                                       r"tile_0_0\.tif removed.*overwrite"):
        mosaic.run_job("attraction", str(folder), out, {}, chunk_size=100)
    # Started over, the result is the edited mosaic's, not a blend of old and new chunks.
    result = mosaic.run_job("attraction", str(folder), out, {}, chunk_size=100, overwrite=True)
    assert len(result.computed) == len(manifest["chunks"]) - result.chunks_empty
    edited = tmp_path / "edited.vrt"
    edited.write_text(inputs.bind_tiles(inputs.list_tiles(str(folder))))
    ref = reference("attraction", str(edited), str(tmp_path / "ref.tif"))
    assert_same("attraction", out, ref)


def test_resume_ignores_statistics_sidecars_and_sees_a_vrt_source_edited(tmp_path):
    folder = tmp_path / "tiles"
    paths = cut_tiles(JACKSBORO, str(folder))
    vrt = str(tmp_path / "mosaic.vrt")
    gdal.BuildVRT(vrt, paths)
    out = str(tmp_path / "att.tif")
    manifest = cancelled_run("attraction", vrt, out, 3, chunk_size=100)
    assert set(manifest["job"]["input_files"]) == {vrt, *paths}
    # QGIS writes band statistics beside a layer it shows; that must not void the job.
    for path in paths:
        ds = gdal.Open(path)
        ds.GetRasterBand(1).ComputeStatistics(False)
        ds = None
    assert os.path.exists(paths[0] + ".aux.xml")
    _rewrite_tile(paths[2], -5.0)
    with pytest.raises(DemError, match=r"input \(tile_0_2\.tif changed\)"):
        mosaic.run_job("attraction", vrt, out, {}, chunk_size=100)


def test_in_process_resume_and_class_table(tiles, tmp_path):
    from core.terrain import landforms

    out = str(tmp_path / "lf.vrt")
    chunks = cancelled_run("landforms", tiles, out, 12, chunk_size=100)["chunks"]
    first = {r["name"] for r in chunks if r["state"] == "done"}
    result = mosaic.run_job("landforms", tiles, out, {}, chunk_size=100)
    assert first and set(result.computed).isdisjoint(first)
    assert len(first) + len(result.computed) == 20
    info = read_info(JACKSBORO)
    settings = landforms.Settings(tpi.neighbourhood("square", 2, 0, "cells", info),
                                  tpi.neighbourhood("square", 22, 0, "cells", info))
    expected = landforms.landforms_raster(JACKSBORO, str(tmp_path / "ref.tif"), settings)
    for got, want in zip(result.stats["rows"], expected["rows"]):
        assert got[:3] == want[:3]  # code, name and cells exactly
        assert got[3:] == pytest.approx(want[3:], rel=1e-12)
    again = mosaic.run_job("landforms", tiles, out, {}, chunk_size=100)
    assert again.computed == [] and again.stats["rows"] == result.stats["rows"]


def test_output_folder_missing_is_refused_before_any_work(tiles, tmp_path):
    out = str(tmp_path / "no" / "such" / "folder" / "x.tif")
    with pytest.raises(DemError, match="does not exist"):
        mosaic.run_job("tpi", tiles, out)
    assert list(tmp_path.iterdir()) == []


def test_full_disk_is_refused_before_any_work(tiles, tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(DemError, match="Not enough free disk space"):
        mosaic.run_job("superresolution", tiles, str(tmp_path / "x.tif"))
    assert list(tmp_path.iterdir()) == []


def test_bad_output_extension_and_unknown_parameter(tiles, tmp_path):
    # .png is an image format, not a grid: refused with the extensions that are accepted.
    with pytest.raises(DemError, match=r"cannot write a raster as '\.png'; use one of .*\.tif, "):
        mosaic.run_job("tpi", tiles, str(tmp_path / "x.png"))
    with pytest.raises(DemError, match="no parameter 'radious'"):
        mosaic.run_job("tpi", tiles, str(tmp_path / "x.tif"), {"radious": 3})


def test_without_dask_in_process_works_and_distributed_says_what_to_install(
        tiles, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` fails
    with pytest.raises(DemError, match=r'pip install "dask\[distributed\]"'):
        cluster.engine_for("local")
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    assert batch.main(["tpi", tiles, str(tmp_path / "a.tif")]) == 1
    assert 'pip install "dask[distributed]"' in err.getvalue()
    assert not (tmp_path / "a.tif").exists()
    assert batch.main(["tpi", tiles, str(tmp_path / "b.tif"), "--workers", "0", "--quiet"]) == 0
    assert_same("tpi", str(tmp_path / "b.tif"),
                reference("tpi", JACKSBORO, str(tmp_path / "ref.tif"), DEFAULT_TPI))


def test_command_line_options_in_both_spellings(tiles, tmp_path, capsys):
    out = str(tmp_path / "lf.tif")
    table = str(tmp_path / "areas.csv")
    code = batch.main(["landforms", tiles, out, "--small_radius", "3", "--large-radius", "12",
                       "--shape", "1", "--scheme", "slopeposition6", "--workers", "0",
                       "--chunk-size", "128", "--output-table", table])
    assert code == 0
    ref = reference("landforms", JACKSBORO, str(tmp_path / "ref.tif"),
                    {"small_radius": 3.0, "large_radius": 12.0, "shape": "circle",
                     "scheme": "slopeposition6"})
    assert_same("landforms", out, ref)
    lines = open(table).read().splitlines()
    assert lines[0] == "code,class,cells,area_km2,percent" and len(lines) == 7
    stderr = capsys.readouterr().err
    assert "chunks [" in stderr and "MP/s" in stderr and "ETA" in stderr
    assert batch.main(["landforms", tiles, out, "--workers", "0", "--quiet"]) == 1  # exists


def test_cli_defaults_are_the_algorithms_defaults():
    for name in RASTER_ALGORITHMS:
        args = batch.parser().parse_args([name, "in.tif", "out.tif"])
        for key, default in SPECS[name].defaults().items():
            if key == "model":
                continue  # resolved to the bundled default family by name
            assert getattr(args, key) == default, (name, key)


def test_progress_bar_shows_chunks_throughput_and_eta():
    stream = io.StringIO()
    bar = batch.ProgressBar(stream)
    bar.chunks("chunks", 0, 10, 0)
    bar.chunks("chunks", 10, 10, 4_000_000)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("chunks") and "0/10 chunks" in lines[0]
    assert "10/10 chunks [########################]" in lines[-1]
    assert "MP/s" in lines[-1] and "ETA 0:00:00" in lines[-1]


def test_read_of_results_helper_sees_nodata(tmp_path):
    # The helper the equivalence tests rely on must turn declared nodata into NaN.
    out = reference("tpi", MANDAKINI, str(tmp_path / "t.tif"), DEFAULT_TPI)
    values, nodata, _, _ = read(out)
    assert nodata == -9999.0 and np.isnan(values).any() and not (values == -9999.0).any()


def test_self_ensemble_chunked_equals_in_process(tmp_path):
    from core.superres import inference

    dem = str(tmp_path / "crop.tif")
    gdal.Translate(dem, JACKSBORO, srcWin=[100, 80, 160, 120])
    ref = str(tmp_path / "ref.tif")
    inference.superresolve(dem, ref, 2, device="cpu", ensemble=True)
    out = str(tmp_path / "sr.tif")
    mosaic.run_job("superresolution", dem, out, {"ensemble": True, "device": "cpu"},
                   chunk_size=64)
    assert_same("superresolution", out, ref)


@pytest.fixture(scope="module")
def spread_reference(tmp_path_factory):
    """A crop with nodata cells and its in-process ensemble mean and spread."""
    from core.superres import inference

    folder = tmp_path_factory.mktemp("spread")
    dem = str(folder / "crop.tif")
    gdal.Translate(dem, MANDAKINI, srcWin=[400, 240, 150, 130])  # 31 % nodata
    ref, ref_spread = str(folder / "ref.tif"), str(folder / "ref_spread.tif")
    inference.superresolve(dem, ref, 2, device="cpu", spread_output=ref_spread)
    return dem, ref, ref_spread


@pytest.mark.parametrize("ext", [".tif", ".vrt"])
def test_spread_output_chunked_equals_in_process(spread_reference, tmp_path, ext):
    dem, ref, ref_spread = spread_reference
    out, spread = str(tmp_path / f"sr{ext}"), str(tmp_path / f"spread{ext}")
    # No ENSEMBLE option: the spread implies it, as in the algorithm.
    result = mosaic.run_job("superresolution", dem, out, {"device": "cpu"}, chunk_size=64,
                            spread_output=spread)
    assert len(result.computed) == result.chunks_total == 3 * 3 and result.chunks_empty > 0
    assert_same("superresolution", out, ref)
    assert_same("superresolution", spread, ref_spread)
    values, nodata, _, _ = read(spread)
    assert nodata == read(ref_spread)[1] and np.isnan(values).any()
    assert np.nanmin(values) >= 0 and np.nanmax(values) > 0
    assert (tmp_path / "sr_chunks").exists() == (ext == ".vrt")


def test_spread_output_resumes_and_is_part_of_the_job(spread_reference, tmp_path):
    dem, ref, ref_spread = spread_reference
    out, spread = str(tmp_path / "sr.tif"), str(tmp_path / "spread.tif")
    with pytest.raises(Cancelled):
        mosaic.run_job("superresolution", dem, out, {"device": "cpu"}, chunk_size=64,
                       spread_output=spread, monitor=StopAfterChunks(4))
    with pytest.raises(DemError, match=r"spread_output: \"/.* → null"):
        mosaic.run_job("superresolution", dem, out, {"device": "cpu"}, chunk_size=64)
    result = mosaic.run_job("superresolution", dem, out, {"device": "cpu"}, chunk_size=64,
                            spread_output=spread)
    assert 0 < len(result.computed) <= 3 * 3 - 4
    assert_same("superresolution", out, ref)
    assert_same("superresolution", spread, ref_spread)


def test_spread_output_is_refused_where_it_cannot_be_written(tiles, tmp_path):
    out = str(tmp_path / "a.tif")
    with pytest.raises(DemError, match="only superresolution"):
        mosaic.run_job("attraction", tiles, out, {}, spread_output=str(tmp_path / "s.tif"))
    with pytest.raises(DemError, match=r"The spread output: GDAL cannot write a raster as '\.png'"):
        mosaic.run_job("superresolution", tiles, out, {}, spread_output=str(tmp_path / "s.png"))
    with pytest.raises(DemError, match="OUTPUT name the same file"):
        mosaic.run_job("superresolution", tiles, out, {}, spread_output=out)


def test_command_line_writes_the_spread(spread_reference, tmp_path):
    dem, ref, ref_spread = spread_reference
    out, spread = str(tmp_path / "sr.tif"), str(tmp_path / "spread.tif")
    assert batch.main(["superresolution", dem, out, "--output-spread", spread, "--device", "cpu",
                       "--chunk-size", "64", "--workers", "0", "--quiet"]) == 0
    assert_same("superresolution", out, ref)
    assert_same("superresolution", spread, ref_spread)
    with pytest.raises(SystemExit):  # argparse: only superresolution has the option
        batch.main(["tpi", dem, str(tmp_path / "t.tif"), "--output-spread", spread])
