"""When the mail server cannot be reached: one back-off for the whole engine.

A refused connection, a failed TLS handshake, a 4xx/5xx greeting or a refused
AUTH say nothing about the recipient. Counting them as the message's attempts
would turn a ten-minute relay outage into a mailing marked failed from end to
end; like Postfix, which defers mail for a dead destination instead of bouncing
it, the engine keeps such messages and tries the server again, less and less
often, until it answers (or an operator stops the mailing).
"""

from __future__ import annotations

import random

import trio

FIRST_DELAY = 0.5  # seconds before the first new try
MAX_DELAY = 30.0  # the longest wait between tries, however long the outage
CHECK_EVERY = 0.25  # a waiting sender looks this often whether it should give up (stop, shutdown)


class Outage:
    """Shared by every sender task of one engine: whether to try connecting now."""

    def __init__(self, first: float = FIRST_DELAY, maximum: float = MAX_DELAY) -> None:
        self._first = first
        self._max = maximum
        self.failures = 0  # consecutive failed connection attempts, over all senders
        self._rounds = 0  # back-offs so far: the senders that failed together count once
        self.retry_at = 0.0  # trio time before which nobody tries
        self.problem: str | None = None

    @property
    def down(self) -> bool:
        return self.failures > 0

    def failed(self, problem: str) -> None:
        """A connection attempt failed: the next may start at `retry_at`.

        Every sender waiting for the same moment tries then; only the first of them
        to fail lengthens the wait, so eight senders do not make it grow eight times.
        """
        self.failures += 1
        self.problem = problem
        now = trio.current_time()
        if now >= self.retry_at:
            self._rounds += 1
            delay = min(self._max, self._first * 2 ** (self._rounds - 1)) * random.uniform(0.8, 1.2)
            self.retry_at = now + delay

    def recovered(self) -> None:
        self.failures = 0
        self._rounds = 0
        self.retry_at = 0.0
        self.problem = None

    def note(self) -> str | None:
        """For the heartbeat: what is wrong and when the next try is."""
        if self.problem is None:
            return None
        wait = max(0.0, self.retry_at - trio.current_time())
        return f"{self.problem} (tried {self.failures}x; next try in {wait:.0f} s; messages are kept)"
