"""password reset and outbox

Revision ID: c15mail00001
Revises: c15totp00001
Create Date: 2026-12-06 23:45:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c15mail00001'
down_revision = 'c15totp00001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'dev_outbox',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('to_address', sa.String(length=254), nullable=False),
        sa.Column('subject', sa.String(length=255), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_dev_outbox')),
    )
    with op.batch_alter_table('dev_outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dev_outbox_created_at'), ['created_at'], unique=False)


def downgrade():
    with op.batch_alter_table('dev_outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dev_outbox_created_at'))
    op.drop_table('dev_outbox')
