"""Every operator action, its keys and its words, declared once.

The app's bindings, the help screen and the command palette are all built from
this table, so a key shown in help is always the key that works.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding

STOP_KEY = "f2"
STOP_KEY_BARE = "exclamation_mark"  # "!" wherever no text is being typed


@dataclass(frozen=True)
class Action:
    action: str
    keys: str  # Textual key names, comma separated
    shown: str  # how help and the palette print the keys
    title: str
    help: str
    footer: str | None = None  # a short label when the key is shown in the footer
    priority: bool = False
    palette: bool = True
    on_mailing: bool = False  # acts on the selected mailing: the palette names it
    compact: bool = False  # kept in the footer of a small terminal (the rest stay in help and palette)


ACTIONS: tuple[Action, ...] = (
    Action("emergency_stop", STOP_KEY, "F2 or !", "STOP ALL",
           "Stop every mailing of the account now. Never asks; pressing it again never resumes.",
           footer="STOP ALL", priority=True, compact=True),
    Action("resume", "R", "R", "Resume…",
           "Resume the account after a stop; asks first and shows what will be sent and suspended."),
    Action("delete_mailing", "d,delete", "d / Del", "Delete mailing…",
           "Delete the selected mailing: its unsent messages are dropped (asks first).", footer="Delete",
           on_mailing=True),
    Action("toggle_pause", "p", "p", "Pause / unpause mailing", "Pause or unpause the selected mailing.",
           footer="Pause", on_mailing=True),
    Action("edit_template", "e", "e", "Edit template",
           "Edit the selected mailing's subject, text body and HTML body.",
           footer="Edit", on_mailing=True),
    Action("open_detail", "enter", "enter", "Mailing details",
           "Open the selected mailing: sender, schedule, counters, every revision, the last errors; "
           "from there diff revisions, preview, test-send and export who got a revision (esc goes back).",
           on_mailing=True),
    Action("requeue", "u", "u", "Requeue suspended",
           "Put the selected mailing's suspended messages back in the queue.", on_mailing=True),
    Action("requeue_failed", "f", "f", "Requeue failed…",
           "Put the selected mailing's failed messages back in the queue, after correcting the template "
           "(asks first, with the count).", on_mailing=True),
    Action("reschedule", "t", "t", "Change time…", "Move the selected planned mailing to another time.",
           on_mailing=True),
    Action("copy_mailing_id", "c", "c", "Copy mailing id",
           "Copy the selected mailing's id to the clipboard, over SSH too (OSC 52: the terminal must allow it).",
           on_mailing=True),
    Action("acknowledge_automatic", "k", "k", "Acknowledge automatic pause",
           "Take an automatic pause or stop off the banner (audited); it stays paused.", footer="Ack"),
    Action("edit_policy", "P", "P", "Edit policy…", "Automatic pause thresholds, bounces (asks first)."),
    Action("toggle_planned", "a", "a", "Show planned also", "Add future mailings to Sent Analytics."),
    Action("filter", "slash", "/", "Filter mailings", "Filter Sent Analytics by name, sender or status.",
           footer="Filter"),
    Action("cycle_sort", "s", "s", "Sort by next column",
           "Sort the table shown by its next column (▲ in the header); after the last, the natural order."),
    Action("reverse_sort", "S", "S", "Reverse the sort", "Flip the sort direction of the table shown (▼)."),
    Action("toggle_wide", "w", "w", "Full names", "Widen the name columns to the full names, or back."),
    Action("show_tab('settings')", "1", "1", "Tab: Settings/Other", "The emergency control and engines."),
    Action("show_tab('analytics')", "2", "2", "Tab: Sent Analytics", "All mailings with live counts."),
    Action("show_tab('planned')", "3", "3", "Tab: Planned", "Mailings scheduled for later."),
    Action("show_tab('audit')", "4", "4", "Tab: Audit", "Every operator action, newest first."),
    Action("pick_account", "ctrl+a", "ctrl+a", "Switch account…",
           "Every account with its state, rate and queue; enter switches to one. The header always names "
           "the account shown, and every key acts on that one only."),
    Action("command_line", "colon", ":", "Command line",
           "Type a command: `account` opens the account picker, `account NAME` switches to NAME."),
    Action("help", "question_mark", "?", "Help", "List every key.", footer="Help", compact=True),
    Action("command_palette", "ctrl+p", "ctrl+p", "Commands", "Search and run any action.", palette=False),
    Action("back", "escape", "esc", "Back", "Close a dialog or the editor, clear the filter.", palette=False),
    Action("quit", "q", "q", "Quit",
           "Leave the console (also ctrl+q); an engine running inside it stops gracefully first. Asks first "
           "if that stops the sending: keep it going with `mailconsole serve`.", footer="Quit", compact=True),
)


def bindings() -> list[Binding]:
    """The app's bindings, from ACTIONS (the bare `!` stop key is added here too)."""
    out = [
        Binding(a.keys, a.action, a.footer or a.title, show=a.footer is not None, priority=a.priority)
        for a in ACTIONS
        if a.action != "command_palette"  # the app provides ctrl+p itself
    ]
    out.append(Binding(STOP_KEY_BARE, "emergency_stop_bare", "STOP ALL", show=False, priority=True))
    return out


# Keys that only exist inside one screen, listed in help so nothing is hidden.
SCREEN_KEYS: tuple[tuple[str, str], ...] = (
    ("ctrl+s", "Template editor: save a new revision (asks if a part is left unchanged)"),
    ("ctrl+t", "Template editor: switch between the text body and the HTML body"),
    ("ctrl+r", "Template editor: preview the unsaved edit for a recipient (nothing is saved)"),
    ("esc", "Template editor: back; asks first if there are unsaved changes"),
    ("esc / o / t", "Template saved meanwhile: keep editing / save yours over it / take theirs"),
    ("y / n", "Confirmation dialogs: confirm / cancel"),
    ("enter", "Filter: keep the filter and go back to the table"),
    ("m / c", "Mailing details: mark a revision / compare it with the one under the cursor (else with the one before)"),
    ("v", "Mailing details: preview the message for a recipient (a types an address, n the next in the queue)"),
    ("s", "Mailing details or preview: test send to an address you type (asks first; audited)"),
    ("x", "Mailing details: export who got the revision under the cursor to CSV (the path goes to the clipboard)"),
    ("enter / esc", "Account picker: switch to the highlighted account / keep the one shown"),
    ("click a header", "Tables: sort by that column; again to reverse"),
)
