"""ARCHITECTURE.md stays true: it names every package module, every ci/ script and every chapter notebook,
and every path it writes in backticks exists.

"Named" means the path appears as a whole: relative to the repository (``ci/export.py``,
``book/q13-masks/masks.ipynb``, ``src/transformer18/checks/masks.py``), relative to the package
(``masks.py``, ``checks/masks.py``), or as a dotted module (``transformer18.checks.masks``). A path in
backticks (inline code or a fenced block) is any word with a ``/`` or a file extension; it is skipped if it
holds a placeholder (``<name>``, ``*``, ``…``) or lies under a git-ignored folder (``_build/``). When a
test here fails, fix ARCHITECTURE.md, not the test.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import yaml
from conftest import ROOT

ARCHITECTURE = ROOT / "ARCHITECTURE.md"
PACKAGE = ROOT / "src" / "transformer18"
EXTENSIONS = {".py", ".sh", ".md", ".yml", ".yaml", ".toml", ".txt", ".ipynb", ".js", ".bib", ".cff", ".json",
              ".svg", ".cfg"}
PATH_WORD = re.compile(r"[\w.][\w.-]*(?:/[\w.-]+)*/?")


def text() -> str:
    return ARCHITECTURE.read_text(encoding="utf-8")


# ---------------------------------------------------------------- what must be named


def package_modules(package: Path = PACKAGE) -> list[Path]:
    return sorted([*package.glob("*.py"), *(package / "checks").glob("*.py")])


def ci_scripts(root: Path = ROOT) -> list[Path]:
    files = [*(root / "ci").rglob("*"), *(root / ".ci").rglob("*")]
    return sorted(p for p in files if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


def toc_notebooks(root: Path = ROOT) -> list[Path]:
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    entries = [toc["root"]] + [chapter["file"] for part in toc.get("parts", []) for chapter in part["chapters"]]
    return [root / f"{entry}.ipynb" for entry in entries if (root / f"{entry}.ipynb").exists()]


def is_named(path: Path, doc: str, root: Path = ROOT, package: Path = PACKAGE) -> bool:
    """Whether ``doc`` names ``path`` as a whole (not as the tail of a longer path)."""
    spellings = [path.relative_to(root).as_posix()]
    if path.is_relative_to(package):
        relative = path.relative_to(package)
        spellings.append(relative.as_posix())
        if relative.stem != "__init__":
            spellings.append(".".join(["transformer18", *relative.with_suffix("").parts]))
    return any(re.search(rf"(?<![\w/.-]){re.escape(s)}(?![\w/]|\.\w)", doc) for s in spellings)


def unnamed(paths: list[Path], doc: str, root: Path = ROOT, package: Path = PACKAGE) -> list[str]:
    return [p.relative_to(root).as_posix() for p in paths if not is_named(p, doc, root, package)]


# ---------------------------------------------------------------- paths written in backticks


def code_texts(doc: str) -> list[str]:
    """The contents of every fenced code block and every inline code span of a Markdown text."""
    codes, prose, fence = [], [], None
    for line in doc.splitlines():
        marker = re.match(r"\s*(`{3,})", line)
        if fence is None and marker:
            fence, block = len(marker.group(1)), []
        elif fence is not None and re.fullmatch(rf"\s*`{{{fence},}}\s*", line):
            codes.append("\n".join(block))
            fence = None
        elif fence is not None:
            block.append(line)
        else:
            prose.append(line)
    spans = re.findall(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", "\n".join(prose), re.S)
    return codes + [span for _, span in spans]


def ignored_roots(root: Path = ROOT) -> list[str]:
    """The .gitignore patterns: paths under them are generated, absent from a fresh checkout."""
    lines = (root / ".gitignore").read_text(encoding="utf-8").splitlines()
    return [line.strip().strip("/") for line in lines if line.strip() and not line.startswith("#")]


def written_paths(doc: str) -> set[str]:
    paths = set()
    for code in code_texts(doc):
        for word in code.split():
            word = word.split("::")[0].rstrip(",;:")
            if word.startswith("..") or not PATH_WORD.fullmatch(word):
                continue
            if "/" in word or Path(word).suffix in EXTENSIONS:
                paths.add(word)
    return paths


def missing_paths(doc: str, root: Path = ROOT, package: Path = PACKAGE) -> list[str]:
    ignored = ignored_roots(root)
    missing = []
    for word in sorted(written_paths(doc)):
        first = word.split("/")[0]
        if any(fnmatch.fnmatch(first, pattern) for pattern in ignored):
            continue
        if not ((root / word).exists() or (package / word).exists()):
            missing.append(word)
    return missing


# ---------------------------------------------------------------- the tests


def test_every_package_module_is_named():
    missing = unnamed(package_modules(), text())
    assert not missing, f"ARCHITECTURE.md does not name these package modules (add them to §1): {missing}"


def test_every_ci_script_is_named():
    missing = unnamed(ci_scripts(), text())
    assert not missing, f"ARCHITECTURE.md does not name these ci/ scripts (add them to §1's ci/ table): {missing}"


def test_every_chapter_notebook_is_named():
    notebooks = toc_notebooks()
    assert len(notebooks) >= 18
    missing = unnamed(notebooks, text())
    assert not missing, f"ARCHITECTURE.md does not name these notebooks of _toc.yml (add them to §1): {missing}"


def test_every_path_written_in_backticks_exists():
    missing = missing_paths(text())
    assert not missing, f"ARCHITECTURE.md names paths that do not exist (update it): {missing}"


def test_the_rules_can_fail(tmp_path):
    package = tmp_path / "src" / "transformer18"
    (package / "checks").mkdir(parents=True)
    for name in ("masks.py", "checks/masks.py", "checks/_core.py", "norm.py"):
        (package / name).write_text("")
    (tmp_path / ".gitignore").write_text("_build/\n")
    modules = package_modules(package)
    doc = "`checks/masks.py`, `transformer18.norm` and `src/transformer18/checks/_core.py`"
    # masks.py is named only as the tail of checks/masks.py: not named
    assert unnamed(modules, doc, tmp_path, package) == ["src/transformer18/masks.py"]
    assert unnamed(modules, doc + ", `masks.py`", tmp_path, package) == []
    doc = ("`checks/masks.py` `ci/gone.sh --check` `_build/html` `book/qNN-<slug>/` `nn.Linear`\n"
           "```bash\npython ci/old.py\n```\n")
    assert missing_paths(doc, tmp_path, package) == ["ci/gone.sh", "ci/old.py"]
