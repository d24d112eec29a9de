"""Ingest tokens name the hosts they may speak for (a selector; empty: any host)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 23:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ingest_tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("hosts", sa.String(length=4096), nullable=False, server_default="")
        )
    with op.batch_alter_table("ingest_tokens", schema=None) as batch_op:
        batch_op.alter_column("hosts", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("ingest_tokens", schema=None) as batch_op:
        batch_op.drop_column("hosts")
