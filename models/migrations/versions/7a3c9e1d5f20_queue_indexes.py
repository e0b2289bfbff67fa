"""queues: one index each for the claim, (state, next_attempt_at)

deliveries had five indexes besides its keys and inbox_items two, each written for every row queued
and finished: state alone and next_attempt_at alone (the claim filters on both: deliveries already had
(state, next_attempt_at), inbox_items gets it), host (nothing looks deliveries up by host: a fan-out to
50 partners wrote 50 scattered pages of it per post) and outgoing_id (the unique (outgoing_id,
inbox_uri) index serves those lookups).

Revision ID: 7a3c9e1d5f20
Revises: 5e1f0c2a7b93
Create Date: 2026-11-26 13:30:00
"""
from alembic import op

revision = '7a3c9e1d5f20'
down_revision = '5e1f0c2a7b93'
branch_labels = None
depends_on = None

_DROPPED = (
    ('deliveries', 'ix_deliveries_state', ['state']),
    ('deliveries', 'ix_deliveries_next_attempt_at', ['next_attempt_at']),
    ('deliveries', 'ix_deliveries_host', ['host']),
    ('deliveries', 'ix_deliveries_outgoing_id', ['outgoing_id']),
    ('inbox_items', 'ix_inbox_items_state', ['state']),
    ('inbox_items', 'ix_inbox_items_next_attempt_at', ['next_attempt_at']),
)


# Plain CREATE / DROP INDEX (both databases have them): no table copy, even on SQLite.
def upgrade() -> None:
    op.create_index('ix_inbox_items_due', 'inbox_items', ['state', 'next_attempt_at'])
    for table, name, _ in _DROPPED:
        op.drop_index(name, table_name=table)


def downgrade() -> None:
    for table, name, columns in _DROPPED:
        op.create_index(name, table, columns)
    op.drop_index('ix_inbox_items_due', table_name='inbox_items')
