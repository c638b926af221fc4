"""two factor

Revision ID: c15totp00001
Revises: c15sessions01
Create Date: 2026-12-06 23:45:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c15totp00001'
down_revision = 'c15sessions01'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
