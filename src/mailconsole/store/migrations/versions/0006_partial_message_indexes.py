"""Schema version 6: the three indexes on a message's state become partial.

ix_messages_claim leaves out claimed and sent messages, ix_messages_state holds
only claimed ones, ix_messages_recipients leaves out claimed ones (store/schema.py
says why: a claim and its record then change about half as many index entries).
Same names and columns, so every query that used an index still finds it.

Each index is dropped and built again, which reads every message: about 2 s per
million messages per index on SQLite, under the write lock. `mailconsole migrate`
runs with no engine live, so nothing is sending meanwhile; a stop typed during it
waits for the commit.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mailconsole.store.migrations.versions import set_schema_version

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# The conditions as they were written at version 6 (a migration never follows later edits of schema.py).
_INDEXES = {
    "ix_messages_claim": (["mailing_id", "state", "due_at"], "state NOT IN ('claimed', 'sent')"),
    "ix_messages_state": (["state", "lease_expires"], "state = 'claimed'"),
    "ix_messages_recipients": (["mailing_id", "state", "revision_id", "id"], "state != 'claimed'"),
}


def upgrade() -> None:
    for name, (columns, where) in _INDEXES.items():
        op.drop_index(name, table_name="messages")
        op.create_index(name, "messages", columns, sqlite_where=sa.text(where), postgresql_where=sa.text(where))
    set_schema_version(6)


def downgrade() -> None:
    for name, (columns, _where) in _INDEXES.items():
        op.drop_index(name, table_name="messages")
        op.create_index(name, "messages", columns)
    set_schema_version(5)
