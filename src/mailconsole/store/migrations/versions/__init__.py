"""One Alembic revision per schema version (see the package docstring).

Revisions do not import store/schema.py: it describes today's tables, and a
revision must keep doing what it did when it was written.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

_meta = sa.table("meta", sa.column("key", sa.String), sa.column("value", sa.Text))


def set_schema_version(version: int) -> None:
    """Record `version` in meta.schema_version, in the revision's transaction.

    Every command reads this row on open (without Alembic), so it moves in step
    with the Alembic revision.
    """
    op.execute(_meta.update().where(_meta.c.key == "schema_version").values(value=str(version)))
