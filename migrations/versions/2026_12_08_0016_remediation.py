"""Remediation rules: the mode an admin set for each, and what each did or would have done

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "remediation_modes",
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("rule", name=op.f("pk_remediation_modes")),
    )
    op.create_table(
        "remediation_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("finding_id", sa.Integer(), nullable=True),
        sa.Column("entity", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("change_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("outcome_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["finding_id"],
            ["findings.id"],
            name=op.f("fk_remediation_actions_finding_id_findings"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["change_id"],
            ["change_requests.id"],
            name=op.f("fk_remediation_actions_change_id_change_requests"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_remediation_actions")),
    )
    op.create_index(op.f("ix_remediation_actions_rule"), "remediation_actions", ["rule"])
    op.create_index(op.f("ix_remediation_actions_at"), "remediation_actions", ["at"])
    op.create_index("ix_remediation_actions_outcome", "remediation_actions", ["outcome"])
    op.create_index(
        "ux_remediation_actions_rule_finding_mode",
        "remediation_actions",
        ["rule", "finding_id", "mode"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("ux_remediation_actions_rule_finding_mode", "remediation_actions")
    op.drop_index("ix_remediation_actions_outcome", "remediation_actions")
    op.drop_index(op.f("ix_remediation_actions_at"), "remediation_actions")
    op.drop_index(op.f("ix_remediation_actions_rule"), "remediation_actions")
    op.drop_table("remediation_actions")
    op.drop_table("remediation_modes")
