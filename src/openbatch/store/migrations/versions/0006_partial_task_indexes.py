"""partial task indexes

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 03:10:00.000000

The tasks' node, run and retention indexes keep only the rows that have a value, and
the scheduling index only active tasks: adding a task writes two index entries instead
of six, and a transition touches each of these indexes at most once.
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

_PARTIAL = [
    ('ix_tasks_node', ['node_pk'], "node_pk IS NOT NULL"),
    ('ix_tasks_run', ['run_id'], "run_id IS NOT NULL"),
    ('ix_tasks_retain_until', ['retain_until'], "retain_until IS NOT NULL"),
]


def _where(predicate: str) -> dict:
    return {"sqlite_where": sa.text(predicate), "postgresql_where": sa.text(predicate)}


def upgrade() -> None:
    op.drop_index('ix_tasks_job_state_pk', table_name='tasks')
    op.create_index('ix_tasks_active', 'tasks', ['job_pk', 'pk'], **_where("state = 'active'"))
    for name, columns, predicate in _PARTIAL:
        op.drop_index(name, table_name='tasks')
        op.create_index(name, 'tasks', columns, **_where(predicate))


def downgrade() -> None:
    for name, columns, _ in _PARTIAL:
        op.drop_index(name, table_name='tasks')
        op.create_index(name, 'tasks', columns)
    op.drop_index('ix_tasks_active', table_name='tasks')
    op.create_index('ix_tasks_job_state_pk', 'tasks', ['job_pk', 'state', 'pk'])
