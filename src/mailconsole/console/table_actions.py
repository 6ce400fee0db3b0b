"""How the operator looks at the tables: focus after a tab switch, sort, full names, copy.

A mixin of the app, like mailing_actions: these change what is shown, never the
store, so they work in a read-only console too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .tables import LiveTable

if TYPE_CHECKING:
    from textual.widgets import TabbedContent

MAILING_TABS = ("analytics", "planned")  # where a row is a mailing an action can act on
COPY_HINT = "needs a terminal that allows OSC 52, e.g. tmux with set-clipboard on"


class TableActions:
    # Provided by the app.
    tabs: TabbedContent
    selected_mailing: Any
    notify: Any
    copy_to_clipboard: Any
    screen: Any
    screen_stack: Any
    focused: Any

    def mailing_in_view(self) -> int | None:
        """The mailing an action on "the selected mailing" would act on now, if any."""
        return self.selected_mailing() if self.tabs.active in MAILING_TABS else None

    def shown_table(self) -> LiveTable | None:
        """The table of the tab shown (the focused one if the tab has several)."""
        pane = self.tabs.active_pane
        if pane is None:
            return None
        if isinstance(self.focused, LiveTable) and pane in self.focused.ancestors:
            return self.focused
        return next(iter(pane.query(LiveTable)), None)

    def focus_shown_table(self) -> None:
        """After a tab switch the arrows must move the rows that actions act on.

        Done at once, not via focus() (queued behind keys already typed): "2", "down"
        typed quickly moves the new tab's cursor. Focus already inside the tab (the
        filter being typed into) stays where it is.
        """
        table = self.shown_table()
        if table is None or table.screen is not self.screen:
            return  # a dialog is on top: it keeps the focus
        focused = self.focused
        if focused is not None and self.tabs.active_pane in focused.ancestors:
            return
        self.screen.set_focus(table)

    def action_cycle_sort(self) -> None:
        table = self.shown_table()
        if table is not None:
            table.cycle_sort()

    def action_reverse_sort(self) -> None:
        table = self.shown_table()
        if table is not None:
            table.reverse_sort()

    def action_toggle_wide(self) -> None:
        tables = list(self.screen_stack[0].query(LiveTable))
        wide = not any(t.wide for t in tables)
        for table in tables:
            table.set_wide(wide)

    def action_copy_mailing_id(self) -> None:
        mid = self.mailing_in_view()
        if mid is None:
            self.notify("Select a mailing first (tab 2 or 3), then press c.")
            return
        self.copy_to_clipboard(str(mid))
        self.notify(f"Copied mailing id {mid} to the clipboard ({COPY_HINT}).")
