"""bounty lifecycle: the award (bid, price, dates) and the legacy status values mapped

``open`` stays 申报中 and ``awarded`` stays 已立项; ``closed`` becomes ``completed`` (结项).

Revision ID: 0008_bounty_lifecycle
Revises: 0007_sessions
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_bounty_lifecycle"
down_revision = "0007_sessions"
branch_labels = None
depends_on = None

#: Old value -> new state; downgrade maps every state the old schema did not know back.
UPGRADE = {"closed": "completed"}
DOWNGRADE = {  # the old schema: open accepts applications, closed does not
    "completed": "closed",
    "withdrawn": "closed",
    "notice": "awarded",
    "assessing": "closed",
    "published": "closed",
    "screening": "closed",
    "reviewing": "closed",
    "negotiating": "closed",
}


def _remap(mapping: dict[str, str]) -> None:
    bounties = sa.table("bounties", sa.column("status", sa.String))
    for old, new in mapping.items():
        op.execute(bounties.update().where(bounties.c.status == old).values(status=new))


def upgrade() -> None:
    with op.batch_alter_table("bounties") as batch:
        batch.add_column(sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("awarded_bid_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("awarded_price", sa.Float(), nullable=True))
        batch.add_column(sa.Column("awarded_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("noticed_at", sa.DateTime(timezone=True), nullable=True))
    _remap(UPGRADE)


def downgrade() -> None:
    _remap(DOWNGRADE)
    with op.batch_alter_table("bounties") as batch:
        batch.drop_column("noticed_at")
        batch.drop_column("awarded_at")
        batch.drop_column("awarded_price")
        batch.drop_column("awarded_bid_id")
        batch.drop_column("status_changed_at")
