"""The command palette (ctrl+p) offers every action in keys.ACTIONS.

In the order keys.ACTIONS lists them, which puts the incident's actions first
(STOP ALL, Resume, Delete, Pause, Edit, Requeue…), ahead of Textual's own
commands; and an action on a mailing names the one it would act on, so that
the palette never acts on a row the operator did not look at.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

from textual.command import Hit, Hits, Provider

from . import format as fmt
from .keys import ACTIONS, Action

NOTHING_SELECTED = "(select a mailing first)"


def target(app: object) -> str:
    """The selected mailing as the palette names it: "mailing 7 'Black Friday'"."""
    selected = app.mailing_in_view()  # type: ignore[attr-defined]
    snapshot = getattr(app, "snapshot", None)
    m = snapshot.mailing(selected) if snapshot is not None and selected is not None else None
    if m is None:
        return NOTHING_SELECTED
    return f"mailing {m.id} '{fmt.visible(m.name)}'"


def title(action: Action, mailing: str) -> str:
    if not action.on_mailing:
        return f"{action.title}  ({action.shown})"
    return f"{action.title} — {mailing}  ({action.shown})"


class ConsoleCommands(Provider):
    def _commands(self) -> Iterator[tuple[str, str, Callable[[], object]]]:
        mailing = target(self.app)
        for a in ACTIONS:
            if a.palette:
                yield title(a, mailing), a.help, partial(self.app.run_action, a.action)

    async def discover(self) -> Hits:
        # Hits, not DiscoveryHits: the palette orders by score and gives every DiscoveryHit 0,
        # so Textual's own commands (Keys, Maximize, Quit, ...) would come first. A score
        # falling with the position keeps the order of keys.ACTIONS, ahead of them.
        commands = list(self._commands())
        for i, (name, help_text, run) in enumerate(commands):
            yield Hit(1.0 - i / (len(commands) + 1), name, run, text=name, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, run in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), run, help=help_text)
