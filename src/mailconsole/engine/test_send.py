"""A test send: one recipient's message, as rendered for them, delivered to an address the operator types.

It goes through the transport of the engine configuration (`transports.make_transport`:
the same SMTP client, settings and TLS the engine uses, on a connection of its
own), so what arrives is what the recipient would get, To header and all; only
the envelope recipient differs. It reads the store and writes one audit entry,
nothing else: the recipient's message keeps its state, attempts and sent time,
and no counter moves.

Not held by the stop: a test send is how an operator checks a correction while
the account is stopped, and it never goes to a recipient of the mailing unless
the operator types that address.
"""

from __future__ import annotations

from dataclasses import dataclass

import trio

from ..store import Actor, Store, StoreError
from ..store.mailing_detail import TEST_SEND, record_test_send
from .addresses import address_problem
from .config import ConfigError, EngineConfig
from .message import Built
from .preview import Rendered, render_message
from .transports import NullTransport, Transport, make_transport

@dataclass(frozen=True)
class TestSendResult:
    """What happened. `reply` is the server's answer to the final dot when `sent`, else why not."""

    __test__ = False  # not a pytest test class, whatever its name

    sent: bool
    reply: str
    transport: str  # the transport's name, password masked
    rendered: Rendered | None = None
    audited: bool = False


async def _always_open() -> object:
    """The final-dot gate of a test send: always open (see the module's docstring)."""
    return lambda: None


async def deliver(transport: Transport, message: Built) -> str:
    """Send one message on a fresh session of `transport`; the server's reply to its dot."""
    session = await transport.open()
    try:
        reply = await session.send(message, _always_open)  # type: ignore[arg-type]
    except BaseException:
        await session.abort()
        raise
    await session.close()
    return reply


def send_test(
    store: Store,
    config: EngineConfig,
    actor: Actor,
    mailing_id: int,
    to: str,
    *,
    recipient: str | None = None,
    account: str = "default",
    transport: Transport | None = None,
) -> TestSendResult:
    """Blocking (store, network): call from a worker thread, not from inside trio.

    `recipient` is the address the message is rendered for (None: the next in the
    queue). Every outcome that reached the transport is audited (action "test-send").
    StoreError is raised only for the reads (no such mailing); all else is in the result.
    """
    to = to.strip()
    problem = address_problem("test", to)
    try:
        transport = transport or make_transport(config)
    except ConfigError as exc:
        return TestSendResult(False, f"transport not usable: {exc}", config.masked_transport)
    if problem is not None:
        return TestSendResult(False, problem, transport.name)
    rendered = render_message(store, config, mailing_id, address=recipient, account=account)
    if rendered.built is None:
        return TestSendResult(False, f"not sent: {rendered.error}", transport.name, rendered)
    built = Built(rendered.built.envelope_from, to, rendered.built.data)
    if isinstance(transport, NullTransport):
        sent, reply = False, "the transport is null: (messages are discarded): nothing was sent"
    else:
        try:
            sent, reply = True, trio.run(deliver, transport, built)
        except Exception as exc:  # refused, unreachable, TLS: reported to the operator, never raised at the UI
            sent, reply = False, f"not sent: {exc.__class__.__name__}: {exc}"
    assert rendered.recipient is not None
    try:
        record_test_send(store, actor, account, mailing_id, revision=rendered.revision,
                         recipient=rendered.recipient.email, to=to, reply=reply)
    except StoreError as exc:
        return TestSendResult(sent, f"{reply} (the audit entry was not saved: {exc})", transport.name, rendered)
    return TestSendResult(sent, reply, transport.name, rendered, audited=True)


__all__ = ["TEST_SEND", "TestSendResult", "deliver", "send_test"]
