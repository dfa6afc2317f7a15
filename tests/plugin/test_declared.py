"""The Processing side of the declarations: the parameters qgis_process and the dialog see are
the released ones (tests/data/contract_v1.json), and both front doors, `qgis_process` and
`python -m core.batch`, show every shared parameter with the same label, default and range and
refuse the same values with the same words."""
import json
import os
import re
import subprocess
import sys

import pytest

from tests.declared_cases import REFUSED

from .conftest import DATA, ROOT

with open(os.path.join(ROOT, "tests", "data", "contract_v1.json"), encoding="utf-8") as f:
    CONTRACT = json.load(f)
RASTER_ALGORITHMS = ("superresolution", "attraction", "tpi", "landforms")


def _described(alg) -> dict:
    from qgis.core import QgsProcessingParameterDefinition as Definition

    params = []
    for p in alg.parameterDefinitions():
        d = {"name": p.name(), "type": p.type(), "default": p.defaultValue(),
             "optional": bool(p.flags() & Definition.FlagOptional),
             "advanced": bool(p.flags() & Definition.FlagAdvanced)}
        if p.type() == "enum":
            d["options"] = p.options()
        if p.type() == "number":
            d["data_type"] = int(p.dataType())
            d["min"], d["max"] = p.minimum(), p.maximum()
        params.append(d)
    return {"parameters": params,
            "outputs": [{"name": o.name(), "type": o.type()} for o in alg.outputDefinitions()]}


@pytest.mark.parametrize("name", sorted(CONTRACT["processing"]))
def test_processing_parameters_are_the_released_ones(demsr_provider, name):
    # ids, types, defaults, option numbers and words, ranges, optional and advanced flags, order
    # of every released parameter and output. A release may add a parameter, but only an optional
    # one: a script or model written for the released set must run unchanged.
    described = json.loads(json.dumps(_described(demsr_provider.algorithm(name)), default=str))
    released = CONTRACT["processing"][name]
    released_names = {p["name"] for p in released["parameters"]}
    kept = [p for p in described["parameters"] if p["name"] in released_names]
    assert kept == released["parameters"]
    added = [p for p in described["parameters"] if p["name"] not in released_names]
    assert all(p["optional"] for p in added), added
    assert described["outputs"][:len(released["outputs"])] == released["outputs"]


def test_added_parameters_are_the_intended_ones(demsr_provider):
    # Parameters added since the released contract, each named in CHANGELOG.md.
    added = {name: [p.name() for p in demsr_provider.algorithm(name).parameterDefinitions()
                    if p.name() not in {r["name"] for r in CONTRACT["processing"][name]
                                        ["parameters"]}]
             for name in CONTRACT["processing"]}
    assert added == {"superresolution": [], "attraction": [], "tpi": [], "landforms": [],
                     "surveyrmse": ["DEMS_VERTICAL", "DEMS_VERTICAL_CRS", "POINTS_VERTICAL",
                                    "POINTS_VERTICAL_CRS"]}
    with open(os.path.join(ROOT, "CHANGELOG.md"), encoding="utf-8") as f:
        changelog = f.read()
    for names in added.values():
        for name in names:
            assert name in changelog, name


def test_numbers_show_sensible_decimals(demsr_provider):
    decimals = {}
    for name in ("tpi", "landforms"):
        for p in demsr_provider.algorithm(name).parameterDefinitions():
            if p.type() == "number":
                decimals[p.name()] = p.metadata()["widget_wrapper"]["decimals"]
    assert decimals == {"RADIUS": 0, "INNER_RADIUS": 0, "SMALL_RADIUS": 0, "LARGE_RADIUS": 0,
                        "SLOPE_THRESHOLD": 1}


def test_labels_fit_the_dialog(demsr_provider):
    for alg in demsr_provider.algorithms():
        for p in alg.parameterDefinitions():
            assert len(p.description()) <= 60, (alg.name(), p.name(), p.description())


def _flat(text: str) -> str:
    # argparse re-wraps help (and may break after a hyphen): compare without whitespace.
    return "".join(text.split())


@pytest.mark.parametrize("name", RASTER_ALGORITHMS)
def test_both_front_doors_show_the_same_label_default_and_range(name, qgis_process):
    from demsr.core.declarations import SPECS

    spec = SPECS[name]
    shown = qgis_process("help", f"demsr:{name}")
    assert shown.returncode == 0, shown.stderr
    cli = subprocess.run([sys.executable, "-m", "core.batch", name, "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    for param in spec.option_params:
        line = param.describe()
        # qgis_process: the argument list names the label (QGIS >= 3.40 marks an optional one),
        # the description says the rest
        listed = rf"\n{re.escape(param.name)}: {re.escape(param.label)}( \(optional\))?\n"
        assert re.search(listed, shown.stdout), param.name
        assert line in shown.stdout, (param.name, line)
        # core.batch: the option's help is the same line
        assert _flat(line) in _flat(cli.stdout), (param.name, line)
        assert param.flags[0] in cli.stdout
        for word in (param.label, param.show(param.default_value())):
            assert _flat(word) in _flat(line)


@pytest.mark.parametrize("algorithm, options, message", REFUSED)
def test_processing_refuses_what_the_command_line_refuses(demsr_provider, algorithm, options,
                                                          message, tmp_path):
    from demsr.core.declarations import SPECS
    from qgis.core import QgsProcessingContext

    alg = demsr_provider.algorithm(algorithm)
    parameters = {"INPUT": os.path.join(DATA, "jacksboro_fault_srtm3.tif"),
                  "OUTPUT": str(tmp_path / "out.tif")}
    for key, value in options.items():
        # An option named on the command line is its number here.
        names = [c.name for c in SPECS[algorithm].param(key).options()[0]]
        parameters[key.upper()] = str(names.index(value) if value in names else value)
    ok, said = alg.checkParameterValues(parameters, QgsProcessingContext())
    assert not ok
    # The same words as core.batch, up to how an option may be named (numbers only here).
    assert message.split("; use the option's number or name")[0] in said, said


@pytest.mark.parametrize("algorithm, argument, message", [
    ("superresolution", "SCALE=2.5", "SCALE: 2.5 is not a whole number; allowed: a whole "
                                     "number ≥ 2."),
    ("tpi", "RADIUS=0.4", "RADIUS: 0.4 cells is less than one cell"),
    ("landforms", "SMALL_RADIUS=30", "SMALL_RADIUS (30) must be smaller than LARGE_RADIUS (22)"),
    ("landforms", "SLOPE_THRESHOLD=95", "SLOPE_THRESHOLD: 95 is out of range; allowed: a number "
                                        "from 0 to 90."),
])
def test_qgis_process_refuses_with_the_parameter_and_its_allowed_values(
        qgis_process, algorithm, argument, message, tmp_path):
    out = tmp_path / "out.tif"
    proc = qgis_process("run", f"demsr:{algorithm}", "--",
                        f"INPUT={os.path.join(DATA, 'mandakini_srtm90_utm44.tif')}", argument,
                        f"OUTPUT={out}")
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr
    assert not out.exists()


def test_a_value_both_doors_accept_gives_one_result(run_alg, tmp_path):
    """A radius of exactly one cell, the smallest allowed: the same TPI on both doors."""
    import numpy as np
    from osgeo import gdal

    dem = os.path.join(DATA, "mandakini_srtm90_utm44.tif")
    a = run_alg("demsr:tpi", {"INPUT": dem, "RADIUS": 1, "OUTPUT": str(tmp_path / "a.tif")})
    cli = subprocess.run([sys.executable, "-m", "core.batch", "tpi", dem, str(tmp_path / "b.tif"),
                          "--radius", "1", "--workers", "0", "--quiet"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0, cli.stderr
    x = gdal.Open(a["OUTPUT"]).ReadAsArray().astype(float)
    y = gdal.Open(str(tmp_path / "b.tif")).ReadAsArray().astype(float)
    assert np.abs(x - y).max() <= 1e-4 and np.abs(x).max() > 1
