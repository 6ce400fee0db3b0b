"""Schema version 2: messages.fail_kind, why a failed message failed.

Nullable with no default: on SQLite this is a plain ALTER TABLE ADD COLUMN (batch
mode does not copy the table for it), which changes only the table's definition,
however many messages there are; the write lock is held for milliseconds. Messages
that failed before the upgrade keep fail_kind NULL (the reason is unknown).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mailconsole.store.migrations.versions import set_schema_version

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("fail_kind", sa.String(length=20), nullable=True))
    set_schema_version(2)


def downgrade() -> None:
    # On SQLite this copies the messages table (batch mode): slow on a big store.
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("fail_kind")
    set_schema_version(1)
