"""Autoscale, low-priority nodes, usage metrics: pools.autoscale_due_at, pool_samples, nodes.dedicated,
agents.usage, pool_usage, certificates

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 11:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

_PK = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('pools') as batch:
        batch.add_column(sa.Column('autoscale_due_at', sa.DateTime(), nullable=True))
    op.create_index('ix_pools_autoscale_due_at', 'pools', ['autoscale_due_at'])
    with op.batch_alter_table('nodes') as batch:
        batch.add_column(sa.Column('dedicated', sa.Boolean(), nullable=False, server_default=sa.true()))
    op.create_table(
        'pool_samples',
        sa.Column('pk', _PK, primary_key=True, autoincrement=True),
        sa.Column('pool_pk', _PK, sa.ForeignKey('pools.pk', ondelete='CASCADE',
                                                name='fk_pool_samples_pool_pk_pools'), nullable=False),
        sa.Column('time', sa.DateTime(), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
    )
    op.create_index('ix_pool_samples_pool_time', 'pool_samples', ['pool_pk', 'time'])
    op.create_index('ix_pool_samples_time', 'pool_samples', ['time'])
    with op.batch_alter_table('agents') as batch:
        batch.add_column(sa.Column('usage', sa.Text(), nullable=True))
    op.create_table(
        'pool_usage',
        sa.Column('pk', _PK, primary_key=True, autoincrement=True),
        sa.Column('account', sa.String(64), nullable=False),
        sa.Column('pool_id_key', sa.String(64).with_variant(sa.String(64, collation='C'), 'postgresql'), nullable=False),
        sa.Column('interval_key', sa.String(32), nullable=False),
        sa.Column('interval_start', sa.DateTime(), nullable=False),
        sa.Column('core_seconds', sa.Float(), nullable=False, server_default='0'),
        sa.Column('body', sa.Text(), nullable=False),
        sa.UniqueConstraint('account', 'interval_key', 'pool_id_key', name='uq_pool_usage_interval_pool'),
    )

    op.create_table(
        'certificates',
        sa.Column('pk', _PK, primary_key=True, autoincrement=True),
        sa.Column('account', sa.String(64), nullable=False),
        sa.Column('id_key', sa.String(64).with_variant(sa.String(64, collation='C'), 'postgresql'), nullable=False),
        sa.Column('state', sa.String(24), nullable=False),
        sa.Column('state_transition_time', sa.DateTime(), nullable=False),
        sa.Column('etag', sa.String(40), nullable=False),
        sa.Column('last_modified', sa.DateTime(), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.UniqueConstraint('account', 'id_key', name='uq_certificates_account_id'),
    )


def downgrade() -> None:
    op.drop_table('certificates')
    op.drop_table('pool_usage')
    with op.batch_alter_table('agents') as batch:
        batch.drop_column('usage')
    op.drop_index('ix_pool_samples_time', 'pool_samples')
    op.drop_index('ix_pool_samples_pool_time', 'pool_samples')
    op.drop_table('pool_samples')
    with op.batch_alter_table('nodes') as batch:
        batch.drop_column('dedicated')
    op.drop_index('ix_pools_autoscale_due_at', 'pools')
    with op.batch_alter_table('pools') as batch:
        batch.drop_column('autoscale_due_at')
