"""A host's address holds a whole DNS name (253 characters), as the API accepts

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.alter_column(
            "address",
            existing_type=sa.String(length=64),
            type_=sa.String(length=253),
            existing_nullable=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.alter_column(
            "address",
            existing_type=sa.String(length=253),
            type_=sa.String(length=64),
            existing_nullable=False,
        )
