"""What users read: plain-text help that renders the same in the Toolbox panel and the terminal,
a one-line description, search tags, and a help URL whose section exists in docs/."""
import os
import re

import pytest
from demsr.algorithms.base import help_for_platform

from .conftest import ROOT

ALGORITHMS = ("superresolution", "attraction", "tpi", "landforms", "surveyrmse")


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_help_is_plain_text_and_complete(demsr_provider, alg):
    algorithm = demsr_provider.algorithm(alg)
    # What qgis_process prints; the dialogs get it HTML-escaped (tests/plugin/test_desktop.py).
    text = help_for_platform(algorithm.help_text(), "qgis_process")
    # Written as plain text: a tag or an entity would show raw in the terminal.
    assert not re.search(r"<[a-zA-Z/][^>]*>|&[a-z]+;", text), text
    assert not re.search(r"seed 00|\.\./shared|§", text)
    assert 20 < len(algorithm.shortDescription()) < 120
    assert "dem" in algorithm.tags() and len(algorithm.tags()) >= 4
    # Every parameter the user can set is explained by name in the help.
    for p in algorithm.parameterDefinitions():
        if p.name() not in ("INPUT", "OUTPUT", "POINTS"):
            assert p.name() in text, p.name()


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_help_url_points_at_a_section_of_the_docs(demsr_provider, alg):
    url = demsr_provider.algorithm(alg).helpUrl()
    assert url.startswith("https://") and url.endswith(f"docs/algorithms.md#demsr{alg}")
    with open(os.path.join(ROOT, "docs", "algorithms.md"), encoding="utf-8") as f:
        assert f"\n## demsr:{alg}\n" in f.read()
