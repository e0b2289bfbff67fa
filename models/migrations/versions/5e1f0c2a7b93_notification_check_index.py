"""notifications: index (post_id, recipient_id) instead of post_id alone

notify's check for an existing notification filters on the recipient, the post, the kind and the
sender; SQLite without statistics chose the recipient's index and read every notification of the
recipient for each check. The post's index now carries the recipient too (and still serves the post's
ON DELETE CASCADE).

Revision ID: 5e1f0c2a7b93
Revises: 899abf3131ee
Create Date: 2026-11-26 09:00:00
"""
from alembic import op

revision = '5e1f0c2a7b93'
down_revision = '899abf3131ee'
branch_labels = None
depends_on = None


# Plain CREATE / DROP INDEX (both databases have them): no table copy, even on SQLite.
def upgrade() -> None:
    op.create_index('ix_notifications_post_id_recipient_id', 'notifications', ['post_id', 'recipient_id'])
    op.drop_index('ix_notifications_post_id', table_name='notifications')


def downgrade() -> None:
    op.create_index('ix_notifications_post_id', 'notifications', ['post_id'])
    op.drop_index('ix_notifications_post_id_recipient_id', table_name='notifications')
