"""auth signup confirmation

Revision ID: c12auth00001
Revises: c12money0001
Create Date: 2026-12-06 22:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c12auth00001'
down_revision = 'c12money0001'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
