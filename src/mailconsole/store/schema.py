"""The store's tables, declared once with SQLAlchemy Core.

Core rather than the ORM: the engine claims and records thousands of messages a
second, and plain statements keep that path short and easy to reason about.
Times are UTC epoch seconds (floats): portable across SQLite and PostgreSQL and
cheap to compare in the claim statement.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    literal_column,
    text,
)
from sqlalchemy.sql.elements import ColumnElement

# Bump when the tables change, together with a new Alembic revision in
# store/migrations/versions/ whose id is revision_of(SCHEMA_VERSION): a store
# written by a newer program is refused, an older one is upgraded by
# `mailconsole migrate`. Version 2 added messages.fail_kind; version 3 the sender's
# display name, Reply-To, List-Id, the suppression list and the store id; version 4
# the recipients index (ix_messages_recipients); version 5 what the relay holds
# (messages.relay_*, the relays table); version 6 the partial message indexes.
SCHEMA_VERSION = 6


def revision_of(version: int) -> str:
    """The Alembic revision that brings a store to schema `version` ("0002" for 2)."""
    return f"{version:04d}"


metadata = MetaData()

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("stopped", Boolean, nullable=False, default=False),
    Column("stopped_at", Float),
    Column("stopped_by", String(200)),
    Column("stopped_from", String(200)),
    Column("stop_reason", Text),
    # Increases at every stop; engines acknowledge the generation they have honoured.
    Column("generation", Integer, nullable=False, default=0),
    Column("resumed_at", Float),
    Column("resumed_by", String(200)),
    # The List-Id (RFC 2919) of mailings that name none themselves. Columns added by
    # a migration come last, where ALTER TABLE ADD COLUMN puts them.
    Column("list_id", String(300)),
)

mailings = Table(
    "mailings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("name", String(500), nullable=False),
    Column("sender", String(500), nullable=False),
    Column("status", String(20), nullable=False),
    Column("scheduled_at", Float, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("deleted_at", Float),
    # JSON list of the CSV's merge-field names (all columns but `email`).
    Column("fields", Text, nullable=False, default="[]"),
    # Rows the recipients file holds; `recipients` catches up while preparing.
    Column("expected", Integer, nullable=False, default=0),
    # Counters maintained in the same transactions that move messages between states.
    Column("recipients", Integer, nullable=False, default=0),
    Column("queued", Integer, nullable=False, default=0),
    Column("claimed", Integer, nullable=False, default=0),
    Column("sent", Integer, nullable=False, default=0),
    Column("failed", Integer, nullable=False, default=0),
    Column("suspended", Integer, nullable=False, default=0),
    # Leases taken back from engines that died: each may have been delivered twice.
    Column("recovered", Integer, nullable=False, default=0),
    Column("list_unsubscribe", Text),
    # From here: schema 3. `sender` stays the bare address (the envelope sender);
    # the display name is apart, so nothing that reads `sender` has to parse it.
    Column("sender_name", String(300)),
    Column("reply_to", String(500)),
    Column("list_id", String(300)),
    # Messages taken out of the queue at claim time because their address was
    # suppressed meanwhile (state 'suppressed'): maintained like the others.
    Column("suppressed", Integer, nullable=False, server_default="0", default=0),
)
Index("ix_mailings_status", mailings.c.status, mailings.c.scheduled_at)

revisions = Table(
    "revisions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("mailing_id", Integer, ForeignKey("mailings.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("subject", Text, nullable=False),
    Column("text_body", Text, nullable=False),
    Column("html_body", Text),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("sent", Integer, nullable=False, default=0),
    UniqueConstraint("mailing_id", "number"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("mailing_id", Integer, ForeignKey("mailings.id"), nullable=False),
    Column("email", String(320), nullable=False),
    Column("fields", Text, nullable=False, default="{}"),
    Column("state", String(10), nullable=False),
    Column("due_at", Float, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("lease_owner", String(64)),
    Column("lease_expires", Float),
    Column("last_error", Text),
    Column("sent_at", Float),
    Column("revision_id", Integer),
    Column("recovered", Integer, nullable=False, default=0),
    # Why a failed message failed: "template" (it could not be rendered, or was over
    # its render budget), "address", or "smtp" (refused by the server, or out of
    # attempts). A template failure can be put back in the queue after a correction.
    # Last, where ALTER TABLE ADD COLUMN put it in upgraded stores: new and upgraded
    # stores have the same columns in the same order.
    Column("fail_kind", String(20)),
    # From here: schema 4, what the relay did with a message handed to it (see
    # store/relays.py). relay: the host:port it was handed to; relay_queue_id: the
    # relay's queue id from its reply to the dot; relay_state: where it is there
    # (RELAY_STATES; NULL: no relay, or no queue id to follow it by); relay_at:
    # when relay_state last changed; relay_note: the reply to the dot when it named
    # no queue id, else the relay's last word (deferral reason, remote reply).
    Column("relay", String(255)),
    Column("relay_queue_id", String(64)),
    Column("relay_state", String(12)),
    Column("relay_at", Float),
    Column("relay_note", Text),
    UniqueConstraint("mailing_id", "email", name="uq_messages_recipient"),
)
# The three indexes on a message's state are partial: each leaves out the states
# it is never searched for, and so the states every message passes through on its
# way out. A claim (queued -> claimed) and its record (claimed -> sent) then change
# 5 index entries on SQLite instead of 12, and on PostgreSQL (where changing an
# indexed column writes an entry in every index that holds the row) 6 instead of 10:
# what bounds many engines on one server (docs/benchmarks.md).
#
# A query uses a partial index only when its own WHERE contains the index's
# condition, with literals, not bound parameters: `state_is()` writes it so.
CLAIM_WHERE = messages.c.state.not_in([literal_column("'claimed'"), literal_column("'sent'")])
LEASE_WHERE = messages.c.state == literal_column("'claimed'")
RECIPIENTS_WHERE = messages.c.state != literal_column("'claimed'")
# Claiming walks (mailing, state, due) for the few mailings that may send, so its
# cost does not grow with the number of messages already sent; the newest errors
# (mailing_detail.last_errors) walk it too.
Index("ix_messages_claim", messages.c.mailing_id, messages.c.state, messages.c.due_at,
      sqlite_where=CLAIM_WHERE, postgresql_where=CLAIM_WHERE)
# Lease renewal/expiry and engine release look at the (few) claimed rows only.
Index("ix_messages_state", messages.c.state, messages.c.lease_expires,
      sqlite_where=LEASE_WHERE, postgresql_where=LEASE_WHERE)
# The recipients export (store/recipients.py) reads one mailing's messages of one
# state and revision in id order, 5,000 at a time from the last id seen: with
# this index each chunk is a seek and a short range, not a scan of the mailing.
Index("ix_messages_recipients", messages.c.mailing_id, messages.c.state, messages.c.revision_id, messages.c.id,
      sqlite_where=RECIPIENTS_WHERE, postgresql_where=RECIPIENTS_WHERE)

MESSAGE_STATES = ("queued", "claimed", "sent", "failed", "suspended", "suppressed")
_PARTIAL_INDEXES = (  # (condition, the states it holds)
    (CLAIM_WHERE, frozenset(MESSAGE_STATES) - {"claimed", "sent"}),
    (LEASE_WHERE, frozenset({"claimed"})),
    (RECIPIENTS_WHERE, frozenset(MESSAGE_STATES) - {"claimed"}),
)


def state_is(*states: str) -> ColumnElement[bool]:
    """`messages.state IN states`, in the form the partial indexes need: the states as
    literals, and the condition of every partial index that holds all of them."""
    unknown = set(states) - set(MESSAGE_STATES)
    if not states or unknown:
        raise ValueError(f"not message states: {sorted(unknown) or 'none given'}")
    values = [literal_column(f"'{s}'") for s in states]
    own = messages.c.state == values[0] if len(values) == 1 else messages.c.state.in_(values)
    return and_(own, *(where for where, held in _PARTIAL_INDEXES if held.issuperset(states) and not where.compare(own)))


# The messages still in a relay's queue (waiting or held there), by queue id: a
# partial index, so it holds only what relays hold now, not every message ever
# relayed; queries name the same literal condition (relays.AT_RELAY) to use it.
AT_RELAY_SQL = "relay_state IN ('queued', 'held')"
Index("ix_messages_at_relay", messages.c.relay_state, messages.c.relay_queue_id,
      sqlite_where=text(AT_RELAY_SQL), postgresql_where=text(AT_RELAY_SQL))

# Addresses an account never sends to again (unsubscribed, bounced, complained).
# The primary key is the lookup the claim and the import make: one row per
# (account, address), the address in its normal form (importer.normal_address).
suppressions = Table(
    "suppressions",
    metadata,
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("email", String(320), nullable=False),
    Column("reason", Text),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(200), nullable=False),
    PrimaryKeyConstraint("account_id", "email", name="pk_suppressions"),
)

engines = Table(
    "engines",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("workers", Integer, nullable=False),
    Column("transport", String(500), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("heartbeat_at", Float, nullable=False),
    Column("state", String(20), nullable=False),
    Column("in_flight", Integer, nullable=False, default=0),
    Column("sent_rate", Float, nullable=False, default=0.0),
    Column("failed_rate", Float, nullable=False, default=0.0),
    Column("sent_total", Integer, nullable=False, default=0),
    Column("failed_total", Integer, nullable=False, default=0),
    # JSON {account_id: generation} this engine has fully honoured.
    Column("acknowledged", Text, nullable=False, default="{}"),
    Column("note", Text),
)

# Relay agents (mailconsole relay-agent), one row each: their heartbeat, the stops
# they acknowledged and what they did at the relay.
relays = Table(
    "relays",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("kind", String(20), nullable=False),  # "postfix"
    Column("relay", String(255)),  # the host:port engines hand messages to; NULL: any
    Column("started_at", Float, nullable=False),
    Column("heartbeat_at", Float, nullable=False),
    Column("state", String(20), nullable=False),
    # JSON {account_id: {"generation", "held", "in_delivery", "at", ...}}: the stops honoured.
    Column("acknowledged", Text, nullable=False, default="{}"),
    # JSON of the agent's totals: held, released, deleted, delivered, bounced, deferred, expired.
    Column("counts", Text, nullable=False, default="{}"),
    Column("queue_size", Integer),
    Column("note", Text),
)

audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", Float, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("ssh_client", String(200)),
    Column("account", String(200), nullable=False),
    Column("action", String(40), nullable=False),
    Column("mailing_id", Integer),
    Column("details", Text, nullable=False, default="{}"),
)
Index("ix_audit_at", audit.c.at)

# Alembic's bookkeeping table (the revision a store is at), as Alembic creates it.
# Declared here, outside `metadata`, so that a new store is stamped with the head
# revision without importing Alembic (≈110 ms) each time a store is created; the
# migration tests check it against the table Alembic makes.
alembic_version = Table(
    "alembic_version",
    MetaData(),
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)
