"""Schema version 5: what the relay holds (the relay's queue id per message, relay agents).

Additive only: five nullable columns of messages (plain ALTER TABLE ADD COLUMN
on SQLite), one new table, and a partial index over the messages still in a
relay's queue, which no existing row is (every relay_state is NULL), so it is
built empty: the write lock is held for milliseconds however many messages the
store holds.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mailconsole.store.migrations.versions import set_schema_version

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_VERSION = 5  # the schema version this revision brings a store to
_AT_RELAY = "relay_state IN ('queued', 'held')"
_COLUMNS = ("relay", "relay_queue_id", "relay_state", "relay_at", "relay_note")


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("relay", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("relay_queue_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("relay_state", sa.String(length=12), nullable=True))
        batch.add_column(sa.Column("relay_at", sa.Float(), nullable=True))
        batch.add_column(sa.Column("relay_note", sa.Text(), nullable=True))
    op.create_index("ix_messages_at_relay", "messages", ["relay_state", "relay_queue_id"],
                    sqlite_where=sa.text(_AT_RELAY), postgresql_where=sa.text(_AT_RELAY))
    op.create_table(
        "relays",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("relay", sa.String(length=255), nullable=True),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("heartbeat_at", sa.Float(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("acknowledged", sa.Text(), nullable=False),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.Column("queue_size", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    set_schema_version(_VERSION)


def downgrade() -> None:
    op.drop_table("relays")
    op.drop_index("ix_messages_at_relay", table_name="messages")
    # Plain DROP COLUMN (SQLite 3.35+), as 0003 does, not batch mode.
    for column in reversed(_COLUMNS):
        op.drop_column("messages", column)
    set_schema_version(_VERSION - 1)
