"""Schema version 3: sender display name, Reply-To, List-Id, suppressions, the store id.

Additive only: nullable columns (and one NOT NULL counter with a constant
default) are plain ALTER TABLE ADD COLUMN on SQLite, a new table is CREATE
TABLE, and the store id is one row of meta. The write lock is held for
milliseconds however many messages the store holds.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import base64
import secrets

import sqlalchemy as sa
from alembic import op

from mailconsole.store.migrations.versions import set_schema_version

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_meta = sa.table("meta", sa.column("key", sa.String), sa.column("value", sa.Text))


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("list_id", sa.String(length=300), nullable=True))
    with op.batch_alter_table("mailings") as batch:
        batch.add_column(sa.Column("sender_name", sa.String(length=300), nullable=True))
        batch.add_column(sa.Column("reply_to", sa.String(length=500), nullable=True))
        batch.add_column(sa.Column("list_id", sa.String(length=300), nullable=True))
        batch.add_column(sa.Column("suppressed", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "suppressions",
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "email", name="pk_suppressions"),
    )
    # Written out rather than imported from store/identity.py: a revision keeps
    # doing what it did when it was written (see versions/__init__.py).
    store_id = base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=").lower()
    op.execute(_meta.insert().values(key="store_id", value=store_id))
    set_schema_version(3)


def downgrade() -> None:
    op.execute(_meta.delete().where(_meta.c.key == "store_id"))
    op.drop_table("suppressions")
    # Plain ALTER TABLE DROP COLUMN (SQLite 3.35+), not batch mode: batch mode would
    # recreate tables others reference, which needs the foreign keys off, and that
    # switch cannot change inside the migration's transaction.
    for column in ("suppressed", "list_id", "reply_to", "sender_name"):
        op.drop_column("mailings", column)
    op.drop_column("accounts", "list_id")
    set_schema_version(2)
