"""ingest hardening (issue #9): run holders, quarantine line numbers, exact tombstones

* ``ingest_runs.holder`` / ``heartbeat_at`` (and an index on ``status``): a later run marks
  a "running" row whose holder is gone as ``abandoned`` (status values are free text, so
  the new value needs no DDL);
* ``quarantine.line_number``: the line of the file where a rejected row starts (NULL for
  rows quarantined before this migration: their line was never recorded);
* ``tombstones.hash_form``: tombstone hashes used to be taken of the lower-cased id, so a
  tombstone for ``0035e00000ABCDE`` also blocked ``0035e00000AbCdE``. New tombstones hash
  the id exactly. The hashes are keyed and the erased ids are gone, so existing tombstones
  cannot be re-hashed: they are kept as ``casefold`` tombstones and still matched the old
  way (every letter case of the erased id stays blocked, as before). Erasing the person
  again adds an exact tombstone; the legacy one stays, since nobody can tell which letter
  case it was written for.

Downgrade drops the three columns; exact tombstones of ids with capitals would then no
longer match the old code's lower-cased hashes (re-erase those subjects after a downgrade).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('ingest_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('holder', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_ingest_runs_status', ['status'], unique=False)

    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.add_column(sa.Column('line_number', sa.BigInteger(), nullable=True))

    # existing rows are the legacy, case-folded form; the default is then removed so that
    # every new tombstone states its form
    with op.batch_alter_table('tombstones', schema=None) as batch_op:
        batch_op.add_column(sa.Column('hash_form', sa.String(length=16), nullable=False,
                                      server_default='casefold'))
    with op.batch_alter_table('tombstones', schema=None) as batch_op:
        batch_op.alter_column('hash_form', server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('tombstones', schema=None) as batch_op:
        batch_op.drop_column('hash_form')

    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.drop_column('line_number')

    with op.batch_alter_table('ingest_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_ingest_runs_status')
        batch_op.drop_column('heartbeat_at')
        batch_op.drop_column('holder')
