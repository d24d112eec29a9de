"""Named metrics pushed by a site's systems, kept as 10-second windows

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "metric_windows",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("series", sa.String(length=1024), nullable=False),
        sa.Column("start", sa.DateTime(), nullable=False),
        sa.Column("seconds", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("sum", sa.Float(), nullable=False),
        sa.Column("min", sa.Float(), nullable=False),
        sa.Column("max", sa.Float(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint(
            "name", "series", "start", "seconds", name=op.f("pk_metric_windows")
        ),
    )
    op.create_index(op.f("ix_metric_windows_start"), "metric_windows", ["start"])


def downgrade() -> None:
    op.drop_index(op.f("ix_metric_windows_start"), table_name="metric_windows")
    op.drop_table("metric_windows")
