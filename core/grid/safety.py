"""A run never writes over its own inputs: one check of every output against every input.

Paths are compared as the files they resolve to, however they are spelled: relative or
absolute, through symbolic or hard links, in another letter case on a case-insensitive disk,
with QGIS's `|layername=` suffix or its `ogr:dbname=` form, GDAL's `GPKG:file:table` form or a
/vsizip/-style prefix. An input is every file GDAL reads for it (a VRT's sources included) and
its `.aux.xml` side file; an output is the file it writes and the side files a commit replaces.
Two tables of one GeoPackage are distinct files here: a run may add a table beside its input.
A folder of tiles is an input too: an output inside it would be read as a tile by the next run.

Used by the algorithms (algorithms/base.py) and by core.largearea.mosaic.check_paths (core.batch,
ENGINE).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

from osgeo import gdal

from ..errors import DemError

gdal.UseExceptions()

_OGR_URI = re.compile(r"^ogr:dbname='(?P<path>[^']+)'\s+table=\"(?P<table>[^\"]+)\"")
_GDAL_GPKG = re.compile(r"^GPKG:(?P<path>.+):(?P<table>[^:/\\]+)$", re.IGNORECASE)
_ARCHIVES = ("/vsizip/", "/vsigzip/", "/vsitar/", "/vsi7z/", "/vsirar/")
# Containers whose tables are separate datasets: writing a new table leaves the others alone.
_CONTAINERS = (".gpkg", ".sqlite", ".db")
# What a commit writes or removes beside a raster (core.grid.files.commit_partial).
_SIDE_FILES = (".aux.xml", ".ovr")


@dataclass(frozen=True)
class Spot:
    """One file a parameter names: the path on disk, the table inside it ('' = the whole
    file), and the parameter, for messages."""

    parameter: str
    path: str
    table: str = ""

    @property
    def key(self):
        """What two spellings of one file share: (device, inode) when it exists, else the
        resolved, case-normalised path."""
        try:
            st = os.stat(self.path)
            return ("inode", st.st_dev, st.st_ino)
        except OSError:
            return ("path", os.path.normcase(os.path.realpath(self.path)))

    @property
    def in_container(self) -> bool:
        return self.path.lower().endswith(_CONTAINERS)


def split_source(text: str) -> tuple[str, str]:
    """(file on disk, table) of a data source string; ("", "") when it names nothing on this
    disk (memory layers, databases, /vsimem/, URLs)."""
    text = str(text).strip()
    match = _OGR_URI.match(text)
    if match:
        return match.group("path"), match.group("table")
    match = _GDAL_GPKG.match(text)
    if match:
        return match.group("path"), match.group("table")
    path, _, options = text.partition("|")
    table = next((o.split("=", 1)[1] for o in options.split("|") if o.startswith("layername=")),
                 "")
    for prefix in _ARCHIVES:
        if path.startswith(prefix):
            return _archive_of(path[len(prefix):]), ""
    if path.startswith("/vsi") or re.match(r"^[a-z][a-z0-9+.-]*:(?![\\/])", path) \
            and not re.match(r"^[A-Za-z]:[\\/]", path):
        return "", ""  # /vsimem/, /vsicurl/, memory:, postgres:, … (a drive letter is a file)
    return path, table


def _archive_of(inner: str) -> str:
    """The archive file of a /vsizip/archive.zip/member path: the longest existing prefix."""
    candidate = inner
    while candidate and not os.path.isfile(candidate):
        parent = os.path.dirname(candidate)
        if parent == candidate:
            return inner
        candidate = parent
    return candidate or inner


def input_spots(parameter: str, source: str) -> list[Spot]:
    """Every file a run reads for one input: the file itself (or a folder of tiles), what GDAL
    lists for a raster (a VRT's sources, side files) and the raster's `.aux.xml`."""
    path, table = split_source(source)
    if not path:
        return []
    spots = [Spot(parameter, path, table)]
    if os.path.isdir(path):
        return spots
    if not table:
        spots.append(Spot(parameter, path + ".aux.xml"))
        try:
            ds = gdal.OpenEx(path, gdal.OF_RASTER | gdal.OF_READONLY)
            files = ds.GetFileList() if ds is not None else None
            ds = None
        except RuntimeError:
            files = None
        for name in files or []:
            if name.startswith("/vsi"):
                name, _ = split_source(name)
            if name:
                spots.append(Spot(parameter, name))
    return spots


def output_spots(parameter: str, destination: str, table: str = "") -> list[Spot]:
    """The files one output writes or replaces: the file (or its table) and, for a whole-file
    raster, the side files a commit replaces."""
    path, named_table = split_source(destination)
    if not path:
        return []
    table = table or named_table
    spots = [Spot(parameter, path, table)]
    if not table:
        spots += [Spot(parameter, path + suffix) for suffix in _SIDE_FILES]
    return spots


def _clash(a: Spot, b: Spot) -> bool:
    if a.key != b.key:
        return False
    # Two distinct tables of one GeoPackage are two datasets.
    return not (a.in_container and a.table and b.table and a.table.lower() != b.table.lower())


def _inside(path: str, folder: str) -> bool:
    path = os.path.normcase(os.path.realpath(path))
    folder = os.path.normcase(os.path.realpath(folder))
    return os.path.commonpath([path, folder]) == folder


def check_apart(inputs: list[tuple[str, str]], outputs: list[tuple[str, str, str]],
                work_folders: list[tuple[str, str]] = ()) -> None:
    """DemError unless no output is an input, another output, or inside an input folder.

    `inputs`: (parameter, data source) pairs; `outputs`: (parameter, destination, table);
    `work_folders`: (parameter, folder) a run creates and may delete (a job's chunk folder),
    which must neither hold an input nor lie in a folder of tiles."""
    ins = [spot for name, source in inputs for spot in input_spots(name, source)]
    outs = [output_spots(name, dest, table) for name, dest, table in outputs]
    for spots in outs:
        main = spots[0] if spots else None
        if main is None:
            continue
        for out in spots:
            for spot in ins:
                if os.path.isdir(spot.path) and not os.path.isdir(out.path):
                    if _inside(out.path, spot.path):
                        raise DemError(
                            f"{main.parameter} ('{main.path}') lies inside the folder of tiles "
                            f"given as {spot.parameter} ('{spot.path}'): a later run would read "
                            "the result as one of the tiles. Write it outside that folder.")
                    continue
                if _clash(out, spot):
                    raise DemError(
                        f"{main.parameter} ('{main.path}') would write over '{spot.path}', "
                        f"which the input {spot.parameter} reads: a run never writes over its "
                        f"inputs. Choose another file for {main.parameter}.")
    for i, spots in enumerate(outs):
        for other in outs[i + 1:]:
            if spots and other and _clash(spots[0], other[0]):
                raise DemError(
                    f"{other[0].parameter} and {spots[0].parameter} name the same file "
                    f"('{other[0].path}'); each output needs a file of its own.")
    for name, folder in work_folders:
        for spot in ins:
            if _inside(spot.path, folder):
                raise DemError(
                    f"The input {spot.parameter} ('{spot.path}') lies inside the job folder "
                    f"'{folder}' of {name}, which a run replaces; move it out or choose "
                    f"another {name}.")
            if os.path.isdir(spot.path) and _inside(folder, spot.path):
                raise DemError(
                    f"The job folder '{folder}' of {name} would lie inside the folder of tiles "
                    f"given as {spot.parameter} ('{spot.path}'); write {name} outside it.")
