"""The layout of a small terminal (under 80x24): the stop, help and quit keys, and the counts that matter.

Textual has no media queries, so the app sets the class `-compact` on itself
when it is resized to a small size (`apply`): the CSS hides what can go, every
LiveTable leaves out its minor columns, and the footer keeps only the keys
marked `compact` in keys.ACTIONS (all the others stay in help and the palette).
"""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

from .keys import ACTIONS
from .tables import LiveTable

MIN_WIDTH, MIN_HEIGHT = 80, 24
CLASS = "-compact"
KEPT = frozenset(a.action for a in ACTIONS if a.compact)


def is_compact(width: int, height: int) -> bool:
    return width < MIN_WIDTH or height < MIN_HEIGHT


class CompactFooter(Footer):
    """The footer; on a small terminal only the keys that must never scroll out of sight."""

    def compose(self) -> ComposeResult:
        compact = self.app.has_class(CLASS)
        for widget in super().compose():
            if compact and isinstance(widget, FooterKey) and widget.action not in KEPT \
                    and not widget.has_class("-command-palette"):
                continue
            yield widget


def apply(app: App[object], width: int, height: int) -> None:
    """Switch the layout for a terminal of width x height, if it changes."""
    compact = is_compact(width, height)
    if app.has_class(CLASS) == compact:
        return
    app.set_class(compact, CLASS)
    main = app.screen_stack[0]
    for table in main.query(LiveTable):
        table.set_compact(compact)
    for footer in main.query(CompactFooter):
        footer.refresh(recompose=True)
