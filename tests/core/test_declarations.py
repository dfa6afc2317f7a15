"""The per-algorithm declarations (core/declarations/): the public contract they build is the
one released before them (tests/data/contract_v1.json: command-line options, defaults, job
manifests, which still resume), their checks refuse what they must with a message naming the
parameter and its allowed values, and the docs' parameter tables are theirs."""
import json
import os
import shutil

import pytest
from osgeo import gdal

from core import batch, params
from core.declarations import RASTER_ALGORITHMS, SPECS
from core.errors import DemError
from core.grid.raster import read_info
from core.largearea import inputs, mosaic
from core.largearea import manifest as manifests
from tests.declared_cases import REFUSED
from tests.helpers_scripts import ROOT, load_script
from tests.mosaic_data import JACKSBORO

with open(ROOT / "tests" / "data" / "contract_v1.json", encoding="utf-8") as f:
    CONTRACT = json.load(f)


def _cli_of(parser) -> dict:
    """What contract_v1.json records of a parser: every option's spellings and default."""
    out = {}
    for name in RASTER_ALGORITHMS:
        sub = parser._subparsers._group_actions[0].choices[name]
        out[name] = {a.dest: {"flags": sorted(a.option_strings), "default": a.default}
                     for a in sub._actions if a.dest != "help"}
    return out


def test_command_line_options_and_defaults_are_the_released_ones():
    assert _cli_of(batch.parser()) == CONTRACT["cli"]


def test_the_engine_runs_the_algorithms_the_command_line_ran():
    assert RASTER_ALGORITHMS == tuple(CONTRACT["cli"])
    assert set(SPECS) == set(CONTRACT["processing"])


@pytest.mark.parametrize("algorithm", RASTER_ALGORITHMS)
def test_recorded_parameters_are_what_the_released_engine_recorded(algorithm):
    for recorded in CONTRACT["manifests"][algorithm].values():
        assert (mosaic.normalise_options(algorithm, recorded["options"])
                == recorded["manifest"]["job"]["parameters"])


@pytest.fixture(scope="module")
def small_dem(tmp_path_factory):
    """The raster the recorded jobs of contract_v1.json ran on (60 × 50 cells of Jacksboro)."""
    path = str(tmp_path_factory.mktemp("dem") / "small.tif")
    gdal.Translate(path, JACKSBORO, srcWin=[40, 30, 60, 50])
    return path


@pytest.mark.parametrize("algorithm", RASTER_ALGORITHMS)
def test_a_job_recorded_by_the_released_engine_resumes(algorithm, small_dem, tmp_path):
    recorded = CONTRACT["manifests"][algorithm]["sample"]
    manifest = recorded["manifest"]
    output = str(tmp_path / "out.vrt")
    folder = manifests.job_folder(output)
    os.makedirs(folder)
    # Only where it ran differs: this machine's paths and file stamps.
    job = manifest["job"]
    job["input"] = os.path.abspath(small_dem)
    job["output"] = os.path.abspath(output)
    job["input_files"] = inputs.input_stamps(small_dem)
    for chunk in manifest["chunks"]:
        if chunk["state"] == "done":
            chunk["state"] = "pending"
            chunk.pop("summary", None)
    manifest["final"] = {"state": "pending"}
    with open(os.path.join(folder, manifests.MANIFEST), "w", encoding="utf-8") as f:
        json.dump(manifest, f)
    # Without overwrite: a job whose parameters or grid differed would be refused.
    result = mosaic.run_job(algorithm, small_dem, output, recorded["options"], chunk_size=32)
    assert len(result.computed) == sum(c["state"] != "empty" for c in manifest["chunks"])
    with open(os.path.join(folder, manifests.MANIFEST), encoding="utf-8") as f:
        assert json.load(f)["job"]["grid"] == job["grid"]
    shutil.rmtree(folder)


def test_labels_are_short_and_every_parameter_is_declared_once():
    for spec in SPECS.values():
        names = [p.name for p in spec.params] + [o.name for o in spec.outputs]
        assert len(names) == len(set(names)), spec.id
        for item in (*spec.params, *spec.outputs):
            assert 0 < len(item.label) <= 60, (spec.id, item.name, item.label)
            assert item.help.strip(), (spec.id, item.name)


# --- refusals, named --------------------------------------------------------------------------

@pytest.mark.parametrize("algorithm, options, message", REFUSED)
def test_bad_values_are_refused_naming_the_parameter_and_what_is_allowed(algorithm, options,
                                                                          message):
    with pytest.raises(DemError) as err:
        mosaic.normalise_options(algorithm, options)
    assert message in str(err.value)


def test_values_are_taken_in_canonical_form():
    v = mosaic.normalise_options("tpi", {"radius": "3", "units": "1", "shape": 2,
                                         "STANDARDIZE": True})
    assert v == {"radius": 3.0, "inner_radius": 0.0, "shape": "annulus", "units": "map units",
                 "standardize": True}
    assert mosaic.normalise_options("tpi", {"radius": 0.5, "units": "map_units"})["radius"] == 0.5
    assert mosaic.normalise_options("attraction", {"scale": 3.0})["scale"] == 3


def test_a_radius_below_one_cell_is_refused_by_the_core_too():
    from core.terrain import tpi

    with pytest.raises(DemError, match="less than one cell"):
        tpi.neighbourhood("square", 0.4, 0.0, "cells")
    assert tpi.neighbourhood("square", 1.0, 0.0, "cells").size == (3, 3)


@pytest.mark.parametrize("algorithm, options, message", REFUSED)
def test_the_command_line_refuses_the_same_values(algorithm, options, message, capsys, small_dem,
                                                  tmp_path):
    argv = [algorithm, small_dem, str(tmp_path / "out.tif"), "--workers", "0", "--quiet"]
    for key, value in options.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    try:
        rc = batch.main(argv)
    except SystemExit as stop:  # a value argparse's own check refused
        rc = stop.code
    assert rc in (1, 2)
    said = " ".join(capsys.readouterr().err.split())
    assert message in said, said
    assert not os.listdir(tmp_path)


# --- kernels from the declarations -----------------------------------------------------------


def test_the_engine_takes_halos_and_statistics_from_the_declared_kernels():
    info = read_info(JACKSBORO)
    halo = {}
    for name, options in (("tpi", {"radius": 3}), ("landforms", {}), ("attraction", {}),
                          ("tpi", {"radius": 3, "standardize": True})):
        kernel, blob = mosaic.build_kernel(name, mosaic.normalise_options(name, options), info)
        halo[name, kernel.needs_moments] = (kernel.halo, kernel.scale, blob)
    assert halo == {("tpi", False): (3, 1, None), ("tpi", True): (3, 1, None),
                    ("landforms", True): (23, 1, None), ("attraction", False): (1, 2, None)}


# --- the documentation's tables ----------------------------------------------------------------


def test_the_docs_parameter_tables_are_generated_from_the_declarations():
    tables = load_script("scripts/docs_tables.py")
    blocks = set()
    for path in tables.DOCS:
        text = path.read_text(encoding="utf-8")
        assert tables.rewrite(text) == text, (
            f"{path.name} is out of date: run .venv/bin/python scripts/docs_tables.py")
        blocks |= {m.group("id") for m in tables._BLOCK.finditer(text)}
    assert blocks == {"contract", *SPECS}


def test_a_help_line_says_default_and_range():
    p = params.Param("X", params.NUMBER, "Threshold", "what it does.", default=5.0, minimum=0.0,
                     maximum=90.0, decimals=1)
    assert p.describe() == "Threshold: what it does. Default 5.0; a number from 0 to 90."
