"""tenant roles and team

Revision ID: c15roles0001
Revises: c12links00001
Create Date: 2026-12-06 23:45:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c15roles0001'
down_revision = 'c12links00001'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
