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
    # Self-service sign-ups wait for their emailed link; every account that exists today is usable, so it
    # counts as confirmed from its creation.
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_verified_at', sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE users SET email_verified_at = created_at WHERE email_verified_at IS NULL")


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('email_verified_at')
