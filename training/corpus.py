"""The multi-product corpus manifest (training/corpus.csv): which file is which product, and
which files are held out.

One row per GeoTIFF in the built corpus folder (``training/corpus/``, git-ignored, rebuilt by
``python -m training.build_corpus``). Columns:

    file, product, terrain, split, cell, source_repo, source_commit, source_path, licence,
    convert, a_srs, notes

``split`` is ``train`` or ``holdout``; a held-out file is never trained on and is what
``python -m training.evaluate --manifest`` scores per product. Held-out files were chosen by
terrain and size before any scoring (see training/CORPUS.md), never by scores.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

MANIFEST = Path(__file__).resolve().parent / "corpus.csv"
CORPUS_DIR = Path(__file__).resolve().parent / "corpus"
SPLITS = ("train", "holdout")
PRODUCTS = ("SRTM", "Copernicus", "ASTER/ALOS", "LiDAR-derived")
COLUMNS = ("file", "product", "terrain", "split", "cell", "source_repo", "source_commit",
           "source_path", "licence", "convert", "a_srs", "notes")


@dataclass(frozen=True)
class Entry:
    """One row of the manifest."""

    file: str
    product: str
    terrain: str
    split: str
    cell: str
    source_repo: str
    source_commit: str
    source_path: str
    licence: str
    convert: str
    a_srs: str = ""
    notes: str = ""

    @property
    def source_paths(self) -> list[str]:
        """The raster first, then any side-car files it needs (ENVI .hdr), split on ';'."""
        return [p.strip() for p in self.source_path.split(";") if p.strip()]


def read_manifest(path: Path | str = MANIFEST) -> list[Entry]:
    """The manifest's rows, checked: known product and split, unique file names."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path}: no rows")
    missing = set(COLUMNS) - set(rows[0])
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}")
    entries = [Entry(**{k: (row.get(k) or "").strip() for k in COLUMNS}) for row in rows]
    seen: set[str] = set()
    for e in entries:
        if e.product not in PRODUCTS:
            raise ValueError(f"{path}: {e.file}: unknown product {e.product!r} ({PRODUCTS})")
        if e.split not in SPLITS:
            raise ValueError(f"{path}: {e.file}: split must be one of {SPLITS}, not {e.split!r}")
        if e.file in seen:
            raise ValueError(f"{path}: {e.file} is listed twice")
        seen.add(e.file)
    return entries


def manifest_split(entries: list[Entry], data_dir: Path | str,
                   products: tuple[str, ...] | None = None,
                   available: set[str] | None = None) -> tuple[list[Path], list[Path]]:
    """Training and held-out paths in `data_dir` (optionally only some products).

    Every listed file must exist (in `data_dir`, or among the names in `available`: a packed
    corpus's): a corpus built only in part would silently train on less.
    """
    data_dir = Path(data_dir)
    chosen = [e for e in entries if products is None or e.product in products]
    missing = [e.file for e in chosen
               if (e.file not in available if available is not None
                   else not (data_dir / e.file).exists())]
    if missing:
        where = "the packed corpus" if available is not None else str(data_dir)
        raise FileNotFoundError(
            f"{len(missing)} corpus file(s) not found in {where} (build it with "
            f"python -m training.build_corpus): {missing[:5]}")
    train = [data_dir / e.file for e in chosen if e.split == "train"]
    held = [data_dir / e.file for e in chosen if e.split == "holdout"]
    return train, held


def products_of(entries: list[Entry]) -> dict[str, str]:
    """File name -> product label."""
    return {e.file: e.product for e in entries}
