"""The package and the notebooks never drift apart, and chapters import only earlier chapters."""

import ast
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT

PACKAGE = ROOT / "src" / "transformer18"
SUPPORT = {"__init__", "notebook", "viz", "widgets", "checks", "pretrained"}

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
                                                        and (p / "__init__.py").exists()}
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
            assert chapters[dependency] <= own, (  # a notebook exporting two modules: one may import the other
                f"{name} (notebook {own} of the book) imports {dependency} (notebook {chapters[dependency]}): only "
                "modules of earlier notebooks (or of its own) may be imported")


def test_the_import_order_rule_can_fail():
    text = export.HEADER + " ../../book/q01-why-transformer/why_transformer.ipynb.\nfrom .config import X\n"
    assert chapter_of(text) == 1 and imported_modules(text) == {"config"}
    assert chapter_of(generated()["config.py"]) == 2  # so Q1 importing config would be refused above
    assert chapter_of(generated()["date_translator.py"]) > chapter_of(generated()["dates.py"]) > chapter_of(generated()["training.py"])


# A subprocess that imports transformer18.checks afresh for each checker, asks for that one name, runs it on a stub
# (so that imports inside the checker happen too) and prints which package modules got imported.
_CHECKER_IMPORTS = """
import json, sys
names, seen = json.loads(sys.argv[1]), {}
stub = lambda *args, **kwargs: (_ for _ in ()).throw(NotImplementedError)
for name in names:
    for module in [m for m in sys.modules if m == "transformer18" or m.startswith("transformer18.")]:
        del sys.modules[module]
    import transformer18.checks
    getattr(transformer18.checks, name)(stub)
    seen[name] = sorted(m for m in sys.modules if m.startswith("transformer18."))
print(json.dumps(seen))
"""


def checker_chapters() -> dict[str, int]:
    """Each checker and the first chapter (position in _toc.yml) whose notebook calls it."""
    first = {}
    for position, path in enumerate(TOC_ORDER, start=1):
        notebook = ROOT / f"{path}.ipynb"
        for name in re.findall(r"\b(check_\w+)\(", notebook.read_text() if notebook.exists() else ""):
            first.setdefault(name, position)
    return first


def modules_asked_for(names: list[str], env: dict | None = None) -> dict[str, list[str]]:
    done = subprocess.run([sys.executable, "-c", _CHECKER_IMPORTS, json.dumps(names)], capture_output=True,
                          text=True, check=True, env=env, timeout=300)
    return json.loads(done.stdout.splitlines()[-1])


def later_imports(seen: dict[str, list[str]], chapters: dict[str, int]) -> list[str]:
    """The (checker, module) pairs where asking for a chapter's checker imported a later chapter's module or
    another checker module."""
    generated_chapters = {name.removesuffix(".py"): chapter_of(text) for name, text in generated().items()}
    from transformer18 import checks

    problems = []
    for name, modules in seen.items():
        own = checks._MODULE_OF[name]
        for module in modules:
            parts = module.split(".")[1:]
            if parts[0] in generated_chapters and generated_chapters[parts[0]] > chapters[name]:
                problems.append(f"{name} (chapter {chapters[name]}) imported {module} "
                                f"(chapter {generated_chapters[parts[0]]})")
            if parts[0] == "checks" and len(parts) > 1 and parts[1] not in {"_core", own}:
                problems.append(f"{name} imported {module}, another chapter's checkers")
    return problems


def test_a_checker_imports_only_its_own_and_earlier_chapters():
    from transformer18 import checks

    chapters = checker_chapters()
    names = [name for name in checks.__all__ if name.startswith("check_")]
    assert set(names) <= set(chapters), f"checkers no notebook calls: {set(names) - set(chapters)}"
    assert later_imports(modules_asked_for(names), chapters) == []


def test_the_lazy_import_rule_can_fail(tmp_path):
    """With the eager loop that checks/__init__.py once had, Q1's checker imports Q17's model: the test sees it."""
    package = tmp_path / "transformer18"
    shutil.copytree(PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__"))
    init = package / "checks" / "__init__.py"
    init.write_text(init.read_text() + "\nfor _name in list(_MODULE_OF):\n    __getattr__(_name)\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    seen = modules_asked_for(["check_rnn_forward"], env)
    problems = later_imports(seen, checker_chapters())
    assert any("check_rnn_forward (chapter 1) imported transformer18.model" in p for p in problems), problems
