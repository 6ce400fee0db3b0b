"""What the agent needs of a relay: a few operations by queue id.

A relay implementation makes each call do all of it or say why not (RelayError);
the agent records in the store only what a call confirmed, so nothing is marked
held, released or deleted that is not.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol


class RelayError(Exception):
    """The relay could not do all it was asked (its tools missing, not permitted, the relay down).

    `done`: the ids it did act on before it failed (they are recorded; the rest is retried).
    """

    def __init__(self, message: str, done: set[str] | None = None) -> None:
        super().__init__(message)
        self.done = done or set()


@dataclass(frozen=True)
class Queued:
    queue_id: str
    queue: str  # where it waits: "incoming", "active", "deferred", "hold" (Postfix's names)
    arrived_at: float


@dataclass(frozen=True)
class Outcome:
    """The relay's last word on a message, from its log."""

    queue_id: str
    status: str  # "delivered", "bounced" (final) or "deferred" (it will try again)
    reply: str  # the remote server's reply, or the relay's reason
    at: float


class RelayQueue(Protocol):
    name: str  # for display: "postfix (/etc/postfix)"

    def list(self) -> list[Queued]:
        """Everything in the relay's queue now."""
        ...

    def hold(self, queue_ids: Iterable[str]) -> set[str]:
        """Put these on hold; returns those the relay put on hold (the others: gone, or already held)."""
        ...

    def release(self, queue_ids: Iterable[str]) -> set[str]:
        """Release these from hold; returns those released."""
        ...

    def delete(self, queue_ids: Iterable[str]) -> set[str]:
        """Remove these from the relay's queue; returns those removed."""
        ...

    def delivering(self, queue_ids: Iterable[str]) -> set[str]:
        """Of these held ids, those the relay is delivering right now (a hold does not stop a
        delivery under way); empty when it cannot tell. Asked right after a hold."""
        ...

    def locate(self, queue_ids: Iterable[str]) -> dict[str, str]:
        """The queue each of these ids waits in; absent: no longer at the relay. RelayError: cannot tell."""
        ...

    def outcomes(self) -> list[Outcome]:
        """Outcomes logged since the last call (never blocks: what is there now)."""
        ...

    def events(self) -> list[str]:
        """What happened at the relay since the last call that an operator should know (restart, log rotated)."""
        ...

    def down(self) -> str | None:
        """Why the relay is not running now, or None."""
        ...
