"""transformer18: the companion package of "The Transformer in 18 Questions".

Every component of the Transformer of "Attention Is All You Need" (Vaswani et al., 2017), written once
in the notebook of the chapter that teaches it and exported here. Support modules (``notebook``,
``viz``, ``widgets``, ``checks``) are written by hand.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("transformer18")  # the one version, written in pyproject.toml
except PackageNotFoundError:  # pragma: no cover - imported from a source tree that was never installed
    __version__ = "0+unknown"
