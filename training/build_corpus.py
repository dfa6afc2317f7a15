"""Rebuild the multi-product corpus folder (training/corpus/, git-ignored) from local git mirrors.

    python -m training.build_corpus --mirrors /path/to/mirrors [--srtm-dir DIR] [--out DIR]

Nothing is downloaded: every file is read from a git directory already on this machine with
``git --git-dir=<mirror> show <commit>:<path>``, at the exact commit recorded in
training/corpus.csv. A mirror of ``owner/name`` is looked for as ``<mirrors>/owner+name/repo``,
``<mirrors>/owner+name``, ``<mirrors>/owner+name.git`` or ``<mirrors>/name.git``; make one with

    git clone --mirror https://github.com/owner/name <mirrors>/owner+name.git

Rows whose convert is ``copy`` come from the project's SRTM corpus (``--srtm-dir``, the
training default). Conversions (the exact commands are printed as they run):

* ``copy``: the file as it is.
* ``translate``: ``gdal_translate -of GTiff -co COMPRESS=DEFLATE -co TILED=YES [-a_srs S]``,
  lossless: same grid, same values, same data type.
* ``block_mean:N``: the N × N block mean of the native grid (``core.superres.scoring.block_mean``: a
  block touching nodata is nodata), written as a Float32 GeoTIFF with cells N times larger;
  this turns a 1 m LiDAR DTM into a 5 m one.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from core.grid.raster import read_array
from core.grid.writing import write_array
from core.superres.scoring import block_mean
from training.corpus import CORPUS_DIR, MANIFEST, Entry, read_manifest
from training.dataset import DATA_DIR


def find_mirror(mirrors: Path, repo: str) -> Path:
    """The git directory of `repo` ("owner/name") under `mirrors`."""
    owner, name = repo.split("/", 1)
    key = f"{owner}+{name}"
    for candidate in (mirrors / key / "repo", mirrors / key, mirrors / f"{key}.git",
                      mirrors / f"{name}.git"):
        if (candidate / "HEAD").exists() or (candidate / ".git" / "HEAD").exists():
            return candidate / ".git" if (candidate / ".git").is_dir() else candidate
    raise FileNotFoundError(
        f"no git mirror of {repo} under {mirrors}; make one with "
        f"git clone --mirror https://github.com/{repo} {mirrors / (key + '.git')}")


def git_show(git_dir: Path, commit: str, path: str, dest: Path) -> None:
    """Write `commit:path` of the mirror to `dest` (fails clearly if the blob is absent)."""
    spec = f"{commit}:{path}" if commit else f"HEAD:{path}"
    with open(dest, "wb") as out:
        result = subprocess.run(["git", f"--git-dir={git_dir}", "show", spec], stdout=out,
                                stderr=subprocess.PIPE)
    if result.returncode != 0:
        dest.unlink(missing_ok=True)
        raise RuntimeError(f"git show {spec} in {git_dir} failed: "
                           f"{result.stderr.decode(errors='replace').strip()}")


def translate_command(src: Path, dst: Path, a_srs: str = "") -> list[str]:
    cmd = ["gdal_translate", "-q", "-of", "GTiff", "-co", "COMPRESS=DEFLATE", "-co", "TILED=YES"]
    if a_srs:
        cmd += ["-a_srs", a_srs]
    return cmd + [str(src), str(dst)]


def aggregate(src: Path, dst: Path, factor: int, a_srs: str = "") -> tuple[int, int]:
    """Block mean by `factor` with the grid's cells `factor` times larger; returns the shape."""
    from osgeo import osr

    z, info = read_array(str(src))
    coarse = block_mean(z.astype(np.float64), factor).astype(np.float32)
    x0, dx, rx, y0, ry, dy = info.geotransform
    crs = info.crs_wkt
    if a_srs:
        srs = osr.SpatialReference()
        srs.SetFromUserInput(a_srs)
        crs = srs.ExportToWkt()
    out_info = replace(info, width=coarse.shape[1], height=coarse.shape[0], crs_wkt=crs,
                       geotransform=(x0, dx * factor, rx * factor, y0, ry * factor,
                                     dy * factor))
    write_array(str(dst), coarse, out_info, "Float32", nodata=-9999.0)
    return coarse.shape


def build_entry(entry: Entry, out_dir: Path, mirrors: Path | None, srtm_dir: Path,
                log=print) -> Path:
    """Make one corpus file; returns its path."""
    dst = out_dir / entry.file
    if entry.convert == "copy":
        src = srtm_dir / entry.file
        if not src.exists():
            raise FileNotFoundError(f"{entry.file}: not in the SRTM corpus folder {srtm_dir}")
        log(f"cp {src.name} {dst}")
        shutil.copyfile(src, dst)
        return dst
    if mirrors is None:
        raise ValueError(f"{entry.file} comes from {entry.source_repo}: give --mirrors")
    git_dir = find_mirror(mirrors, entry.source_repo)
    with tempfile.TemporaryDirectory() as tmp:
        paths = entry.source_paths
        local = [Path(tmp) / Path(p).name for p in paths]
        for path, target in zip(paths, local):
            log(f"git --git-dir={git_dir} show {entry.source_commit}:{path} > {target.name}")
            git_show(git_dir, entry.source_commit, path, target)
        src = local[0]
        if entry.convert == "translate":
            cmd = translate_command(src, dst, entry.a_srs)
            log(" ".join(cmd[:-2] + [src.name, str(dst)]))
            subprocess.run(cmd, check=True)
        elif entry.convert.startswith("block_mean:"):
            factor = int(entry.convert.split(":", 1)[1])
            shape = aggregate(src, dst, factor, entry.a_srs)
            log(f"block mean {factor} x {factor} of {src.name}"
                f"{' (CRS ' + entry.a_srs + ')' if entry.a_srs else ''} -> {dst} {shape}")
        else:
            raise ValueError(f"{entry.file}: unknown conversion {entry.convert!r}")
    return dst


def readme_text(entries: list[Entry]) -> str:
    """The README written beside the built files: source and licence of each (from the CSV)."""
    lines = ["# Multi-product DEM corpus (built by python -m training.build_corpus)", "",
             "Generated from training/corpus.csv; see training/CORPUS.md for the recipe, the "
             "hold-out rule and what was rejected. Do not edit: rebuild instead.", "",
             "Copernicus files: © DLR e.V. 2010-2014 and © Airbus Defence and Space GmbH "
             "2014-2018 provided under COPERNICUS by the European Union and ESA; all rights "
             "reserved. Anything made from them is 'produced using Copernicus WorldDEM-30'.", "",
             "| file | product | terrain | split | cell | source (repository @ commit : path) "
             "| licence | conversion |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for e in entries:
        commit = e.source_commit[:12] if e.source_commit else "(not recorded upstream)"
        source = (f"{e.source_repo} @ {commit} : {e.source_path}" if e.convert != "copy"
                  else f"the project's SRTM corpus (originally {e.source_repo})")
        lines.append(f"| {e.file} | {e.product} | {e.terrain} | {e.split} | {e.cell} | "
                     f"{source} | {e.licence} | {e.convert}"
                     f"{' ' + e.a_srs if e.a_srs else ''} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="Rebuild training/corpus/ from local git mirrors.")
    p.add_argument("--mirrors", type=Path, default=None,
                   help="folder holding the git mirrors of the source repositories")
    p.add_argument("--srtm-dir", type=Path, default=DATA_DIR,
                   help="the project's SRTM corpus (rows whose convert is 'copy')")
    p.add_argument("--manifest", type=Path, default=MANIFEST)
    p.add_argument("--out", type=Path, default=CORPUS_DIR)
    p.add_argument("--only", nargs="*", default=None, help="build only these file names")
    args = p.parse_args(argv)

    entries = read_manifest(args.manifest)
    if args.only:
        entries = [e for e in entries if e.file in set(args.only)]
    args.out.mkdir(parents=True, exist_ok=True)
    failed = []
    for entry in entries:
        try:
            build_entry(entry, args.out, args.mirrors, args.srtm_dir)
        except (OSError, RuntimeError, ValueError, subprocess.CalledProcessError) as exc:
            print(f"FAILED {entry.file}: {exc}", file=sys.stderr)
            failed.append(entry.file)
    (args.out / "README.md").write_text(readme_text(entries), encoding="utf-8")
    print(f"{len(entries) - len(failed)} of {len(entries)} files in {args.out}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
