"""Build the plugin zip for plugins.qgis.org and check it the way its validator does.

    python scripts/package.py [--out DIR]        # writes DIR/demsr-<version>.zip, then checks it
    python scripts/package.py --check ZIP        # checks an existing zip

The zip holds one top folder `demsr/` with only what the plugin needs at run time: the plugin
shell, algorithms/, core/, models/, icons/, styles/, docs/, metadata.txt, LICENSE, README.md and
CHANGELOG.md. Tests, training code, benchmarks, sample data, scripts and build artefacts stay out.
"""
from __future__ import annotations

import argparse
import configparser
import os
import re
import sys
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "demsr"
RUNTIME_FILES = ("__init__.py", "plugin.py", "metadata.txt", "LICENSE", "README.md",
                 "CHANGELOG.md")
RUNTIME_DIRS = ("algorithms", "core", "models", "icons", "styles", "docs")
# plugins.qgis.org: the fields its upload form refuses to do without, and its size limit.
REQUIRED_METADATA = ("name", "qgisMinimumVersion", "description", "about", "version", "author",
                     "email", "repository")
MAX_BYTES = 25 * 2**20
FORBIDDEN_PARTS = ("__pycache__", ".git", "__MACOSX", ".DS_Store", ".pytest_cache",
                   ".ruff_cache")
FORBIDDEN_SUFFIXES = (".pyc", ".pyo", ".aux.xml")
# Reserved for examples (RFC 2606): an address there cannot be the project's.
PLACEHOLDER_DOMAINS = re.compile(r"\bexample\.(org|com|net)\b|\blocalhost\b")


def runtime_paths(root: str = ROOT) -> list[str]:
    """Repository-relative paths of every file the zip carries, sorted."""
    paths = [f for f in RUNTIME_FILES if os.path.isfile(os.path.join(root, f))]
    for folder in RUNTIME_DIRS:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, folder)):
            dirnames[:] = sorted(d for d in dirnames if d not in FORBIDDEN_PARTS)
            for name in sorted(filenames):
                if not name.endswith(FORBIDDEN_SUFFIXES) and name not in FORBIDDEN_PARTS:
                    paths.append(os.path.relpath(os.path.join(dirpath, name), root))
    return sorted(paths)


def read_metadata(text: str) -> dict[str, str]:
    meta = configparser.ConfigParser(interpolation=None)
    meta.optionxform = str  # keys are case-sensitive (qgisMinimumVersion)
    meta.read_string(text)
    return dict(meta["general"]) if meta.has_section("general") else {}


def build(out_dir: str, root: str = ROOT) -> str:
    with open(os.path.join(root, "metadata.txt"), encoding="utf-8") as f:
        version = read_metadata(f.read()).get("version", "0")
    os.makedirs(out_dir, exist_ok=True)
    target = os.path.join(out_dir, f"{PACKAGE}-{version}.zip")
    partial = target + ".partial"
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for rel in runtime_paths(root):
            zf.write(os.path.join(root, rel), f"{PACKAGE}/{rel}")
    os.replace(partial, target)
    return target


def check(zip_path: str) -> list[str]:
    """Problems the plugin repository's validator would raise; [] when the zip passes."""
    problems = []
    if os.path.getsize(zip_path) > MAX_BYTES:
        problems.append(f"the zip is {os.path.getsize(zip_path) / 2**20:.1f} MB, over 25 MB")
    with zipfile.ZipFile(zip_path) as zf:
        names = zf.namelist()
        tops = {n.split("/", 1)[0] for n in names}
        if tops != {PACKAGE}:
            problems.append(f"the zip must hold one top folder '{PACKAGE}/', not {sorted(tops)}")
        for name in names:
            parts = name.split("/")
            if any(p in FORBIDDEN_PARTS for p in parts) or name.endswith(FORBIDDEN_SUFFIXES):
                problems.append(f"{name} must not be in the package")
        for required in ("__init__.py", "metadata.txt", "LICENSE"):
            if f"{PACKAGE}/{required}" not in names:
                problems.append(f"{PACKAGE}/{required} is missing")
        if f"{PACKAGE}/metadata.txt" not in names:
            return problems
        meta = read_metadata(zf.read(f"{PACKAGE}/metadata.txt").decode("utf-8"))
        for key in REQUIRED_METADATA:
            if not meta.get(key, "").strip():
                problems.append(f"metadata.txt has no '{key}'")
        if meta.get("version") and not re.fullmatch(r"\d+(\.\d+){1,2}", meta["version"]):
            problems.append(f"version '{meta['version']}' is not of the form 1.2 or 1.2.3")
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]{2,}", meta.get("email", "")):
            problems.append(f"email '{meta.get('email')}' is not an e-mail address")
        for key in ("repository", "tracker", "homepage"):
            url = meta.get(key, "")
            if key == "repository" or url:
                if not re.match(r"https?://[^/\s]+\.[^/\s]+/", url + "/"):
                    problems.append(f"{key} '{url}' is not a web address")
        for key in ("repository", "tracker", "homepage", "email"):
            if PLACEHOLDER_DOMAINS.search(meta.get(key, "")):
                problems.append(f"{key} '{meta[key]}' is a placeholder address")
        icon = meta.get("icon")
        if icon and f"{PACKAGE}/{icon}" not in names:
            problems.append(f"the icon {icon} named in metadata.txt is not in the package")
        if meta.get("hasProcessingProvider", "").lower() != "yes":
            problems.append("metadata.txt must say hasProcessingProvider=yes")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "build", "dist"))
    parser.add_argument("--check", metavar="ZIP", help="only check this zip")
    args = parser.parse_args(argv)
    path = args.check or build(args.out)
    problems = check(path)
    for problem in problems:
        print(f"package: {problem}", file=sys.stderr)
    if not problems:
        size = os.path.getsize(path) / 2**20
        print(f"{path}: {size:.1f} MB, passes the plugin repository's checks")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
