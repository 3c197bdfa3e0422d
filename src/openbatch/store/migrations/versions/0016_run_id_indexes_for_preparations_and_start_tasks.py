"""ix_prep_release_prep_run, ix_prep_release_release_run, ix_nodes_start_run: the rows a preparation's,
release's or start task's report names by its run id

Each such report reads its row by run id; without an index that read scanned every job's rows on
every node (and, with seq scans priced out of the server's plans, a seq scan's cost also set off
JIT compilation: ~60 ms a report with 1,000 nodes).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 12:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def _where(predicate: str) -> dict:
    return {"sqlite_where": sa.text(predicate), "postgresql_where": sa.text(predicate)}


def upgrade() -> None:
    op.create_index('ix_prep_release_prep_run', 'prep_release', ['prep_run_id'], **_where("prep_run_id IS NOT NULL"))
    op.create_index('ix_prep_release_release_run', 'prep_release', ['release_run_id'],
                    **_where("release_run_id IS NOT NULL"))
    op.create_index('ix_nodes_start_run', 'nodes', ['start_run_id'], **_where("start_run_id IS NOT NULL"))


def downgrade() -> None:
    op.drop_index('ix_nodes_start_run', table_name='nodes')
    op.drop_index('ix_prep_release_release_run', table_name='prep_release')
    op.drop_index('ix_prep_release_prep_run', table_name='prep_release')
