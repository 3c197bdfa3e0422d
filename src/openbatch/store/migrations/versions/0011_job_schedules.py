"""Job schedules: the job_schedules table, jobs.job_schedule_key, job ids up to 128 characters

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 11:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

_PK = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def _key(length: int) -> sa.types.TypeEngine:
    return sa.String(length).with_variant(sa.String(length, collation='C'), 'postgresql')


def upgrade() -> None:
    op.create_table(
        'job_schedules',
        sa.Column('pk', _PK, primary_key=True, autoincrement=True),
        sa.Column('account', sa.String(64), nullable=False),
        sa.Column('id', sa.String(64), nullable=False),
        sa.Column('id_key', _key(64), nullable=False),
        sa.Column('state', sa.String(24), nullable=False),
        sa.Column('creation_time', sa.DateTime(), nullable=False),
        sa.Column('state_transition_time', sa.DateTime(), nullable=False),
        sa.Column('end_time', sa.DateTime(), nullable=True),
        sa.Column('do_not_run_until', sa.DateTime(), nullable=True),
        sa.Column('do_not_run_after', sa.DateTime(), nullable=True),
        sa.Column('etag', sa.String(40), nullable=False),
        sa.Column('last_modified', sa.DateTime(), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('origin', sa.DateTime(), nullable=False),
        sa.Column('next_index', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('due_at', sa.DateTime(), nullable=True),
        sa.Column('jobs_created', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('pool_id', sa.String(64), nullable=True),
        sa.UniqueConstraint('account', 'id_key', name='uq_job_schedules_account_id'),
    )
    op.create_index('ix_job_schedules_due_at', 'job_schedules', ['due_at'])
    with op.batch_alter_table('jobs') as batch:
        batch.alter_column('id', type_=sa.String(128), existing_nullable=False)
        batch.alter_column('id_key', type_=_key(128), existing_nullable=False)
        batch.add_column(sa.Column('job_schedule_key', _key(64), nullable=True))
    op.create_index('ix_jobs_account_schedule', 'jobs', ['account', 'job_schedule_key', 'id_key'])


def downgrade() -> None:
    op.drop_index('ix_jobs_account_schedule', 'jobs')
    with op.batch_alter_table('jobs') as batch:
        batch.drop_column('job_schedule_key')
        batch.alter_column('id_key', type_=_key(64), existing_nullable=False)
        batch.alter_column('id', type_=sa.String(64), existing_nullable=False)
    op.drop_index('ix_job_schedules_due_at', 'job_schedules')
    op.drop_table('job_schedules')
