"""Pack the corpus into one compressed NumPy archive, to train where GDAL is not installed.

    python -m training.pack --out build/gpu/corpus.npz [--manifest training/corpus.csv]
                            [--data-dir training/corpus]

A machine lent for training (a GPU host) may have PyTorch but no GDAL to read GeoTIFFs. The
archive holds every file of the manifest, training and held-out, as the Dem that
training.dataset.load_dem makes of it (cells, ground cell size), and
`python -m training.train --packed ARCHIVE --manifest ...` trains from it exactly as from the
GeoTIFFs. Cells are kept in Int16 where that is exact (SRTM-style integer heights, nodata as
−32768), else in float32 with NaN: the corpus's 14 MB of GeoTIFFs become about 19 MB.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from training.corpus import CORPUS_DIR, MANIFEST, read_manifest
from training.dataset import Dem, load_dem

INT16_NODATA = -32768
FORMAT = "demsr-packed-corpus/1"


def _as_stored(z: np.ndarray) -> np.ndarray:
    """Int16 when every valid cell is an integer in Int16's range above the nodata code, else
    the float32 cells unchanged."""
    valid = z[np.isfinite(z)]
    if valid.size and np.all(valid == np.round(valid)) and valid.min() > INT16_NODATA \
            and valid.max() <= np.iinfo(np.int16).max:
        return np.where(np.isfinite(z), z, INT16_NODATA).astype(np.int16)
    return z.astype(np.float32)


def pack(dems: list[Dem], out: Path) -> None:
    meta = {"format": FORMAT,
            "files": [{"name": d.name, "dx_m": d.dx_m, "dy_m": d.dy_m} for d in dems]}
    arrays = {f"z{i}": _as_stored(d.z) for i, d in enumerate(dems)}
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, meta=np.array(json.dumps(meta)), **arrays)


def load_packed(path: Path | str) -> dict[str, Dem]:
    """File name → Dem, as load_dem reads the GeoTIFF (float32 cells, NaN for nodata)."""
    with np.load(path, allow_pickle=False) as archive:
        meta = json.loads(str(archive["meta"]))
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path} is not a packed corpus ({FORMAT}).")
        dems = {}
        for i, entry in enumerate(meta["files"]):
            stored = archive[f"z{i}"]
            z = stored.astype(np.float32)
            if stored.dtype == np.int16:
                z[stored == INT16_NODATA] = np.nan
            dems[entry["name"]] = Dem(entry["name"], z, float(entry["dx_m"]),
                                      float(entry["dy_m"]))
    return dems


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--manifest", type=Path, default=MANIFEST)
    p.add_argument("--data-dir", type=Path, default=CORPUS_DIR)
    args = p.parse_args(argv)
    names = [e.file for e in read_manifest(args.manifest)]
    missing = [n for n in names if not (args.data_dir / n).exists()]
    if missing:
        raise SystemExit(f"{len(missing)} corpus file(s) not in {args.data_dir} (build them "
                         f"with python -m training.build_corpus): {missing[:5]}")
    pack([load_dem(args.data_dir / n) for n in names], args.out)
    print(f"{args.out}: {len(names)} files, {args.out.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
