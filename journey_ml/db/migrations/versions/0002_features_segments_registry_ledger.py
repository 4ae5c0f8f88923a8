"""features segments registry ledger

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alias_ledger',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('model_name', sa.String(length=256), nullable=False),
    sa.Column('alias', sa.String(length=64), nullable=False),
    sa.Column('from_version', sa.Integer(), nullable=True),
    sa.Column('to_version', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alias_ledger'))
    )
    with op.batch_alter_table('alias_ledger', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alias_ledger_model_name'), ['model_name'], unique=False)

    op.create_table('feature_snapshots',
    sa.Column('task', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=False),
    sa.Column('as_of', sa.DateTime(timezone=True), nullable=False),
    sa.Column('entity_id', sa.String(length=128).with_variant(sa.String(length=128, collation='C'), 'postgresql'), nullable=False),
    sa.Column('feature_set_version', sa.String(length=32), nullable=False),
    sa.Column('segment', sa.String(length=64), nullable=True),
    sa.Column('features', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('label', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('task', 'as_of', 'entity_id', name=op.f('pk_feature_snapshots'))
    )
    with op.batch_alter_table('feature_snapshots', schema=None) as batch_op:
        batch_op.create_index('ix_feature_snapshots_entity', ['entity_id'], unique=False)

    op.create_table('reference_samples',
    sa.Column('model_name', sa.String(length=256), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('row_id', sa.Integer(), nullable=False),
    sa.Column('entity_id', sa.String(length=128).with_variant(sa.String(length=128, collation='C'), 'postgresql'), nullable=False),
    sa.Column('as_of', sa.DateTime(timezone=True), nullable=False),
    sa.Column('features', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('label', sa.Integer(), nullable=True),
    sa.Column('prediction', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('model_name', 'version', 'row_id', name=op.f('pk_reference_samples'))
    )
    with op.batch_alter_table('reference_samples', schema=None) as batch_op:
        batch_op.create_index('ix_reference_samples_entity', ['entity_id'], unique=False)

    op.create_table('segment_memberships',
    sa.Column('segmentation', sa.String(length=64).with_variant(sa.String(length=64, collation='C'), 'postgresql'), nullable=False),
    sa.Column('as_of', sa.DateTime(timezone=True), nullable=False),
    sa.Column('entity_id', sa.String(length=128).with_variant(sa.String(length=128, collation='C'), 'postgresql'), nullable=False),
    sa.Column('entity_kind', sa.String(length=16), nullable=False),
    sa.Column('segment', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('segmentation', 'as_of', 'entity_id', name=op.f('pk_segment_memberships'))
    )
    with op.batch_alter_table('segment_memberships', schema=None) as batch_op:
        batch_op.create_index('ix_segment_memberships_entity', ['entity_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('segment_memberships', schema=None) as batch_op:
        batch_op.drop_index('ix_segment_memberships_entity')

    op.drop_table('segment_memberships')
    with op.batch_alter_table('reference_samples', schema=None) as batch_op:
        batch_op.drop_index('ix_reference_samples_entity')

    op.drop_table('reference_samples')
    with op.batch_alter_table('feature_snapshots', schema=None) as batch_op:
        batch_op.drop_index('ix_feature_snapshots_entity')

    op.drop_table('feature_snapshots')
    with op.batch_alter_table('alias_ledger', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alias_ledger_model_name'))

    op.drop_table('alias_ledger')
