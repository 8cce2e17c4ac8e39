#!/usr/bin/env python3
"""Lay out the JavaScript the published book serves itself: the ipywidgets HTML manager with
RequireJS (``_web_assets/widgets/``) and MathJax 3 (``_web_assets/mathjax/``).

Readers' pages then render widgets (and switch pre-computed slider states) and math with no kernel
and no CDN. ``_config.yml`` lists ``_web_assets`` in ``html_static_path`` and points myst-nb's
``nb_ipywidgets_js`` and Sphinx's ``mathjax_path`` at these files. ``_web_assets`` is deliberately not
``_static``: Jupyter Book would inject every script there into every page.

The files come from the npm registry as the packages' own tarballs (``npm pack``), pinned and checked
against the registry's sha512 integrity; ``LICENSES.md`` beside them names each licence. Run by
``ci/build.sh``; does nothing when the pinned files are already in place.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "_web_assets"

FONTS = (".woff2", ".woff", ".ttf", ".eot", ".svg")


def _html_manager(name: str) -> str | None:
    if name in ("package/dist/embed-amd.js", "package/package.json", "package/dist/embed.js.LICENSE.txt"):
        return "widgets/" + {"package/package.json": "html-manager.package.json",
                             "package/dist/embed.js.LICENSE.txt": "html-manager.THIRD-PARTY-LICENSES.txt"
                             }.get(name, Path(name).name)
    if name.startswith("package/dist/") and name.endswith(FONTS):  # Font Awesome, bundled by the manager
        return "widgets/" + Path(name).name
    return None


def _requirejs(name: str) -> str | None:
    return {"package/require.js": "widgets/require.js",
            "package/package.json": "widgets/requirejs.package.json"}.get(name)


def _mathjax(name: str) -> str | None:
    # The combined TeX+MathML → CommonHTML bundle, plus what it loads on demand (extensions, fonts,
    # accessibility and the menu); the other combined bundles are not needed.
    if name == "package/LICENSE":
        return "mathjax/LICENSE"
    if name.startswith("package/es5/"):
        rest = name.removeprefix("package/es5/")
        if rest == "tex-mml-chtml.js" or rest.split("/")[0] in ("input", "output", "a11y", "ui", "sre", "adaptors"):
            return "mathjax/" + rest
    return None


PACKAGES = {  # name@version -> (the registry's integrity, which files to keep and where)
    "@jupyter-widgets/html-manager@1.0.15": (
        "sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA==",
        _html_manager),
    "requirejs@2.3.8": (
        "sha512-7/cTSLOdYkNBNJcDMWf+luFvMriVm7eYxp4BcFCsAX0wF421Vyce5SXP17c+Jd5otXKGNehIonFlyQXSowL6Mw==",
        _requirejs),
    "mathjax@3.2.2": (
        "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==",
        _mathjax),
}

LICENSES = """# Licences of the files served from _static/widgets and _static/mathjax

- `widgets/embed-amd.js` and the font files beside it: @jupyter-widgets/html-manager 1.0.15, BSD-3-Clause,
  (c) Project Jupyter Contributors (`widgets/html-manager.package.json`). The libraries it bundles, among
  them Font Awesome Free (fonts under the SIL OFL 1.1), are listed in
  `widgets/html-manager.THIRD-PARTY-LICENSES.txt`.
- `widgets/require.js`: RequireJS 2.3.8, MIT, (c) jQuery Foundation and other contributors (its header and
  `widgets/requirejs.package.json`).
- `mathjax/`: MathJax 3.2.2, Apache-2.0, (c) The MathJax Consortium (`mathjax/LICENSE`).
"""


def integrity(path: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


def install(out: Path = OUT) -> None:
    stamp = out / ".installed"
    wanted = "\n".join(PACKAGES)
    if stamp.exists() and stamp.read_text() == wanted:
        shutil.copy2(ROOT / "ci" / "web" / "widgets-paths.js", out / "widgets" / "widgets-paths.js")
        return
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("ci/web_assets.py: npm is needed to fetch the book's JavaScript (install Node.js)")
    if out.exists():
        shutil.rmtree(out)
    with tempfile.TemporaryDirectory() as tmp:
        for spec, (expected, keep) in PACKAGES.items():
            listing = subprocess.run([npm, "pack", "--silent", "--pack-destination", tmp, spec], check=True,
                                     capture_output=True, text=True).stdout
            tarball = Path(tmp) / listing.strip().splitlines()[-1]
            if integrity(tarball) != expected:
                sys.exit(f"ci/web_assets.py: {spec} does not match its pinned integrity")
            with tarfile.open(tarball) as archive:
                for member in archive.getmembers():
                    target = keep(member.name) if member.isfile() else None
                    if target:
                        (out / target).parent.mkdir(parents=True, exist_ok=True)
                        (out / target).write_bytes(archive.extractfile(member).read())
    for required in ("widgets/embed-amd.js", "widgets/require.js", "mathjax/tex-mml-chtml.js"):
        if not (out / required).is_file():
            sys.exit(f"ci/web_assets.py: {required} is missing from its package")
    shutil.copy2(ROOT / "ci" / "web" / "widgets-paths.js", out / "widgets" / "widgets-paths.js")
    (out / "LICENSES.md").write_text(LICENSES)
    stamp.write_text(wanted)
    print(f"web assets installed in {out.relative_to(ROOT)}/")


if __name__ == "__main__":
    install()
