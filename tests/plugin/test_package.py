"""scripts/package.py: the plugin zip passes the plugin repository's checks and works when
installed the way users install it (unzipped into a profile's plugin folder)."""
import glob
import json
import os
import subprocess
import sys
import zipfile

import pytest
from osgeo import gdal

from .conftest import DATA, QGIS_PROCESS, ROOT

sys.path.insert(0, os.path.join(ROOT, "scripts"))
import package  # noqa: E402

from tests.helpers_guard import cli_params, untouched


@pytest.fixture(scope="module")
def plugin_zip(tmp_path_factory):
    return package.build(str(tmp_path_factory.mktemp("dist")))


def test_zip_passes_the_repository_checks(plugin_zip):
    assert package.check(plugin_zip) == []
    assert os.path.getsize(plugin_zip) <= 25 * 2**20
    names = zipfile.ZipFile(plugin_zip).namelist()
    assert "demsr/metadata.txt" in names and "demsr/models/fastsr_x2.onnx" in names
    for left_out in ("tests/", "training/", "benchmarks/", "data/", "scripts/", ".ci/"):
        assert not any(n.startswith("demsr/" + left_out) for n in names), left_out


def test_the_checks_catch_what_the_repository_refuses(tmp_path):
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("demsr/__init__.py", "")
        zf.writestr("demsr/__pycache__/plugin.cpython-311.pyc", b"\0")
        zf.writestr("demsr/metadata.txt", "[general]\nname=x\nversion=1.0\n"
                    "repository=https://example.org/x\nhasProcessingProvider=yes\n")
        zf.writestr("other/readme.txt", "")
    problems = "\n".join(package.check(str(bad)))
    assert "one top folder" in problems
    assert "__pycache__" in problems
    assert "LICENSE is missing" in problems
    for key in ("email", "author", "about", "qgisMinimumVersion", "description"):
        assert f"no '{key}'" in problems
    assert "placeholder address" in problems


@pytest.mark.skipif(not os.path.exists(QGIS_PROCESS), reason="no qgis_process.bin")
def test_unzipped_plugin_runs_through_qgis_process(plugin_zip, tmp_path):
    config = tmp_path / "config"
    plugins = config / "profiles" / "default" / "python" / "plugins"
    plugins.mkdir(parents=True)
    zipfile.ZipFile(plugin_zip).extractall(plugins)
    site = glob.glob(os.path.join(ROOT, ".venv", "lib", "python3*", "site-packages"))
    env = {k: v for k, v in os.environ.items() if k != "QGIS_PLUGINPATH"}
    env.update(QT_QPA_PLATFORM="offscreen", QGIS_CUSTOM_CONFIG_PATH=str(config),
               PYTHONPATH=os.pathsep.join(site))

    def qgis_process(*args):
        with untouched(cli_params(args) if "run" in args else {}):  # the inputs guard
            return subprocess.run([QGIS_PROCESS, *args], env=env, capture_output=True,
                                  text=True, timeout=300)

    enabled = qgis_process("plugins", "enable", "demsr")
    assert enabled.returncode == 0, enabled.stdout + enabled.stderr
    out = tmp_path / "sr.tif"
    src = os.path.join(DATA, "jacksboro_fault_srtm3.tif")
    proc = qgis_process("--json", "run", "demsr:superresolution", "--", f"INPUT={src}",
                        f"OUTPUT={out}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert result["results"]["OUTPUT"] == str(out)
    assert gdal.Open(str(out)).RasterXSize == 2 * gdal.Open(src).RasterXSize
    # No QGIS_PLUGINPATH and a fresh profile: the only demsr QGIS can load is the unzipped one.
    listing = qgis_process("--json", "plugins")
    assert json.loads(listing.stdout[listing.stdout.index("{"):])["plugins"]["demsr"]["loaded"]
