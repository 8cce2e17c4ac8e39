"""Sphinx fixes for the published pages, loaded through ``_config.yml`` (``sphinx.local_extensions``).

Jupyter Book 1 registers sphinx-thebe's inline configuration script twice, so every page declared
``const THEBE_JS_URL`` twice and threw "Identifier 'THEBE_JS_URL' has already been declared". This
drops repeated script entries (same file, same inline body) from each page; sphinx-togglebutton's
inline settings were repeated the same way.
"""

from __future__ import annotations


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


def setup(app):
    app.connect("html-page-context", drop_repeated_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
