"""Key origin and usage (SPEC §9): last_used_ip/_user_agent, requests per key per UTC day

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('key_usage_daily',
    sa.Column('key_id', sa.Uuid(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('ok', sa.Integer(), nullable=False),
    sa.Column('denied', sa.Integer(), nullable=False),
    sa.Column('limited', sa.Integer(), nullable=False),
    sa.Column('errors', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['key_id'], ['api_keys.id'], name=op.f('fk_key_usage_daily_key_id_api_keys'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('key_id', 'day', name=op.f('pk_key_usage_daily'))
    )
    with op.batch_alter_table('key_usage_daily', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_key_usage_daily_day'), ['day'], unique=False)

    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_used_ip', sa.String(length=45), nullable=True))
        batch_op.add_column(sa.Column('last_used_user_agent', sa.String(length=200), nullable=True))



def downgrade():
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_column('last_used_user_agent')
        batch_op.drop_column('last_used_ip')

    with op.batch_alter_table('key_usage_daily', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_key_usage_daily_day'))

    op.drop_table('key_usage_daily')
