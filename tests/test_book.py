"""The book's structure and every notebook's conventions (DESIGN §4–§6)."""

import json
import re
import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import pytest
import yaml
from conftest import ROOT

CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
REPO_URL = CONFIG["repository"]["url"].rstrip("/")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]
RELEASE_TAG = f"v{VERSION}"  # the bootstrap and the badges point at the release the notebooks belong to
NOTEBOOKS = sorted(p for p in (ROOT / "book").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def toc_files():
    files = [TOC["root"]]
    for part in TOC.get("parts", []):
        files += [chapter["file"] for chapter in part["chapters"]]
    return files


def source(cell) -> str:
    return "".join(cell["source"])


def load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def test_config_follows_the_design():
    assert CONFIG["only_build_toc_files"] is True
    assert CONFIG["execute"]["execute_notebooks"] in ("force", "cache")
    assert CONFIG["execute"]["allow_errors"] is False
    assert CONFIG["sphinx"]["config"]["nb_execution_raise_on_error"] is True
    assert CONFIG["repository"]["branch"] == "main" and CONFIG["repository"]["path_to_book"] == ""
    assert CONFIG["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert CONFIG["launch_buttons"]["thebe"] is False
    assert "sphinx_exercise" in CONFIG["sphinx"]["extra_extensions"]
    assert "hide_solutions" not in json.dumps(CONFIG)
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", REPO_URL)


def test_every_toc_entry_exists_and_every_notebook_is_in_the_toc():
    listed = set(toc_files())
    for entry in listed:
        assert (ROOT / f"{entry}.ipynb").exists() or (ROOT / f"{entry}.md").exists(), entry
    for notebook in NOTEBOOKS:
        assert notebook.relative_to(ROOT).with_suffix("").as_posix() in listed, f"{notebook} is not in _toc.yml"


def test_the_map_names_all_18_questions():
    intro = (ROOT / "book" / "intro.md").read_text()
    for n in range(1, 19):
        assert re.search(rf"^\| Q{n} \| .+ \| .*[\u4e00-\u9fff].* \|", intro, re.M), f"Q{n} is missing from the map"


@pytest.fixture(params=NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def notebook(request):
    return request.param, load(request.param)


def test_no_outputs_are_committed(notebook):
    _, nb = notebook
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


def test_title_cell_has_question_chinese_badge_and_links(notebook):
    path, nb = notebook
    first = source(nb["cells"][0])
    numbered = re.match(r"q(\d\d)-", path.parent.name)
    title = f"# Q{int(numbered.group(1))} · " if numbered else {"capstone": "# Capstone · ", "appendix": "# Appendix · "}[
        path.parent.name]
    assert first.startswith(title), f"the title starts with {title!r} ('# Qn · question?' for a chapter)"
    assert re.search(r"[\u4e00-\u9fff]", first.splitlines()[2]), "the original Chinese question follows the title"
    org_repo = REPO_URL.removeprefix("https://github.com/")
    reader_copy = path.relative_to(ROOT / "book").as_posix()
    colab = f"https://colab.research.google.com/github/{org_repo}/blob/{RELEASE_TAG}/colab/{reader_copy}"
    badge = "../" * (len(path.relative_to(ROOT / "book").parts) - 1) + "figures/colab-badge.svg"
    assert (path.parent / badge).resolve() == ROOT / "book" / "figures" / "colab-badge.svg"
    assert f"[![Open In Colab]({badge})]({colab})" in first, (
        "the badge is the book's own image and opens the reader copy of this release in Colab")
    assert "**Builds on:**" in first and "**Produces:**" in first


def test_export_cell_then_bootstrap_cell(notebook):
    _, nb = notebook
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert source(code[0]).startswith("#| default_exp ")
    assert "remove-cell" in code[0]["metadata"].get("tags", [])
    bootstrap = source(code[1])
    assert "try:\n    import transformer18\nexcept ImportError:\n" in bootstrap, "install only where it is missing"
    assert f'    %pip install -q "transformer18 @ git+{REPO_URL}@{RELEASE_TAG}"\n' in bootstrap, (
        "the bootstrap installs this release from _config.yml's URL")
    assert "requirements.txt" not in bootstrap
    assert "setup(seed=0)" in bootstrap or "set_seed(0)" in bootstrap


def test_kernel_is_python3(notebook):
    _, nb = notebook
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


def test_ends_with_summary_paper_vs_practice_and_exercises(notebook):
    _, nb = notebook
    text = "\n".join(source(c) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert "## Summary" in text and "Paper vs practice" in text and "## Exercises" in text


QUESTION_NOTEBOOKS = [p for p in NOTEBOOKS if re.match(r"q\d\d-", p.parent.name)]


def _prose_words(text: str) -> int:
    import importlib.util

    spec = importlib.util.spec_from_file_location("prose_words", ROOT / "ci" / "prose_words.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.count_words(text)


@pytest.mark.parametrize("path", QUESTION_NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_a_chapter_opens_with_the_short_answer_and_ends_with_can_you_answer_it_now(path):
    """The answer on the first screen (after the badge, before the intro), and the question again at the end
    with self-check questions whose model answers are folded."""
    cells = load(path)["cells"]
    first = source(cells[0])
    short = re.search(r"\n:::\{admonition\} The short answer\n:class: tip\n\n(.+?)\n:::\n", first, re.S)
    assert short, "the first cell has ':::{admonition} The short answer' (class tip)"
    assert first.index("[![Open In Colab]") < short.start() < first.index("**You will**")
    assert 40 <= _prose_words(short.group(1)) <= 150, "the short answer takes at most 150 words"
    last = cells[-1]
    text = source(last)
    assert last["cell_type"] == "markdown" and text.startswith("## Can you answer it now?\n"), (
        "the last cell is '## Can you answer it now?'")
    title = re.match(r"# Q\d+ · ([^\n(]+?)(?: \(|\n)", first).group(1).strip()
    assert f"**{title}**" in text, "it asks the chapter's question again"
    questions = re.findall(r"^(\d)\. ", text.split(":::{dropdown}")[0], re.M)
    assert questions in (["1", "2"], ["1", "2", "3"]), "2 or 3 numbered self-check questions"
    answers = re.search(r"\n:::\{dropdown\} Model answers\n(.+?)\n:::\s*$", text, re.S)
    assert answers and re.findall(r"^(\d)\. ", answers.group(1), re.M) == questions, "one folded answer each"


def test_the_source_says_boxes_cite_a_source_and_are_checked_by_the_next_cell():
    """Where a source of the questions is wrong or loose, a box says so, and the cell after it executes the
    evidence (an assert)."""
    boxes = []
    for path in NOTEBOOKS:
        cells = load(path)["cells"]
        for i, cell in enumerate(cells):
            text = source(cell)
            if ":::{admonition} The source says … What is right …" not in text:
                continue
            boxes.append(path)
            assert re.search(r"\*\*The source says\*\* \{cite:p\}`(datapi2023transformer18|anon_\w+)`", text), path
            assert "**What is right:**" in text, path
            evidence = cells[i + 1]
            assert evidence["cell_type"] == "code" and re.search(r"\bassert", source(evidence)), path
    assert len(boxes) >= 4, f"{len(boxes)} boxes"


def test_exercises_have_stub_checker_and_solution(notebook):
    _, nb = notebook
    cells = nb["cells"]
    labels = []
    for i, cell in enumerate(cells):
        text = source(cell)
        start = re.search(r"```\{exercise-start\}[^\n]*\n:label: (\S+)", text)
        if not start:
            continue
        label = start.group(1)
        labels.append(label)
        assert re.search(r"\{exercise-start\} ★{1,3} · \d+ min · ", text), f"{label}: mark difficulty and time"
        stub = next(c for c in cells[i + 1:] if c["cell_type"] == "code")
        checker = re.search(r"^(check_\w+)\(", source(stub), re.M)
        assert checker and "raise NotImplementedError" in source(stub), f"{label}: stub calls a checker"
        j = next(k for k, c in enumerate(cells) if f"{{solution-start}} {label}" in source(c))
        assert ":class: dropdown" in source(cells[j])
        solution = next(c for c in cells[j + 1:] if c["cell_type"] == "code")
        assert re.search(rf"^{checker.group(1)}\(", source(solution), re.M), f"{label}: solution calls the checker"
    assert len(labels) >= 2, "every chapter has at least two exercises"


def test_package_dependencies_have_lower_bounds_only():
    """Installing the package in Colab must never re-resolve (downgrade or upgrade) torch."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + sum(project.get("optional-dependencies", {}).values(), [])
    for requirement in requirements:
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+>=[0-9][0-9.]*", requirement), f"{requirement!r}: use a lower bound only"
    assert any(r.startswith("torch>=") for r in project["dependencies"])


def test_requirements_pin_the_cpu_torch():
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    assert "torch==2.13.0" in lines and "-e ." in lines
