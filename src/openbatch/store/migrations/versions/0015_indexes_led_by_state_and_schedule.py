"""ix_tasks_state_job_id and ix_jobs_schedule_account_id replace ix_tasks_job_state_id and
ix_jobs_account_schedule: their leading columns no longer share a prefix with a unique key

A point read by (job_pk, id_key) could be planned on (job_pk, state, id_key): equal in cost
while the statistics say the job has few rows (any job newer than the last ANALYZE), it reads
every entry of the job. Led by state (and job_schedule_key), the indexes serve the same lists
and can no longer be taken for a probe of one task (one job).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 09:00:00
"""
from alembic import op


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_tasks_job_state_id', table_name='tasks')
    op.create_index('ix_tasks_state_job_id', 'tasks', ['state', 'job_pk', 'id_key'])
    op.drop_index('ix_jobs_account_schedule', table_name='jobs')
    op.create_index('ix_jobs_schedule_account_id', 'jobs', ['job_schedule_key', 'account', 'id_key'])


def downgrade() -> None:
    op.drop_index('ix_jobs_schedule_account_id', table_name='jobs')
    op.create_index('ix_jobs_account_schedule', 'jobs', ['account', 'job_schedule_key', 'id_key'])
    op.drop_index('ix_tasks_state_job_id', table_name='tasks')
    op.create_index('ix_tasks_job_state_id', 'tasks', ['job_pk', 'state', 'id_key'])
