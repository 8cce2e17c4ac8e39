"""The package and the notebooks never drift apart, and chapters import only earlier chapters."""

import ast
import importlib.util
import re
import shutil
import sys

import pytest
from conftest import ROOT

PACKAGE = ROOT / "src" / "transformer18"
SUPPORT = {"__init__", "notebook", "viz", "widgets", "checks"}

spec = importlib.util.spec_from_file_location("export", ROOT / "ci" / "export.py")
export = importlib.util.module_from_spec(spec)
sys.modules["export"] = export
spec.loader.exec_module(export)


def test_package_matches_notebooks(capsys):
    assert export.check(ROOT) == 0, capsys.readouterr().err


@pytest.fixture
def scratch(tmp_path):
    shutil.copytree(ROOT / "book", tmp_path / "book", ignore=shutil.ignore_patterns("_build", "*.png"))
    shutil.copytree(PACKAGE, tmp_path / "src" / "transformer18", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_check_fails_when_a_module_is_edited_by_hand(scratch, capsys):
    module = scratch / "src" / "transformer18" / "rnn.py"
    module.write_text(module.read_text() + "\nHAND_EDIT = 1\n")
    assert export.check(scratch) == 1
    assert "HAND_EDIT" in capsys.readouterr().err


def test_check_fails_when_a_module_is_missing_or_stale(scratch, capsys):
    package = scratch / "src" / "transformer18"
    (package / "config.py").unlink()
    (package / "orphan.py").write_text(export.HEADER + " ../../book/nowhere.ipynb.\n")
    assert export.check(scratch) == 1
    err = capsys.readouterr().err
    assert "config.py is missing" in err and "orphan.py is generated but no notebook exports it" in err


def generated():
    return export.generated_modules(PACKAGE)


def _toc_order() -> list[str]:
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [chapter["file"] for part in toc["parts"] for chapter in part["chapters"]]


TOC_ORDER = _toc_order()


def chapter_of(text: str) -> int:
    """The position in the book (_toc.yml) of the notebook that generated a module."""
    match = re.search(r"File to edit: \S*?/(book/\S+)\.ipynb", text)
    assert match, "a generated module names its chapter notebook in its header"
    assert match.group(1) in TOC_ORDER, f"{match.group(1)} is not in _toc.yml"
    return TOC_ORDER.index(match.group(1)) + 1


def imported_modules(text: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                names.add(node.module.split(".")[0])
            elif node.level == 1:
                names.update(alias.name for alias in node.names)
            elif node.module and node.module.startswith("transformer18."):
                names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[1] for a in node.names if a.name.startswith("transformer18."))
    return names


def test_every_module_is_generated_or_a_known_support_module():
    modules = {p.stem for p in PACKAGE.glob("*.py")} | {p.name for p in PACKAGE.iterdir() if p.is_dir()
                                                        and p.name != "__pycache__"}
    hand_written = modules - {name.removesuffix(".py") for name in generated()}
    assert hand_written <= SUPPORT, f"hand-written modules outside the support set: {hand_written - SUPPORT}"
    assert {"rnn", "config"} <= {name.removesuffix(".py") for name in generated()}


def test_chapters_import_only_earlier_chapters():
    modules = generated()
    chapters = {name.removesuffix(".py"): chapter_of(text) for name, text in modules.items()}
    for name, text in modules.items():
        own = chapters[name.removesuffix(".py")]
        for dependency in imported_modules(text):
            if dependency in SUPPORT:
                continue
            assert dependency in chapters, f"{name} imports transformer18.{dependency}, which no chapter exports"
            assert chapters[dependency] < own, (
                f"{name} (notebook {own} of the book) imports {dependency} (notebook {chapters[dependency]}): only "
                "modules of earlier notebooks may be imported")


def test_the_import_order_rule_can_fail():
    text = export.HEADER + " ../../book/q01-why-transformer/why_transformer.ipynb.\nfrom .config import X\n"
    assert chapter_of(text) == 1 and imported_modules(text) == {"config"}
    assert chapter_of(generated()["config.py"]) == 2  # so Q1 importing config would be refused above
    assert chapter_of(generated()["date_translator.py"]) > chapter_of(generated()["dates.py"]) > chapter_of(generated()["training.py"])
