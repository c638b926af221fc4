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
    pass


def downgrade():
    pass
