"""History outlives hosts: lifecycle, transitions, repair tickets and probe runs RESTRICT deletion

A host with history is retired, never deleted; these keys used to CASCADE (or SET NULL) and would
have erased the record an operator needs after an incident.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 19:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> (ondelete before, ondelete now) of its host_id key
KEYS = {
    "device_states": ("CASCADE", "RESTRICT"),
    "device_transitions": ("CASCADE", "RESTRICT"),
    "repair_tickets": ("CASCADE", "RESTRICT"),
    "probe_runs": ("SET NULL", "RESTRICT"),
}


def _rekey(table: str, ondelete: str) -> None:
    name = f"fk_{table}_host_id_hosts"
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.drop_constraint(name, type_="foreignkey")
        batch_op.create_foreign_key(name, "hosts", ["host_id"], ["id"], ondelete=ondelete)


def upgrade() -> None:
    for table, (_, now) in KEYS.items():
        _rekey(table, now)


def downgrade() -> None:
    for table, (before, _) in KEYS.items():
        _rekey(table, before)
