"""extra attributes of imported records (columns the import does not know)

Revision ID: 0002_import_extra
Revises: 0005_workflows
Create Date: 2026-12-01 21:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_import_extra"
down_revision = "0005_workflows"
branch_labels = None
depends_on = None

TABLES = ("organisations", "needs", "capabilities", "bounties", "bids")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("extra", sa.JSON(), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("extra")
