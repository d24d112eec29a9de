"""Storage reports: one analysed namespace each, with its findings

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "storage_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("files", sa.BigInteger(), nullable=False),
        sa.Column("directories", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("raw_bytes", sa.BigInteger(), nullable=False),
        sa.Column("disk_savings", sa.BigInteger(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_storage_reports")),
    )
    op.create_index(op.f("ix_storage_reports_created_at"), "storage_reports", ["created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_storage_reports_created_at"), table_name="storage_reports")
    op.drop_table("storage_reports")
