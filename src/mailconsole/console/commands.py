"""The command palette (ctrl+p) offers every action in keys.ACTIONS."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from .keys import ACTIONS


class ConsoleCommands(Provider):
    def _commands(self):  # type: ignore[no-untyped-def]
        for a in ACTIONS:
            if a.palette:
                yield f"{a.title}  ({a.shown})", a.help, partial(self.app.run_action, a.action)

    async def discover(self) -> Hits:
        for name, help_text, run in self._commands():
            yield DiscoveryHit(name, run, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, run in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), run, help=help_text)
