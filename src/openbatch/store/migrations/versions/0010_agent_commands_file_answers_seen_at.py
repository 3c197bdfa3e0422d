"""Several servers on one PostgreSQL: agent_commands, file_answers, agents.seen_at

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 05:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'agent_commands',
        sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), primary_key=True, autoincrement=True),
        sa.Column('agent_id', sa.String(64), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
    )
    op.create_index('ix_agent_commands_agent_id', 'agent_commands', ['agent_id'])
    op.create_table(
        'file_answers',
        sa.Column('request_id', sa.String(64), primary_key=True),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('created', sa.DateTime(), nullable=False),
    )
    with op.batch_alter_table('agents') as batch:
        batch.add_column(sa.Column('seen_at', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('agents') as batch:
        batch.drop_column('seen_at')
    op.drop_table('file_answers')
    op.drop_index('ix_agent_commands_agent_id', 'agent_commands')
    op.drop_table('agent_commands')
