"""audit log

Revision ID: c15audit00001
Revises: c15mail00001
Create Date: 2026-12-06 23:45:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c15audit00001'
down_revision = 'c15mail00001'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
