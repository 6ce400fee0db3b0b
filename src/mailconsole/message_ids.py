"""The Message-ID the engine gives each message, in one place.

The engine writes it into every message it sends; the recipients export
(store/recipients.py) prints it so an operator can find those very messages in a
relay's log or a recipient's mailbox. Both build it here, so the two cannot
drift apart. Neutral: imports nothing from the package.

`<m{message row id}.{mailing id}.{store id}@{domain}>`: stable for one message
across its retries (a downstream duplicate of ours stays recognisable), unique
across stores through the store's random id (store/identity.py). A store without
an id (one made before ids existed, not yet migrated) leaves that part out.
"""

from __future__ import annotations

# The domain when the sender's cannot be used (none, or not IDNA-encodable).
FALLBACK_DOMAIN = "mailconsole.invalid"


def domain_of(address: str) -> str:
    """The Message-ID domain the engine uses by default: the (envelope) sender's, in ASCII (IDNA)."""
    domain = address.rpartition("@")[2].strip().rstrip(">")
    try:
        return domain.encode("idna").decode("ascii") if domain else FALLBACK_DOMAIN
    except UnicodeError:
        return FALLBACK_DOMAIN


def tail(mailing_id: int, store_id: str, domain: str) -> str:
    """Everything after the message's row id: the same for every message of a mailing.

    Kept apart so the engine builds it once per revision and only prefixes the id
    per message.
    """
    return f".{mailing_id}.{store_id}@{domain}>" if store_id else f".{mailing_id}@{domain}>"


def message_id(message_row_id: int, mailing_id: int, store_id: str, domain: str) -> str:
    """The Message-ID header value (with its angle brackets) of one message."""
    return with_tail(message_row_id, tail(mailing_id, store_id, domain))


def with_tail(message_row_id: int, id_tail: str) -> str:
    """The Message-ID of a message from its row id and its mailing's `tail()`."""
    return f"<m{message_row_id}{id_tail}"


__all__ = ["FALLBACK_DOMAIN", "domain_of", "tail", "message_id", "with_tail"]
