"""The inputs guard: every algorithm run in the tests goes through `untouched` (in-process runs
through `guarded_run`, qgis_process runs through the `qgis_process` fixture), which checksums
each file the run's inputs name before and after and fails the test on any change.

Written independently of core.grid.safety (the code it guards): a parameter's value names input
files when it is a path (or a QGIS data source "path|layername=…", "ogr:dbname='path' …"), a
folder (every file under it) or a list of those; a raster also stands for every file GDAL lists
for it (a VRT's sources). Parameters whose name starts with OUTPUT are the run's outputs and are
not inputs. Files that appear during the run are not changes (QGIS itself writes statistics to
a new .aux.xml when it loads a raster).
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re

from osgeo import gdal, ogr


def _paths_of(value) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [p for v in value for p in _paths_of(v)]
    source = getattr(value, "source", None)
    if callable(source):  # a QgsMapLayer
        value = source()
    if not isinstance(value, (str, os.PathLike)):
        return []
    text = str(value)
    match = re.match(r"^ogr:dbname='([^']+)'", text) or re.match(r"^GPKG:(.+):[^:]+$", text)
    path = match.group(1) if match else text.split("|", 1)[0]
    layer = re.search(r"\|layername=([^|]+)", text)
    if layer and path.lower().endswith(".gpkg") and os.path.isfile(path):
        # One table of a GeoPackage: a run may add tables beside it, never change this one.
        return [f"{os.path.abspath(path)}|layername={layer.group(1)}"]
    if os.path.isdir(path):
        return [os.path.abspath(os.path.join(root, name))
                for root, _, names in os.walk(path) for name in names]
    if not os.path.isfile(path):
        return []
    path = os.path.abspath(path)
    files = [path]
    with contextlib.suppress(RuntimeError):
        ds = gdal.OpenEx(path, gdal.OF_RASTER | gdal.OF_READONLY)
        if ds is not None:
            files += [os.path.abspath(f) for f in ds.GetFileList() or [] if os.path.isfile(f)]
        ds = None
    return files


def input_files(params: dict) -> list[str]:
    """Every file the run's input parameters name (outputs excluded)."""
    files = set()
    for name, value in params.items():
        if str(name).upper().startswith("OUTPUT"):
            continue
        files.update(_paths_of(value))
    return sorted(files)


def _table_digest(path: str, layer: str) -> str | None:
    """SHA-256 of a vector table's schema, features and geometries, in feature id order."""
    ds = ogr.Open(path)
    table = ds.GetLayerByName(layer) if ds is not None else None
    if table is None:
        return None
    digest = hashlib.sha256()
    defn = table.GetLayerDefn()
    for i in range(defn.GetFieldCount()):
        digest.update(defn.GetFieldDefn(i).GetName().encode())
    for feature in table:
        digest.update(str(feature.GetFID()).encode())
        digest.update(repr(feature.items()).encode())
        geometry = feature.GetGeometryRef()
        digest.update(geometry.ExportToIsoWkb() if geometry is not None else b"")
    return digest.hexdigest()


def checksums(files) -> dict[str, str | None]:
    out = {}
    for path in files:
        if "|layername=" in path:
            file, _, layer = path.partition("|layername=")
            out[path] = _table_digest(file, layer)
            continue
        try:
            with open(path, "rb") as f:
                out[path] = hashlib.sha256(f.read()).hexdigest()
        except OSError:
            out[path] = None
    return out


@contextlib.contextmanager
def untouched(params: dict, extra_files=()):
    """Fail (AssertionError) when the run inside changed or removed any input file, whether the
    run succeeded or raised."""
    files = input_files(params) + [p for f in extra_files for p in _paths_of(f)]
    before = checksums(files)
    try:
        yield before
    finally:
        after = checksums(files)
        changed = [p for p in files if before[p] != after[p]]
        assert not changed, f"the run modified or removed its input file(s): {changed}"


def cli_params(args) -> dict:
    """KEY=VALUE arguments of a `qgis_process run ALG -- ...` command line as a dict."""
    args = list(args)
    tail = args[args.index("--") + 1:] if "--" in args else args
    params = {}
    for arg in tail:
        key, sep, value = str(arg).partition("=")
        if sep:
            params.setdefault(key, []).append(value)
    return params


def batch_params(argv) -> dict:
    """The INPUT of a `python -m core.batch ALGORITHM INPUT OUTPUT ...` argument list (the
    positional after the algorithm), for `untouched`."""
    positional = [a for a in argv if not str(a).startswith("-")]
    return {"INPUT": positional[1]} if len(positional) > 1 else {}


def guarded_run(alg_id, params, feedback=None, context=None, load=False):
    """THE way the plugin tests run an algorithm in-process: processing.run (or
    processing.runAndLoadResults with `load`) inside `untouched`."""
    import processing

    with untouched(params):
        if load:
            return processing.runAndLoadResults(alg_id, params, context=context,
                                                feedback=feedback)
        return processing.run(alg_id, params, context=context, feedback=feedback)
