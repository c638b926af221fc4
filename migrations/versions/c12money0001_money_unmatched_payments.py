"""money unmatched payments

Revision ID: c12money0001
Revises: b7daily00001
Create Date: 2026-12-06 22:20:00

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


# revision identifiers, used by Alembic.
revision = 'c12money0001'
down_revision = 'b7daily00001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('wallet_transactions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('simulated', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_index(batch_op.f('ix_wallet_transactions_client_id_id'), ['client_id', 'id'], unique=False)

    op.create_table('unmatched_payments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('trans_id', sa.String(length=40), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=True),
    sa.Column('raw_amount', sa.String(length=64), nullable=False),
    sa.Column('bill_ref', sa.String(length=64), nullable=False),
    sa.Column('payer', sa.String(length=200), nullable=False),
    sa.Column('msisdn', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('metadata', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('assigned_client_id', sa.Integer(), nullable=True),
    sa.Column('assigned_by_id', sa.Integer(), nullable=True),
    sa.Column('assigned_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('assign_reason', sa.Text(), nullable=True),
    sa.Column('wallet_transaction_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['assigned_client_id'], ['clients.id'], name=op.f('fk_unmatched_payments_assigned_client_id_clients'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['assigned_by_id'], ['users.id'], name=op.f('fk_unmatched_payments_assigned_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['wallet_transaction_id'], ['wallet_transactions.id'], name=op.f('fk_unmatched_payments_wallet_transaction_id_wallet_transactions'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_unmatched_payments')),
    sa.UniqueConstraint('trans_id', name=op.f('uq_unmatched_payments_trans_id'))
    )
    with op.batch_alter_table('unmatched_payments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_unmatched_payments_assigned_at_id'), ['assigned_at', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('unmatched_payments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_unmatched_payments_assigned_at_id'))
    op.drop_table('unmatched_payments')

    with op.batch_alter_table('wallet_transactions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_wallet_transactions_client_id_id'))
        batch_op.drop_column('simulated')
