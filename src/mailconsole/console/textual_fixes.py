"""Work-arounds for faults in Textual that a long console session runs into.

Applied once, on import of the console (`console/app.py`). Each one says what
it mends and is to be dropped when a Textual release mends it itself.
"""

from __future__ import annotations

import inspect
from functools import lru_cache

from textual._styles_cache import StylesCache
from textual.color import Color
from textual.style import Style

# Textual 8.2 (Textual issue #6665, open): `StylesCache.get_inner_outer` is an instance
# method under `lru_cache(1024)`, so the cache's keys hold up to 1,024 widgets'
# StylesCache objects, each with every line it ever cached (a Strip and its seven
# small caches per line), long after their widgets are gone. In the console, with
# tabs and dialogs drawn anew on each key, that was ~18,000 objects more every
# 40 s (docs/benchmarks.md), all scanned by each of its once-a-second collector
# passes. The result depends on the two colours alone: cached on those here.
_inner_outer = getattr(StylesCache.get_inner_outer, "__wrapped__", None)
# Only the method as 8.2 has it: a Textual that changed it has likely mended it.
_MENDABLE = _inner_outer is not None and list(inspect.signature(_inner_outer).parameters) == [
    "cls", "base_background", "background"]


@lru_cache(1024)
def _colours_only(base_background: Color, background: Color) -> tuple[Style, Style]:
    return _inner_outer(None, base_background, background)  # type: ignore[misc]  # it never reads `cls`


def _get_inner_outer(self: StylesCache, base_background: Color, background: Color) -> tuple[Style, Style]:
    return _colours_only(base_background, background)


def apply() -> None:
    """Install the work-arounds (idempotent)."""
    if _MENDABLE:
        StylesCache.get_inner_outer = _get_inner_outer  # type: ignore[method-assign]
