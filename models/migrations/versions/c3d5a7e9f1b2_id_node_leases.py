"""id node leases: a node number and a last-seen time per process

Revision ID: c3d5a7e9f1b2
Revises: 885ba06af8ce
Create Date: 2026-11-26 02:00:00
"""
import sqlalchemy as sa
from alembic import op

import voisinage.models.base

revision = 'c3d5a7e9f1b2'
down_revision = '885ba06af8ce'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('id_nodes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('node', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('seen_at', voisinage.models.base.UtcDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('id_nodes', schema=None) as batch_op:
        batch_op.drop_column('seen_at')
        batch_op.drop_column('node')
