"""server_lease: who holds the database (one server per database until scale-out)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 00:05:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'server_lease',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('holder', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_server_lease')),
    )


def downgrade() -> None:
    op.drop_table('server_lease')
