"""vendor wire formats

Revision ID: c13vendor0001
Revises: c12auth00001
Create Date: 2026-12-06 22:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c13vendor0001'
down_revision = 'c12auth00001'
branch_labels = None
depends_on = None


def upgrade():
    # WhatsApp templates carry the language they are approved in (Meta matches the exact code).
    with op.batch_alter_table('templates', schema=None) as batch_op:
        batch_op.add_column(sa.Column('whatsapp_language', sa.String(length=16), server_default='en', nullable=False))


def downgrade():
    with op.batch_alter_table('templates', schema=None) as batch_op:
        batch_op.drop_column('whatsapp_language')
