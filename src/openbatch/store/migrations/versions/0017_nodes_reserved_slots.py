"""nodes.reserved_slots: the slots a node's reservations hold, kept with them (prefetch)

Rounds read it for every open node. It was a sum over the node's reserved tasks, read through
ix_tasks_reserved_node; on PostgreSQL that index keeps an entry for every reservation the node ever
had until a vacuum removes it, and each sum visited them all: 11,700 entries a read after 60,000
`/bin/true`, and tasks/s fell by a third (bench figure 1 with 60,000 tasks: 602 against 862 with a
VACUUM every half second).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 15:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('nodes') as batch:
        batch.add_column(sa.Column('reserved_slots', sa.Integer(), nullable=False, server_default='0'))
    op.execute("UPDATE nodes SET reserved_slots = (SELECT COALESCE(SUM(tasks.required_slots), 0) FROM tasks "
               "WHERE tasks.reserved_node_pk = nodes.pk)")


def downgrade() -> None:
    with op.batch_alter_table('nodes') as batch:
        batch.drop_column('reserved_slots')
