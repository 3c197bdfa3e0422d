"""Multi-instance tasks: subtasks

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 17:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

_PK = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def _where(predicate: str) -> dict:
    return {"sqlite_where": sa.text(predicate), "postgresql_where": sa.text(predicate)}


def upgrade() -> None:
    op.create_table(
        'subtasks',
        sa.Column('pk', _PK, primary_key=True, autoincrement=True),
        sa.Column('task_pk', _PK, sa.ForeignKey('tasks.pk', ondelete='CASCADE', name='fk_subtasks_task_pk_tasks'),
                  nullable=False),
        sa.Column('instance', sa.Integer(), nullable=False),
        sa.Column('node_pk', _PK, nullable=True),
        sa.Column('run_id', sa.String(64), nullable=True),
        sa.Column('coordinated', sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column('body', sa.Text(), nullable=False),
        sa.UniqueConstraint('task_pk', 'instance', name='uq_subtasks_task_instance'),
    )
    op.create_index('ix_subtasks_node', 'subtasks', ['node_pk'], **_where("run_id IS NOT NULL"))
    op.create_index('ix_subtasks_run', 'subtasks', ['run_id'], **_where("run_id IS NOT NULL"))


def downgrade() -> None:
    op.drop_index('ix_subtasks_run', table_name='subtasks')
    op.drop_index('ix_subtasks_node', table_name='subtasks')
    op.drop_table('subtasks')
