"""Flow control at the relay: keep at most N of our messages waiting there.

Whatever waits in a relay's queue when a stop comes is what the relay agent has
to hold, at Postfix's pace (postsuper: ~0.3 ms an id, while the relay delivers
meanwhile). A bounded backlog bounds that work, and so what can still go out
after a stop. The count is the store's (store/relays.at_relay: messages 'queued'
or 'held' at the relay), which only a relay agent brings down as the relay
delivers; without a live agent for the relay the count never falls, so the
limit is not applied (and the heartbeat note says so) rather than stalling.
"""

from __future__ import annotations

import time

import trio

from ..store import Store, StoreError
from ..store import relays

AGENT_CHECK_EVERY = 1.0


class RelayBacklog:
    def __init__(self, store: Store, relay: str, limit: int) -> None:
        self.store = store
        self.relay = relay
        self.limit = limit
        self.note: str | None = None
        self._agent_at = -1e9
        self._agent = False

    async def room(self, in_flight: int) -> int | None:
        """How many more messages may be claimed now (None: not limited).

        `in_flight`: the engine's messages claimed and not yet recorded, taken
        *before* this call: one recorded meanwhile is then in the count or in
        `in_flight`, never in neither. Counted afresh each time (a walk of the
        partial index of what relays hold, ~1 ms for thousands), once per claim.
        """
        now = time.monotonic()
        try:
            if now - self._agent_at >= AGENT_CHECK_EVERY:
                self._agent_at = now
                self._agent = await trio.to_thread.run_sync(self._agent_live)
                self.note = None if self._agent else (
                    f"relay backlog not limited: no relay agent reports for {self.relay}")
            if not self._agent:
                return None
            waiting = await trio.to_thread.run_sync(relays.at_relay, self.store, self.relay)
        except StoreError:
            return None  # the claim will meet the same trouble and report it
        return max(0, self.limit - waiting - in_flight)

    def _agent_live(self) -> bool:
        return any(r.alive and r.relay in (None, self.relay) for r in relays.list_relays(self.store))
