"""The layout of a small terminal (under 80x24): the stop, help and quit keys, and the counts that matter.

Textual has no media queries, so the app sets the class `-compact` on itself
when it is resized to a small size (`apply`): the CSS hides what can go, every
LiveTable leaves out its minor columns, and the footer keeps only the keys
marked `compact` in keys.ACTIONS (all the others stay in help and the palette).
"""

from __future__ import annotations

from typing import Any

from textual.app import App, ComposeResult
from textual.screen import Screen
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
    """The footer; on a small terminal only the keys that must never scroll out of sight.

    It is rebuilt only when the keys it shows change: Textual's Footer rebuilds on every
    focus change, and after a tab switch the focus moves to that tab's table, which
    would cost each tab key a footer's worth of new widgets.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._shown: tuple[object, ...] | None = None

    def bindings_changed(self, screen: Screen[Any]) -> None:
        shown = tuple(
            (binding.key, binding.action, binding.description, enabled)
            for _, binding, enabled, _ in screen.active_bindings.values()
            if binding.show
        )
        if self._bindings_ready and shown == self._shown and screen is self.screen:
            return
        if screen.app.app_focus:  # else Footer leaves itself as it is: nothing to remember
            self._shown = shown
        super().bindings_changed(screen)

    def compose(self) -> ComposeResult:
        # Textual's Footer binds each key's `compact` to its own (data_bind) and forgets
        # the watcher of a key it removed only when `compact` changes, which it hardly
        # ever does: every rebuild kept the old keys alive, with their styles and render
        # caches. Over a session that is a leak, and each of the console's collector
        # passes scanned all of it (6 ms growing past 100 ms within a minute of keys).
        # A rebuild removes the old keys before it composes: forcing the watchers to
        # run here drops them.
        if self.is_attached:
            self.mutate_reactive(Footer.compact)
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
