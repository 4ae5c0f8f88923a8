"""score next step (issue #13): each score carries its journey's predicted stage and next steps

``stage``: the entity's predicted current journey stage as of the score's T; ``next_steps``:
the probability of each next step ({step: p}, with ``(conversion)`` and ``(exit)``) from the
task's Markov chain fitted on journeys strictly before T. Both are NULL for rows written
before this revision, and ``next_steps`` is NULL when the entity's journey has ended.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('scores', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stage', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('next_steps', sa.JSON().with_variant(
            postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('scores', schema=None) as batch_op:
        batch_op.drop_column('next_steps')
        batch_op.drop_column('stage')
