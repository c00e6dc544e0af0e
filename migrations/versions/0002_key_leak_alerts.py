"""Key leak alerts (SPEC §9): a key reported public, shown until dismissed

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('key_leak_alerts',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.Column('api_key_id', sa.Uuid(), nullable=False),
    sa.Column('url', sa.String(length=500), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('dismissed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('dismissed_by_id', sa.Uuid(), nullable=True),
    sa.ForeignKeyConstraint(['api_key_id'], ['api_keys.id'], name=op.f('fk_key_leak_alerts_api_key_id_api_keys'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['dismissed_by_id'], ['users.id'], name=op.f('fk_key_leak_alerts_dismissed_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_key_leak_alerts_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_key_leak_alerts'))
    )
    with op.batch_alter_table('key_leak_alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_key_leak_alerts_api_key_id'), ['api_key_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_key_leak_alerts_dismissed_by_id'), ['dismissed_by_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_key_leak_alerts_workspace_id'), ['workspace_id'], unique=False)


def downgrade():
    with op.batch_alter_table('key_leak_alerts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_key_leak_alerts_workspace_id'))
        batch_op.drop_index(batch_op.f('ix_key_leak_alerts_dismissed_by_id'))
        batch_op.drop_index(batch_op.f('ix_key_leak_alerts_api_key_id'))
    op.drop_table('key_leak_alerts')
