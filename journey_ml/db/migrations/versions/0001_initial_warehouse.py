"""initial warehouse

Revision ID: 0001
Revises: 
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('accounts',
    sa.Column('account_id', sa.String(length=128).with_variant(sa.String(length=128, collation='C'), 'postgresql'), nullable=False),
    sa.Column('name', sa.String(length=256), nullable=True),
    sa.Column('industry', sa.String(length=128), nullable=True),
    sa.Column('employees', sa.Integer(), nullable=True),
    sa.Column('annual_revenue', sa.Float(), nullable=True),
    sa.Column('country', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attributes', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('ingest_run_id', sa.String(length=36), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('account_id', name=op.f('pk_accounts'))
    )
    op.create_table('contacts',
    sa.Column('contact_id', sa.String(length=128).with_variant(sa.String(length=128, collation='C'), 'postgresql'), nullable=False),
    sa.Column('account_id', sa.String(length=128).with_variant(sa.String(length=128, collation='C'), 'postgresql'), nullable=True),
    sa.Column('email_hash', sa.String(length=64), nullable=True),
    sa.Column('role', sa.String(length=64), nullable=True),
    sa.Column('opted_out', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attributes', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('ingest_run_id', sa.String(length=36), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('contact_id', name=op.f('pk_contacts'))
    )
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contacts_account_id'), ['account_id'], unique=False)

    op.create_table('erasure_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('subject_hash', sa.String(length=64), nullable=False),
    sa.Column('subject_kind', sa.String(length=16), nullable=False),
    sa.Column('erased_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('rows_deleted', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_erasure_log'))
    )
    with op.batch_alter_table('erasure_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_erasure_log_subject_hash'), ['subject_hash'], unique=False)

    op.create_table('events',
    sa.Column('source', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=False),
    sa.Column('event_id', sa.String(length=128).with_variant(sa.String(length=128, collation='C'), 'postgresql'), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('contact_id', sa.String(length=128).with_variant(sa.String(length=128, collation='C'), 'postgresql'), nullable=True),
    sa.Column('account_id', sa.String(length=128).with_variant(sa.String(length=128, collation='C'), 'postgresql'), nullable=True),
    sa.Column('event_type', sa.String(length=128), nullable=False),
    sa.Column('channel', sa.String(length=64), nullable=True),
    sa.Column('stage', sa.String(length=32), nullable=True),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('properties', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('ingest_run_id', sa.String(length=36), nullable=True),
    sa.PrimaryKeyConstraint('source', 'event_id', name=op.f('pk_events'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_account_time', ['account_id', 'occurred_at'], unique=False)
        batch_op.create_index('ix_events_contact_time', ['contact_id', 'occurred_at'], unique=False)
        batch_op.create_index('ix_events_occurred_at', ['occurred_at'], unique=False, postgresql_using='brin')

    op.create_table('ingest_batches',
    sa.Column('batch_key', sa.String(length=64), nullable=False),
    sa.Column('run_id', sa.String(length=36), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('file', sa.Text(), nullable=False),
    sa.Column('batch_no', sa.Integer(), nullable=False),
    sa.Column('rows_read', sa.Integer(), nullable=False),
    sa.Column('rows_loaded', sa.Integer(), nullable=False),
    sa.Column('rows_duplicate', sa.Integer(), nullable=False),
    sa.Column('rows_rejected', sa.Integer(), nullable=False),
    sa.Column('rows_suppressed', sa.Integer(), nullable=False),
    sa.Column('applied_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('batch_key', name=op.f('pk_ingest_batches'))
    )
    with op.batch_alter_table('ingest_batches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ingest_batches_run_id'), ['run_id'], unique=False)

    op.create_table('ingest_runs',
    sa.Column('run_id', sa.String(length=36), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('files', sa.Integer(), nullable=False),
    sa.Column('rows_read', sa.BigInteger(), nullable=False),
    sa.Column('rows_loaded', sa.BigInteger(), nullable=False),
    sa.Column('rows_duplicate', sa.BigInteger(), nullable=False),
    sa.Column('rows_rejected', sa.BigInteger(), nullable=False),
    sa.Column('rows_suppressed', sa.BigInteger(), nullable=False),
    sa.Column('unknown_event_types', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('watermark', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('run_id', name=op.f('pk_ingest_runs'))
    )
    with op.batch_alter_table('ingest_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ingest_runs_source'), ['source'], unique=False)

    op.create_table('outcomes',
    sa.Column('source', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=False),
    sa.Column('outcome_id', sa.String(length=128).with_variant(sa.String(length=128, collation='C'), 'postgresql'), nullable=False),
    sa.Column('outcome', sa.String(length=64), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('contact_id', sa.String(length=128).with_variant(sa.String(length=128, collation='C'), 'postgresql'), nullable=True),
    sa.Column('account_id', sa.String(length=128).with_variant(sa.String(length=128, collation='C'), 'postgresql'), nullable=True),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('properties', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('ingest_run_id', sa.String(length=36), nullable=True),
    sa.PrimaryKeyConstraint('source', 'outcome_id', name=op.f('pk_outcomes'))
    )
    with op.batch_alter_table('outcomes', schema=None) as batch_op:
        batch_op.create_index('ix_outcomes_account_time', ['account_id', 'occurred_at'], unique=False)
        batch_op.create_index('ix_outcomes_contact_time', ['contact_id', 'occurred_at'], unique=False)

    op.create_table('quarantine',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.String(length=36), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('file', sa.Text(), nullable=False),
    sa.Column('row_number', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('raw', sa.Text(), nullable=False),
    sa.Column('contact_id', sa.String(length=128).with_variant(sa.String(length=128, collation='C'), 'postgresql'), nullable=True),
    sa.Column('account_id', sa.String(length=128).with_variant(sa.String(length=128, collation='C'), 'postgresql'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quarantine'))
    )
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quarantine_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_quarantine_contact_id'), ['contact_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_quarantine_run_id'), ['run_id'], unique=False)

    op.create_table('tombstones',
    sa.Column('subject_hash', sa.String(length=64), nullable=False),
    sa.Column('subject_kind', sa.String(length=16), nullable=False),
    sa.Column('erased_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('subject_hash', name=op.f('pk_tombstones'))
    )


def downgrade() -> None:
    op.drop_table('tombstones')
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quarantine_run_id'))
        batch_op.drop_index(batch_op.f('ix_quarantine_contact_id'))
        batch_op.drop_index(batch_op.f('ix_quarantine_account_id'))

    op.drop_table('quarantine')
    with op.batch_alter_table('outcomes', schema=None) as batch_op:
        batch_op.drop_index('ix_outcomes_contact_time')
        batch_op.drop_index('ix_outcomes_account_time')

    op.drop_table('outcomes')
    with op.batch_alter_table('ingest_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ingest_runs_source'))

    op.drop_table('ingest_runs')
    with op.batch_alter_table('ingest_batches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ingest_batches_run_id'))

    op.drop_table('ingest_batches')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_occurred_at', postgresql_using='brin')
        batch_op.drop_index('ix_events_contact_time')
        batch_op.drop_index('ix_events_account_time')

    op.drop_table('events')
    with op.batch_alter_table('erasure_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_erasure_log_subject_hash'))

    op.drop_table('erasure_log')
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contacts_account_id'))

    op.drop_table('contacts')
    op.drop_table('accounts')
