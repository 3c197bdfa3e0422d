"""tasks.reserved_*: an active task reserved for a node (prefetch): its queued run, node, agent and when

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 02:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

_PK = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def _where(predicate: str) -> dict:
    return {"sqlite_where": sa.text(predicate), "postgresql_where": sa.text(predicate)}


def upgrade() -> None:
    with op.batch_alter_table('tasks') as batch:
        batch.add_column(sa.Column('reserved_run_id', sa.String(64), nullable=True))
        batch.add_column(sa.Column('reserved_node_pk', _PK, nullable=True))
        batch.add_column(sa.Column('reserved_agent_id', sa.String(64), nullable=True))
        batch.add_column(sa.Column('reserved_at', sa.DateTime(), nullable=True))
    op.create_index('ix_tasks_reserved_run', 'tasks', ['reserved_run_id'], **_where("reserved_run_id IS NOT NULL"))
    op.create_index('ix_tasks_reserved_node', 'tasks', ['reserved_node_pk'],
                    **_where("reserved_node_pk IS NOT NULL"))
    op.create_index('ix_tasks_reserved_agent', 'tasks', ['reserved_agent_id'],
                    **_where("reserved_agent_id IS NOT NULL"))


def downgrade() -> None:
    op.drop_index('ix_tasks_reserved_agent', table_name='tasks')
    op.drop_index('ix_tasks_reserved_node', table_name='tasks')
    op.drop_index('ix_tasks_reserved_run', table_name='tasks')
    with op.batch_alter_table('tasks') as batch:
        batch.drop_column('reserved_at')
        batch.drop_column('reserved_agent_id')
        batch.drop_column('reserved_node_pk')
        batch.drop_column('reserved_run_id')
