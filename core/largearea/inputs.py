"""Binding the input of a large-area job: a folder or list of tiles becomes one VRT, and
stamps of the input files tell a resumed job whether its input changed."""
from __future__ import annotations

import math
import os
import uuid

from osgeo import gdal

from ..errors import DemError
from ..grid.files import partial_path
from ..grid.progress import Monitor
from ..grid.raster import read_info, spatial_reference

BOUND_INPUT = "input.vrt"


# What a folder of tiles may hold; anything else in it (world files, READMEs) is ignored.
TILE_EXTENSIONS = (".tif", ".tiff", ".hgt", ".vrt", ".img", ".dem", ".dt0", ".dt1", ".dt2",
                   ".bil", ".asc", ".nc")


LIST_EXTENSIONS = (".txt", ".lst", ".list")


def list_tiles(source) -> list[str] | None:
    """The tiles a job input names: a list, a folder of rasters or a text file listing them (one
    path a line, relative to the file's folder, # for comments); None for a single raster."""
    if isinstance(source, (list, tuple)):
        return [os.path.abspath(str(p)) for p in source]
    path = str(source)
    if os.path.isdir(path):
        names = sorted(n for n in os.listdir(path)
                       if n.lower().endswith(TILE_EXTENSIONS) and not n.startswith("."))
        if not names:
            raise DemError(
                f"The folder '{path}' holds no raster tile (looked for "
                f"{', '.join(TILE_EXTENSIONS)})."
            )
        return [os.path.join(os.path.abspath(path), n) for n in names]
    if path.lower().endswith(LIST_EXTENSIONS) and os.path.isfile(path):
        base = os.path.dirname(os.path.abspath(path))
        with open(path, encoding="utf-8") as f:
            lines = [ln.strip() for ln in f]
        tiles = [os.path.normpath(os.path.join(base, ln)) for ln in lines
                 if ln and not ln.startswith("#")]
        if not tiles:
            raise DemError(f"The tile list '{path}' names no file.")
        return tiles
    return None


# Sidecars that GDAL lists with a raster but that do not change its full-resolution cells; QGIS
# writes statistics into .aux.xml when a layer is shown, which must not void a recorded job.
_UNSTAMPED_SUFFIXES = (".aux.xml", ".ovr")


def input_stamps(read_source: str) -> dict[str, list[int]]:
    """Size and modification time (ns) of every file GDAL reads for `read_source` (a raster, a
    VRT and its sources, or the mosaic of a job's tiles), so that a resumed job notices a tile
    edited, replaced, added or removed since its first chunks were computed."""
    ds = gdal.Open(read_source)
    files = (ds.GetFileList() if ds is not None else None) or [read_source]
    stamps = {}
    for name in files:
        if name.lower().endswith(_UNSTAMPED_SUFFIXES):
            continue
        try:
            st = os.stat(name)
        except OSError:  # /vsimem/, /vsicurl/ …: nothing on this disk to compare
            continue
        stamps[os.path.abspath(name)] = [st.st_size, st.st_mtime_ns]
    return stamps


def describe_input_changes(old: dict | None, new: dict) -> list[str]:
    """The files that differ between two input_stamps() results, in words."""
    if old is None:
        return ["input files: not recorded by the version that started the job"]
    changed = [f"{os.path.basename(p)} changed" for p in sorted(set(old) & set(new))
               if old[p] != new[p]]
    added = [f"{os.path.basename(p)} added" for p in sorted(set(new) - set(old))]
    removed = [f"{os.path.basename(p)} removed" for p in sorted(set(old) - set(new))]
    return changed + added + removed


def _fill_nodata(data_type: str) -> float:
    """Nodata for the gaps of a mosaic whose tiles declare none: NaN for floats, SRTM's −32768
    for Int16, the type's far end otherwise."""
    if data_type.startswith("Float"):
        return float("nan")
    limits = {"Byte": 255, "Int16": -32768, "UInt16": 65535, "Int32": -2147483648,
              "UInt32": 4294967295}
    return float(limits.get(data_type, -32768))


def bind_tiles(tiles: list[str], monitor: Monitor | None = None) -> str:
    """The XML of a VRT mosaic of `tiles` (band 1, absolute paths), checked to be one grid.

    Tiles must share a CRS and a cell size; a tile off the mosaic's cell grid is placed by GDAL's
    nearest-neighbour resampling (with a warning). Gaps between tiles are nodata: the tiles' own
    nodata value, or :func:`_fill_nodata` when no tile declares one.
    """
    monitor = monitor or Monitor()
    missing = [t for t in tiles if not os.path.exists(t)]
    if missing:
        shown = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
        raise DemError(f"{len(missing)} tile(s) of the input do not exist: {shown}")
    first = None
    nodata = None
    for tile in tiles:
        info = read_info(tile)
        gt = info.geotransform
        if gt[2] or gt[4]:
            raise DemError(f"The tile '{tile}' has a rotated geotransform; a mosaic needs "
                           "north-up tiles (gdalwarp them first).")
        if nodata is None and info.nodata is not None:
            nodata = info.nodata
        if first is None:
            first = info
            first_srs = spatial_reference(info.crs_wkt) if info.has_crs else None
            continue
        if info.has_crs != first.has_crs or (
                first_srs is not None and not first_srs.IsSame(spatial_reference(info.crs_wkt))):
            raise DemError(
                f"The tile '{tile}' is in another CRS than '{tiles[0]}'; every tile of a mosaic "
                "must share one CRS (reproject them with gdalwarp first)."
            )
        fx, fy = first.geotransform[1], first.geotransform[5]
        if not (math.isclose(gt[1], fx, rel_tol=1e-6) and math.isclose(gt[5], fy, rel_tol=1e-6)):
            raise DemError(
                f"The tile '{tile}' has cells of {gt[1]:.10g} × {abs(gt[5]):.10g}, the tile "
                f"'{tiles[0]}' of {fx:.10g} × {abs(fy):.10g}; resample the tiles to one "
                "resolution first (gdalwarp -tr)."
            )
        off_x = (gt[0] - first.geotransform[0]) / fx
        off_y = (gt[3] - first.geotransform[3]) / fy
        if abs(off_x - round(off_x)) > 0.01 or abs(off_y - round(off_y)) > 0.01:
            monitor.warn(
                f"The tile '{os.path.basename(tile)}' is not aligned with the mosaic's cell grid "
                f"(offset {off_x - round(off_x):+.3f}, {off_y - round(off_y):+.3f} cells); GDAL "
                "places it by nearest neighbour."
            )
    if nodata is None:
        nodata = _fill_nodata(first.data_type)
    vsi = f"/vsimem/demsr-bind-{uuid.uuid4().hex}.vrt"
    try:
        # "highest": the finest of equal cell sizes is exactly the tiles' own (no averaging).
        ds = gdal.BuildVRT(vsi, tiles, resolution="highest", bandList=[1], VRTNodata=nodata)
        if ds is None:
            raise DemError("GDAL could not bind the tiles into a VRT.")
        ds = None
        return _vsi_text(vsi)
    except RuntimeError as err:
        raise DemError(f"GDAL could not bind the tiles into a VRT: {err}") from err
    finally:
        gdal.Unlink(vsi)




def _vsi_text(path: str) -> str:
    f = gdal.VSIFOpenL(path, "rb")
    try:
        gdal.VSIFSeekL(f, 0, 2)
        size = gdal.VSIFTellL(f)
        gdal.VSIFSeekL(f, 0, 0)
        return gdal.VSIFReadL(1, size, f).decode("utf-8")
    finally:
        gdal.VSIFCloseL(f)


def _write_text_atomically(path: str, text: str) -> None:
    partial = partial_path(path)
    try:
        with open(partial, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, path)
    except OSError as err:
        if os.path.exists(partial):
            os.remove(partial)
        raise DemError(f"Cannot write '{path}': {err}") from err
