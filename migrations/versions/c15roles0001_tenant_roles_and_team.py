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
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tenant_role', sa.String(length=16), nullable=True))
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True))
    # Existing users: the first user of each tenant becomes its owner, the others managers.
    op.execute(
        "UPDATE users SET tenant_role = CASE WHEN id = (SELECT MIN(u2.id) FROM users u2 "
        "WHERE u2.client_id = users.client_id) THEN 'owner' ELSE 'manager' END WHERE client_id IS NOT NULL"
    )
    op.create_table(
        'invitations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('client_id', sa.Integer(), nullable=False),
        sa.Column('email', sa.String(length=254), nullable=False),
        sa.Column('name', sa.String(length=120), nullable=True),
        sa.Column('tenant_role', sa.String(length=16), nullable=False),
        sa.Column('invited_by_id', sa.Integer(), nullable=True),
        sa.Column('nonce', sa.String(length=32), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ['client_id'], ['clients.id'], name=op.f('fk_invitations_client_id_clients'), ondelete='CASCADE'
        ),
        sa.ForeignKeyConstraint(
            ['invited_by_id'], ['users.id'], name=op.f('fk_invitations_invited_by_id_users'), ondelete='SET NULL'
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_invitations')),
    )
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invitations_client_id'), ['client_id'], unique=False)


def downgrade():
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invitations_client_id'))
    op.drop_table('invitations')
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_column('closed_at')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('tenant_role')
