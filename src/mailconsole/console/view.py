"""What every pane draws from: the newest snapshot plus what only the console knows.

Panes never read the store themselves. The app builds one `View` per refresh
(and right away when the operator acts) and hands it to every `LiveWidget` on
every open screen, so a stop pressed in a dialog shows everywhere at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.widget import Widget

from .live import Snapshot
from .rates import RateHistory
from .stopping import StopProgress


@dataclass(frozen=True)
class View:
    snapshot: Snapshot | None
    rates: RateHistory
    now: float
    # True from the stop's commit until a read shows it: the screen must say
    # STOPPED within a frame of the commit, not after the next read.
    stop_pending: bool = False
    # Messages in flight when the stop was pressed, for the drain line "37 → 0".
    drain_from: int | None = None
    read_only: bool = False
    engine_inside: bool = False
    # A stop the operator asked for that the store has not saved yet (busy, failing).
    stop_progress: StopProgress | None = None

    @property
    def stopped(self) -> bool:
        """Only a saved stop: the screen never claims one that is not."""
        return self.stop_pending or (self.snapshot is not None and self.snapshot.stopped)

    @property
    def no_engine(self) -> bool:
        """Running, but no live engine: nothing is being sent, and the headline must say so."""
        return (not self.stopped and self.snapshot is not None
                and not self.snapshot.overview.live_engines)

    @property
    def stop_requested(self) -> StopProgress | None:
        """The stop asked for and not saved yet, if any: shown instead of RUNNING."""
        return None if self.stopped else self.stop_progress


class LiveWidget(Widget):
    """A widget redrawn from each new View.

    Used as a second base class, so the app finds these with isinstance (walk_children),
    not with a CSS type query, which follows only the first base.
    """

    def show(self, view: View) -> None:  # pragma: no cover - interface
        raise NotImplementedError
