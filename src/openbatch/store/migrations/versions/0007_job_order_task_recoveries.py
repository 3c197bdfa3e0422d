"""jobs.last_served (jobDefaultOrder none) and tasks.recoveries (runs again after a lost node)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 23:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_served', sa.DateTime(), nullable=True))
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('recoveries', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_column('recoveries')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('last_served')
