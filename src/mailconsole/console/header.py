"""The top of every screen: the state banner, and which store, account and host it is about.

People act on the wrong store when nothing on screen says which one it is (a
mistyped --db once showed an empty store as RUNNING while the real one kept
sending). So every screen and dialog carries this header, and the context line
shortens the store's path to fit rather than drop it.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from urllib.parse import urlsplit

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from . import format as fmt
from .auto_pause_banner import AutoPauseBanner
from .banner import StateBanner
from .view import LiveWidget, View

ELLIPSIS = "…"


def shorter_urls(where: str) -> list[str]:
    """A server's URL (password already hidden) and ever shorter forms that keep host and database.

    postgresql+psycopg://ops:***@db-1.internal:5433/mail?sslmode=require,
    then without the query, without the driver and user, and at last
    db-1.internal:5433/mail: which server and which database are what tell two
    stores apart, the rest is how to reach them.
    """
    try:
        parts = urlsplit(where)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return [where]
    if not host:
        return [where]
    scheme = parts.scheme.partition("+")[0]
    server = f"{host}:{port}" if port else host
    forms = [where, where.partition("?")[0], f"{scheme}://{server}{parts.path}", f"{server}{parts.path}"]
    return list(dict.fromkeys(forms))  # in order, without repeats


def shorter_paths(where: str) -> list[str]:
    """`where` and ever shorter forms that keep the file name: /a/b/c.db, …/b/c.db, …/c.db."""
    if "://" in where:
        return shorter_urls(where)
    parts = PurePosixPath(where).parts
    forms = [where]
    for keep in range(len(parts) - 2, 0, -1):
        forms.append(ELLIPSIS + "/" + "/".join(parts[-keep:]))
    return forms


# The account name stands out from the rest of the line: a platform runs many
# accounts, and the stop key acts on this one.
ACCOUNT_STYLE = "bold reverse"


def context_line(where: str, account: str, host: str, width: int) -> Text:
    """"store … · account … · host …", as much of the path as `width` allows.

    Labels go before the file name does: a compact "…/name.db · default @ host"
    still says all three. What cannot fit at all is cut with an ellipsis. The
    account name is styled (ACCOUNT_STYLE), the words stay the same.
    """
    account, host = fmt.visible(account), fmt.visible(host)
    paths = [fmt.visible(p) for p in shorter_paths(where)]
    candidates = [(f"store {p} · account ", f" · host {host}") for p in paths]
    candidates += [(f"{p} · ", f" @ {host}") for p in paths]
    for before, after in candidates:
        if len(before) + len(account) + len(after) <= width:
            break
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(before)
    text.append(account, style=ACCOUNT_STYLE)
    text.append(after)
    text.truncate(max(width, 1), overflow="ellipsis")
    return text


class ContextLine(Static, LiveWidget):
    """Which store, account and host this console acts on; redrawn when the account changes."""

    _shown: str | None = None

    def show(self, view: View) -> None:
        # render() reads the app's account: a switch shows in the same frame as its data.
        account = getattr(self.app, "account", None)
        if account != self._shown:
            self._shown = account
            self.refresh()

    def render(self) -> Text:
        app = self.app
        where = getattr(app, "store_label", "?")
        account = getattr(app, "account", "?")
        host = getattr(app, "host", "?")
        return context_line(where, account, host, self.content_region.width or self.size.width)


class ConsoleHeader(Vertical):
    """The state banner over the context line; composed by the app and by every dialog."""

    def compose(self) -> ComposeResult:
        yield StateBanner(id="banner")
        yield AutoPauseBanner(classes="auto-pause-banner")
        yield ContextLine(id="context")

    def on_mount(self) -> None:
        # A dialog opened between two reads shows the state at once, not at the next read.
        view = getattr(self.app, "view", None)
        if callable(view) and getattr(self.app, "is_running", False):
            self.query_one(StateBanner).show(view())
            self.query_one(AutoPauseBanner).show(view())
