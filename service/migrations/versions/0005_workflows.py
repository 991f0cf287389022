"""workflows: collection rounds, guideline directions, near-duplicates, commissioners,
funding split of bids, dispatch campaigns

Revision ID: 0005_workflows
Revises: 0004_portal
Create Date: 2026-12-01 21:42:48.372684
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_workflows"
down_revision = "0004_portal"
branch_labels = None
depends_on = None


def _fk_column(name: str, target: str, fk_name: str) -> sa.Column[int]:
    """A nullable reference column; on SQLite without the constraint (ALTER TABLE cannot add
    one there, and a batch copy of the table is refused while other tables reference it)."""
    if op.get_bind().dialect.name == "sqlite":
        return sa.Column(name, sa.Integer(), nullable=True)
    fk = sa.ForeignKey(target, name=fk_name, ondelete="SET NULL")
    return sa.Column(name, sa.Integer(), fk, nullable=True)


def upgrade() -> None:
    op.create_table(
        "guideline_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("round", sa.String(length=64), nullable=True),
        sa.Column("date_from", sa.Date(), nullable=True),
        sa.Column("date_to", sa.Date(), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "commissioners",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("employer_org_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=64), nullable=False),
        sa.Column("field", sa.String(length=64), nullable=True),
        sa.Column("expertise", sa.Text(), nullable=False),
        sa.Column("keywords", sa.JSON(), nullable=False),
        sa.Column("papers", sa.JSON(), nullable=False),
        sa.Column("patents", sa.JSON(), nullable=False),
        sa.Column("services", sa.JSON(), nullable=False),
        sa.Column("load_limit", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["employer_org_id"],
            ["organisations.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("commissioners", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_commissioners_employer_org_id"), ["employer_org_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_commissioners_external_id"), ["external_id"], unique=True
        )

    op.create_table(
        "guideline_directions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("keywords", sa.JSON(), nullable=False),
        sa.Column("need_ids", sa.JSON(), nullable=False),
        sa.Column("representatives", sa.JSON(), nullable=False),
        sa.Column("org_ids", sa.JSON(), nullable=False),
        sa.Column("institutes", sa.JSON(), nullable=False),
        sa.Column("cohesion", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["guideline_runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("guideline_directions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_guideline_directions_run_id"), ["run_id"], unique=False
        )

    op.create_table(
        "duplicate_pairs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("need_a_id", sa.Integer(), nullable=False),
        sa.Column("need_b_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["decided_by"],
            ["users.id"],
        ),
        sa.ForeignKeyConstraint(["need_a_id"], ["needs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["need_b_id"], ["needs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["run_id"], ["guideline_runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "need_a_id", "need_b_id"),
    )
    with op.batch_alter_table("duplicate_pairs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_duplicate_pairs_run_id"), ["run_id"], unique=False)

    # Plain ADD COLUMN (no batch table copy, see _fk_column).
    op.add_column("bids", sa.Column("funding_enterprise", sa.Float(), nullable=True))
    op.add_column("bids", sa.Column("funding_academic", sa.Float(), nullable=True))
    op.add_column(
        "campaigns",
        sa.Column("kind", sa.String(length=16), nullable=False, server_default="pairing"),
    )
    op.add_column("needs", sa.Column("round", sa.String(length=64), nullable=True))
    op.add_column("needs", _fk_column("duplicate_of_id", "needs.id", "fk_needs_duplicate_of_id"))
    op.create_index("ix_needs_round", "needs", ["round"], unique=False)
    op.add_column("organisations", sa.Column("scale", sa.String(length=16), nullable=True))
    op.add_column(
        "shortlist_items",
        _fk_column("commissioner_id", "commissioners.id", "fk_shortlist_items_commissioner_id"),
    )


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table("shortlist_items", schema=None) as batch_op:
        if not sqlite:
            batch_op.drop_constraint("fk_shortlist_items_commissioner_id", type_="foreignkey")
        batch_op.drop_column("commissioner_id")

    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.drop_column("scale")

    with op.batch_alter_table("needs", schema=None) as batch_op:
        if not sqlite:
            batch_op.drop_constraint("fk_needs_duplicate_of_id", type_="foreignkey")
        batch_op.drop_index("ix_needs_round")
        batch_op.drop_column("duplicate_of_id")
        batch_op.drop_column("round")

    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("kind")

    with op.batch_alter_table("bids", schema=None) as batch_op:
        batch_op.drop_column("funding_academic")
        batch_op.drop_column("funding_enterprise")

    with op.batch_alter_table("duplicate_pairs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_duplicate_pairs_run_id"))

    op.drop_table("duplicate_pairs")
    with op.batch_alter_table("guideline_directions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_guideline_directions_run_id"))

    op.drop_table("guideline_directions")
    with op.batch_alter_table("commissioners", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_commissioners_external_id"))
        batch_op.drop_index(batch_op.f("ix_commissioners_employer_org_id"))

    op.drop_table("commissioners")
    op.drop_table("guideline_runs")
