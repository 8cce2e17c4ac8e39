"""The release files agree with the one version in pyproject.toml (CONTRIBUTING.md, "Making a release")."""

import importlib.util
import json
import re
import sys

from conftest import ROOT

import transformer18

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_the_version_is_read_from_the_package_metadata():
    assert re.fullmatch(r"\d+\.\d+\.\d+", VERSION)
    assert transformer18.__version__ == VERSION, "reinstall the package (pip install -e .) after a version change"
    assert not re.search(r'__version__ = "\d+\.\d', (ROOT / "src" / "transformer18" / "__init__.py").read_text())


def test_license_citation_and_changelog_name_this_version():
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert 'license = { text = "MIT" }' in (ROOT / "pyproject.toml").read_text()
    citation = (ROOT / "CITATION.cff").read_text()
    assert re.search(rf'^version: "{re.escape(VERSION)}"$', citation, re.M)
    assert re.search(r"^cff-version: 1\.2\.0$", citation, re.M) and "license: MIT" in citation
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(rf"^## \[{re.escape(VERSION)}\] - \d{{4}}-\d\d-\d\d$", changelog, re.M), "add a CHANGELOG entry"


def _set_version():
    spec = importlib.util.spec_from_file_location("set_version", ROOT / "ci" / "set_version.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_set_version_rewrites_the_install_cell_and_the_badge(tmp_path):
    install = '    %pip install -q "transformer18 @ git+https://github.com/o/transformer-in-18-questions@v0.2.0"\n'
    badge = "[![Open In Colab](x.svg)](https://colab.research.google.com/github/o/r/blob/v0.2.0/colab/q01/a.ipynb)\n"
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# Q1\n", badge]},
                    {"cell_type": "code", "metadata": {}, "source": ["try:\n", install], "outputs": [],
                     "execution_count": None}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "a.ipynb"
    path.write_text(json.dumps(nb, indent=1) + "\n")
    assert _set_version().rewrite_notebook(path, "v0.2.0", "v0.3.0")
    text = path.read_text()
    assert "@v0.3.0\\\"" in text and "/blob/v0.3.0/colab/" in text and "v0.2.0" not in text
    assert not _set_version().rewrite_notebook(path, "v0.2.0", "v0.3.0"), "nothing left to change"
