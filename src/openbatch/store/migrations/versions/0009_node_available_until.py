"""nodes.available_until: when a node's allocation ends (Slurm time limits), NULL when it does not

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 03:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('nodes') as batch:
        batch.add_column(sa.Column('available_until', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('nodes') as batch:
        batch.drop_column('available_until')
