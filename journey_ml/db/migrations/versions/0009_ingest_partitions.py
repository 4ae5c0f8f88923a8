"""ingest partitions (issue #14): the batch ledger records the partition of each batch

A batch is split by key hash into ``partitions`` parts, each loaded on its own connection in
its own transaction with its own ledger row, so the ledger's key becomes
(``batch_key``, ``partition_no``). Existing rows are whole batches: partition 0 of 1.

Downgrade folds every complete partitioned batch into one row (partition 0, counts summed)
and deletes the rows of batches a killed run left incomplete: the older code then re-applies
those batches, and the rows already loaded count as duplicates.

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('ingest_batches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('partition_no', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('partitions', sa.Integer(), nullable=False, server_default='1'))
        batch_op.drop_constraint('pk_ingest_batches', type_='primary')
        batch_op.create_primary_key('pk_ingest_batches', ['batch_key', 'partition_no'])
    with op.batch_alter_table('ingest_batches', schema=None) as batch_op:
        batch_op.alter_column('partition_no', server_default=None)
        batch_op.alter_column('partitions', server_default=None)


_PARTS = "(SELECT count(*) FROM ingest_batches b WHERE b.batch_key = ingest_batches.batch_key)"


def _sum(col: str) -> str:
    return f"{col} = (SELECT sum(b.{col}) FROM ingest_batches b WHERE b.batch_key = ingest_batches.batch_key)"


def downgrade() -> None:
    op.execute(f"DELETE FROM ingest_batches WHERE {_PARTS} < partitions")
    counts = ("rows_read", "rows_loaded", "rows_duplicate", "rows_rejected", "rows_suppressed")
    op.execute(f"UPDATE ingest_batches SET {', '.join(_sum(c) for c in counts)} "
               "WHERE partition_no = 0 AND partitions > 1")
    op.execute("DELETE FROM ingest_batches WHERE partition_no > 0")
    with op.batch_alter_table('ingest_batches', schema=None) as batch_op:
        batch_op.drop_constraint('pk_ingest_batches', type_='primary')
        batch_op.create_primary_key('pk_ingest_batches', ['batch_key'])
        batch_op.drop_column('partitions')
        batch_op.drop_column('partition_no')
