"""Baseline: the schema of release 0.1.0, which made its tables with metadata.create_all (no alembic_version).

A database made by that release is stamped at this revision and upgraded from here; a new database is
created by running this revision. Never edit it: add a revision.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cds_feedback",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("service_id", sa.String(200), nullable=False),
        sa.Column("card_uuid", sa.String(200), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("outcome_timestamp", sa.String(40), nullable=False),
        sa.Column("accepted_suggestions", sa.Text, nullable=True),
        sa.Column("override_reason_system", sa.String(500), nullable=True),
        sa.Column("override_reason_code", sa.String(200), nullable=True),
        sa.Column("override_reason_display", sa.String(500), nullable=True),
        sa.Column("override_comment", sa.Text, nullable=True),
        sa.Column("raw", sa.Text, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("card_uuid", "outcome", "outcome_timestamp", name="uq_feedback_card_outcome_time"),
    )
    op.create_table(
        "cds_feedback_rejected",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("service_id", sa.String(200), nullable=False),
        sa.Column("problem", sa.Text, nullable=False),
        sa.Column("raw", sa.Text, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "cds_audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("service_id", sa.String(200), nullable=False),
        sa.Column("hook", sa.String(100), nullable=True),
        sa.Column("hook_instance", sa.String(200), nullable=True),
        sa.Column("issuer", sa.String(500), nullable=True),
        sa.Column("tenant", sa.String(200), nullable=True),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("rule_versions", sa.Text, nullable=False),
    )
    op.create_table(
        "cds_audit_card",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("audit_id", sa.Integer, sa.ForeignKey("cds_audit.id"), nullable=False),
        sa.Column("card_uuid", sa.String(200), nullable=False),
        sa.Column("indicator", sa.String(20), nullable=False),
        sa.Column("summary", sa.String(500), nullable=False),
    )
    op.create_index("ix_cds_audit_card_audit_id", "cds_audit_card", ["audit_id"])
    op.create_index("ix_cds_audit_card_card_uuid", "cds_audit_card", ["card_uuid"])


def downgrade() -> None:
    op.drop_table("cds_audit_card")
    op.drop_table("cds_audit")
    op.drop_table("cds_feedback_rejected")
    op.drop_table("cds_feedback")
