"""The shared back-off while the mail server cannot be used (engine/outage.py)."""

from __future__ import annotations

import trio

from mailconsole.engine.outage import Outage


async def test_senders_failing_together_lengthen_the_back_off_once(autojump_clock):  # type: ignore[no-untyped-def]
    outage = Outage(first=1.0, maximum=3.0)
    waits = []
    for _ in range(4):  # four rounds of eight senders trying at the same moment
        for _ in range(8):
            outage.failed("cannot connect")
        waits.append(outage.retry_at - trio.current_time())
        await trio.sleep_until(outage.retry_at)
    assert outage.failures == 32 and outage.down
    # 1, 2, then capped at 3 s, each with +-20 % jitter: not 2**31 s.
    for wait, base in zip(waits, (1.0, 2.0, 3.0, 3.0)):
        assert 0.8 * base <= wait <= 1.2 * base, waits
    assert "tried 32x" in (outage.note() or "")
    outage.recovered()
    assert not outage.down and outage.note() is None
    outage.failed("cannot connect")
    assert outage.retry_at - trio.current_time() <= 1.2  # a new outage starts short again
