"""campaign history and text

Revision ID: c13campaign01
Revises: c13vendor0001
Create Date: 2026-12-06 22:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c13campaign01'
down_revision = 'c13vendor0001'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
