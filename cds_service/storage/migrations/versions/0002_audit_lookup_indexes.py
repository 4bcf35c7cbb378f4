"""Indexes for looking up audit records by hookInstance (every log line carries it) and by time (retention).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_cds_audit_hook_instance", "cds_audit", ["hook_instance"])
    op.create_index("ix_cds_audit_received_at", "cds_audit", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_cds_audit_received_at", table_name="cds_audit")
    op.drop_index("ix_cds_audit_hook_instance", table_name="cds_audit")
