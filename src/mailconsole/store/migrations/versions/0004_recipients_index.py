"""Schema version 4: ix_messages_recipients, for the recipients export.

One new index on messages (mailing_id, state, revision_id, id): the export of who
was sent a revision reads its chunks through it (store/recipients.py).

Unlike the earlier revisions, CREATE INDEX reads every message: it holds the
write lock for about 2 s per million messages on SQLite (measured in
docs/benchmarks.md). `mailconsole migrate` runs with no engine live, so nothing
is sending meanwhile; a stop typed during it waits for the commit.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

from mailconsole.store.migrations.versions import set_schema_version

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_messages_recipients", "messages", ["mailing_id", "state", "revision_id", "id"])
    set_schema_version(4)


def downgrade() -> None:
    op.drop_index("ix_messages_recipients", table_name="messages")
    set_schema_version(3)
