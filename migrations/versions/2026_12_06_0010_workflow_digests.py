"""Workflows carry the digest of their source, so pre-approved changes run a pinned version

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 23:00:00
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("workflows", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("digest", sa.String(length=71), nullable=False, server_default="")
        )
    workflows = sa.table(
        "workflows",
        sa.column("id", sa.Integer),
        sa.column("source", sa.Text),
        sa.column("digest", sa.String),
    )
    conn = op.get_bind()
    for row_id, source in conn.execute(sa.select(workflows.c.id, workflows.c.source)).all():
        digest = "sha256:" + hashlib.sha256(source.encode()).hexdigest()
        conn.execute(workflows.update().where(workflows.c.id == row_id).values(digest=digest))
    with op.batch_alter_table("workflows", schema=None) as batch_op:
        batch_op.alter_column("digest", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("workflows", schema=None) as batch_op:
        batch_op.drop_column("digest")
