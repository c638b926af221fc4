"""reply-link codes grow past 4 characters

Revision ID: c12links00001
Revises: c13vendor0001
Create Date: 2026-12-06 22:50:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c12links00001'
down_revision = 'c13vendor0001'
branch_labels = None
depends_on = None


def upgrade():
    # Codes stay 4 characters while live links are few and grow (5, 6, 7...) so a guess rarely hits one.
    with op.batch_alter_table('short_links', schema=None) as batch_op:
        batch_op.alter_column('code', existing_type=sa.String(length=4), type_=sa.String(length=12),
                              existing_nullable=False)


def downgrade():
    # Only possible while every code still has 4 characters.
    with op.batch_alter_table('short_links', schema=None) as batch_op:
        batch_op.alter_column('code', existing_type=sa.String(length=12), type_=sa.String(length=4),
                              existing_nullable=False)
