"""Raster destinations: the format a path asks for, and a finished GeoTIFF delivered in it.

Every raster this package writes is computed into a hidden tiled GeoTIFF beside its destination
(core.grid.raster.GeoTiffWriter, core.largearea.mosaic.translate). `resolve` says, before any work,
which GDAL driver the destination's extension names (refusing an extension no driver can create, and
a GeoPackage table that already exists); `deliver` then turns the finished GeoTIFF into that
format under another hidden name and renames it into place, so the destination is the old file,
absent, or the complete new one. A GeoPackage that exists already receives a new raster table
beside its other tables; it is never replaced.
"""
from __future__ import annotations

import contextlib
import functools
import os
import re
import sqlite3
from dataclasses import dataclass

from osgeo import gdal

from ..errors import DemError
from .files import commit_partial, partial_path, remove_raster

gdal.UseExceptions()

# What a destination without extension gets, as QGIS's own file widgets do.
DEFAULT_EXTENSION = "tif"
# Extensions whose first GDAL driver is not the one meant (QGIS maps these the same way).
_PREFERRED = {"tif": "GTiff", "tiff": "GTiff", "grd": "GSBG", "hdr": "ENVI"}
# Drivers that cannot hold an arbitrary elevation or class grid (images, tile caches, fixed
# layouts); offered by GDAL for an extension, they would fail late or lose the values.
_UNFIT = {"PNG", "JPEG", "GIF", "WEBP", "JPEG2000", "JP2OpenJPEG", "MBTiles", "USGSDEM",
          "COG", "CALS", "SGI", "BLX", "BAG", "LCP", "PDF", "BMP", "ICO", "MRF", "PCIDSK",
          "KRO", "NITF", "WMTS", "NGW",
          "Rasterlite", "PostGISRaster", "ZMap", "BT", "Leveller", "Terragen", "RMF", "ISIS3",
          "PDS4", "LAN", "FITS", "SIGDEM", "ADRG", "ISCE", "ROI_PAC", "BYN", "NTv2", "CTable2",
          "GTX", "KMLSUPEROVERLAY", "SRTMHGT", "DTED", "R", "PNM", "XPM", "MFF", "MFF2",
          "RRASTER", "NWT_GRD", "GS7BG", "GSAG", "IDA", "ILWIS", "PAux", "HF2", "NUMPY"}
# The GeoPackage table name QGIS's and GDAL's conventions allow.
_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Destination:
    """A raster destination: the file, the GDAL driver its extension names and, for a
    GeoPackage, the raster table (`append`: the file exists and keeps its other tables)."""

    path: str
    driver: str
    table: str = ""
    append: bool = False

    @property
    def is_geotiff(self) -> bool:
        return self.driver == "GTiff"


@functools.lru_cache(maxsize=1)
def _raster_drivers() -> dict[str, str]:
    """{extension: driver} of every GDAL driver fit to write a single-band grid."""
    found: dict[str, str] = {}
    for i in range(gdal.GetDriverCount()):
        drv = gdal.GetDriver(i)
        md = drv.GetMetadata() or {}
        if md.get("DCAP_RASTER") != "YES" or drv.ShortName in _UNFIT:
            continue
        if md.get("DCAP_CREATE") != "YES" and md.get("DCAP_CREATECOPY") != "YES":
            continue
        for ext in (md.get("DMD_EXTENSIONS") or md.get("DMD_EXTENSION") or "").split():
            ext = ext.lower()
            if _PREFERRED.get(ext, drv.ShortName) == drv.ShortName:
                found.setdefault(ext, drv.ShortName)
    return found


def supported_extensions() -> list[str]:
    """The raster extensions a destination may end in, GeoTIFF first (QGIS's default)."""
    others = sorted(e for e in _raster_drivers() if e not in ("tif", "tiff", "vrt"))
    return ["tif", "tiff", *others]


def _geopackage_table(path: str, table: str) -> str:
    name = table or os.path.splitext(os.path.basename(path))[0]
    # A file stem with spaces or dashes is a fine file name but not a plain table name.
    return name if _TABLE.match(name) else re.sub(r"\W", "_", name)


def gpkg_tables(path: str) -> set[str]:
    """The tables a GeoPackage lists in gpkg_contents (vector, raster and attribute tables)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return {row[0].lower() for row in db.execute("SELECT table_name FROM gpkg_contents")}
    except sqlite3.Error as err:
        raise DemError(f"'{path}' exists but is not a GeoPackage that can be read ({err}); "
                       "choose another file.") from err


def resolve(path: str, what: str = "OUTPUT", table: str = "", allow_vrt: bool = False
            ) -> Destination:
    """The Destination a raster output path names, refusing what cannot be written.

    No extension: GeoTIFF with `.tif` added. `.vrt` only where the caller binds files itself
    (`allow_vrt`, core.largearea.mosaic). An existing GeoPackage gets a new raster table (`table`,
    else the file's stem); an existing table of that name is refused, never replaced."""
    path = str(path)
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if not ext:
        path = f"{path}.{DEFAULT_EXTENSION}"
        ext = DEFAULT_EXTENSION
    if ext == "vrt" and allow_vrt:
        return Destination(path, "VRT")
    driver = _raster_drivers().get(ext) if ext != "vrt" else None
    if driver is None:
        accepted = supported_extensions()
        if allow_vrt:
            accepted.append("vrt")
        hint = (" A .vrt output binds chunk files: run with ENGINE (local) or core.batch for "
                "one." if ext == "vrt" else "")
        raise DemError(
            f"{what}: GDAL cannot write a raster as '.{ext}'; use one of the extensions "
            f"{', '.join('.' + e for e in accepted)}.{hint}")
    if driver != "GPKG":
        if os.path.isdir(path):
            raise DemError(f"{what}: '{path}' is a folder; give a file name.")
        return Destination(path, driver)
    name = _geopackage_table(path, table)
    append = os.path.isfile(path)
    if append and name.lower() in gpkg_tables(path):
        raise DemError(
            f"{what}: the GeoPackage '{path}' already holds a table named '{name}' (a raster "
            "goes into a table named after the file); a run never replaces a table of a "
            "GeoPackage. Give another file name.")
    return Destination(path, driver, name, append)


def _files_of(path: str) -> list[str]:
    """The raster at `path` and its side files (.prj, .sgrd, .aux.xml, …)."""
    try:
        ds = gdal.Open(path)
        files = list(ds.GetFileList() or []) if ds is not None else []
        ds = None
    except RuntimeError:
        files = []
    files = [f for f in files if os.path.exists(f)]
    if path not in files and os.path.exists(path):
        files.append(path)
    return files


def _creation_options(dest: Destination) -> list[str]:
    if dest.driver == "GPKG":
        options = [f"RASTER_TABLE={dest.table}"]
        if dest.append:
            options.append("APPEND_SUBDATASET=YES")
        return options
    if dest.driver == "netCDF":
        return ["COMPRESS=DEFLATE"]
    return []


def convert(geotiff: str, dest: Destination, monitor=None) -> None:
    """Write the finished `geotiff` as `dest` (not a GeoTIFF), all or nothing.

    A new file is written under a hidden name that keeps the extension (so multi-file formats
    name their side files after it: .prj, .sgrd, .hdr), then every file is renamed into place,
    the raster last. A new table in an existing GeoPackage is written in place and dropped
    again if the conversion fails."""

    def progress(fraction, _message, _data):
        if monitor is not None:
            monitor.report(fraction)
            return 0 if monitor.cancelled() else 1
        return 1

    options = dict(format=dest.driver, creationOptions=_creation_options(dest), callback=progress)
    if dest.append:
        try:
            ds = gdal.Translate(dest.path, geotiff, **options)
            if ds is None:
                raise RuntimeError("GDAL returned no dataset")
            ds = None
        except BaseException as err:
            _drop_gpkg_table(dest.path, dest.table)
            if isinstance(err, RuntimeError):
                raise DemError(f"Cannot add the raster table '{dest.table}' to "
                               f"'{dest.path}': {err}") from err
            raise
        return
    ext = os.path.splitext(dest.path)[1]
    partial = partial_path(dest.path) + ext
    try:
        ds = gdal.Translate(partial, geotiff, **options)
        if ds is None:
            raise RuntimeError("GDAL returned no dataset")
        ds = None
        _rename_files(partial, dest.path)
    except BaseException as err:
        for f in _files_of(partial):
            remove_raster(f)
        remove_raster(partial)
        if isinstance(err, (RuntimeError, OSError)):
            raise DemError(f"Cannot write '{dest.path}' as {dest.driver}: {err}") from err
        raise


def _rename_files(partial: str, final: str) -> None:
    """Move a written raster and its side files from the hidden name to the final one."""
    p_stem, f_stem = os.path.splitext(partial)[0], os.path.splitext(final)[0]
    files = _files_of(partial)
    # Side files of an old raster under the final name describe the old one; the raster goes
    # last, so a crash in between leaves the old raster or none, never a mismatched pair.
    for suffix in (".aux.xml",):
        if os.path.exists(final + suffix):
            os.remove(final + suffix)
    for f in sorted(files, key=lambda f: f == partial):
        if f == partial:
            os.replace(f, final)
        elif f.startswith(p_stem):
            os.replace(f, f_stem + f[len(p_stem):])


def _drop_gpkg_table(path: str, table: str) -> None:
    """Remove a raster table a failed run began in an existing GeoPackage, and its records."""
    try:
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.execute(f'DROP TABLE IF EXISTS "{table}"')
            for meta, column in (("gpkg_contents", "table_name"),
                                 ("gpkg_tile_matrix", "table_name"),
                                 ("gpkg_tile_matrix_set", "table_name"),
                                 ("gpkg_extensions", "table_name"),
                                 ("gpkg_2d_gridded_tile_ancillary", "tpudt_name"),
                                 ("gpkg_2d_gridded_coverage_ancillary", "tile_matrix_set_name")):
                with contextlib.suppress(sqlite3.Error):
                    db.execute(f"DELETE FROM {meta} WHERE lower({column}) = lower(?)", (table,))
            db.commit()
    except sqlite3.Error:
        pass  # best effort: the run's own error is the one to report


def discard(dest: Destination) -> None:
    """Undo a delivered output (a later step of the run failed): drop the table it added to an
    existing GeoPackage, or remove the file it wrote with its side files."""

    if dest.append:
        _drop_gpkg_table(dest.path, dest.table)
        return
    for f in _files_of(dest.path):
        remove_raster(f)
    remove_raster(dest.path)


def deliver(geotiff: str, dest: Destination, monitor=None) -> None:
    """Put the finished hidden `geotiff` under `dest`: renamed when a GeoTIFF is asked for,
    converted (and the GeoTIFF removed) otherwise."""

    if dest.is_geotiff:
        commit_partial(geotiff, dest.path)
        return
    try:
        convert(geotiff, dest, monitor)
    finally:
        remove_raster(geotiff)
