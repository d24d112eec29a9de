"""Resource reports: right-sized requests per workload group, and what was decided on each

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-08 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "resource_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("key", sa.String(length=16), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resource_reports")),
    )
    op.create_index(op.f("ix_resource_reports_created_at"), "resource_reports", ["created_at"])
    op.create_table(
        "resource_recommendations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("grp", sa.String(length=255), nullable=False),
        sa.Column("target", sa.String(length=255), nullable=False),
        sa.Column("resource", sa.String(length=8), nullable=False),
        sa.Column("request", sa.Float(), nullable=False),
        sa.Column("recommendation", sa.Float(), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("saving", sa.Float(), nullable=False),
        sa.Column("risk", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("change_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["resource_reports.id"],
            name=op.f("fk_resource_recommendations_report_id_resource_reports"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["change_id"],
            ["change_requests.id"],
            name=op.f("fk_resource_recommendations_change_id_change_requests"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resource_recommendations")),
    )
    op.create_index(
        op.f("ix_resource_recommendations_report_id"), "resource_recommendations", ["report_id"]
    )
    op.create_index(
        "ix_resource_recommendations_report_status",
        "resource_recommendations",
        ["report_id", "status"],
    )


def downgrade() -> None:
    op.drop_index("ix_resource_recommendations_report_status", "resource_recommendations")
    op.drop_index(op.f("ix_resource_recommendations_report_id"), "resource_recommendations")
    op.drop_table("resource_recommendations")
    op.drop_index(op.f("ix_resource_reports_created_at"), table_name="resource_reports")
    op.drop_table("resource_reports")
