"""money unmatched payments

Revision ID: c12money0001
Revises: b7daily00001
Create Date: 2026-12-06 22:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c12money0001'
down_revision = 'b7daily00001'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
