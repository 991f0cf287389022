"""applications: bid status and note, bounty ranking opened to the poster

Revision ID: 0006_applications
Revises: 0002_import_extra
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_applications"
down_revision = "0002_import_extra"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bids") as batch:
        batch.add_column(
            sa.Column("status", sa.String(length=16), nullable=False, server_default="submitted")
        )
        batch.add_column(sa.Column("status_note", sa.Text(), nullable=False, server_default=""))
    with op.batch_alter_table("bounties") as batch:
        batch.add_column(
            sa.Column("ranking_open", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("bounties") as batch:
        batch.drop_column("ranking_open")
    with op.batch_alter_table("bids") as batch:
        batch.drop_column("status_note")
        batch.drop_column("status")
