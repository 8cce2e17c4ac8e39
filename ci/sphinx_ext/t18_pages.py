"""Sphinx fixes for the published pages, loaded through ``_config.yml`` (``sphinx.local_extensions``).

Jupyter Book 1 registers sphinx-thebe's inline configuration script twice, so every page declared
``const THEBE_JS_URL`` twice and threw "Identifier 'THEBE_JS_URL' has already been declared". This
drops repeated script entries (same file, same inline body) from each page; sphinx-togglebutton's
inline settings were repeated the same way.

The theme's Colab launch button opens ``book/<page>.ipynb`` on the repository's branch; Colab renders
that notebook's MyST as raw text and runs its solutions. ``colab_button_to_reader_copy`` points the
button at the reader copy instead, ``colab/<page>.ipynb`` at the release tag ``v<version>`` (the
version of ``pyproject.toml``), the same URL as the notebook's own *Open in Colab* badge.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def _key(script) -> tuple:
    # The same inline script arrives once with filename None and once with "": treat both as "".
    filename = getattr(script, "filename", script) or ""
    attributes = getattr(script, "attributes", {}) or {}
    return str(filename), tuple(sorted((k, str(v)) for k, v in attributes.items()))


def drop_repeated_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        key = _key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def release_tag(srcdir: str | Path) -> str:
    """``v`` + the version written in ``pyproject.toml``: the tag a release creates."""
    project = tomllib.loads((Path(srcdir) / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return f"v{project['version']}"


def reader_copy_url(url: str, pagename: str, tag: str) -> str:
    """The theme's Colab URL of ``book/<page>.ipynb`` on a branch → the reader copy at ``tag``."""
    match = re.match(r"(https://colab\.research\.google\.com/github/[^/]+/[^/]+)/blob/[^/]+/", url)
    if not match or not pagename.startswith("book/"):
        return url
    return f"{match.group(1)}/blob/{tag}/colab/{pagename.removeprefix('book/')}.ipynb"


def colab_button_to_reader_copy(app, pagename, templatename, context, doctree) -> None:
    tag = release_tag(app.srcdir)
    for group in context.get("header_buttons", []):
        if group.get("label") != "launch-buttons":
            continue
        for button in group.get("buttons", []):
            if button.get("text") == "Colab":
                button["url"] = reader_copy_url(button["url"], pagename, tag)


def setup(app):
    app.connect("html-page-context", drop_repeated_scripts, priority=900)
    app.connect("html-page-context", colab_button_to_reader_copy, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
