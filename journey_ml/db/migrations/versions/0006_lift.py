"""lift (issue #13): outcome rate of each next-best action against its random holdout

One row per (task, scoring as-of date, action, band, segment), written by
`journey-ml journeys lift` once the task's horizon has passed for that scoring date.
``band`` / ``segment`` ``(all)`` is the action over every band / segment.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def _key(n: int) -> sa.String:
    return sa.String(length=n).with_variant(sa.String(length=n, collation='C'), 'postgresql')


def upgrade() -> None:
    op.create_table('lift',
    sa.Column('task', _key(64), nullable=False),
    sa.Column('score_as_of', sa.DateTime(timezone=True), nullable=False),
    sa.Column('action', sa.String(length=512), nullable=False),
    sa.Column('band', sa.String(length=32), nullable=False),
    sa.Column('segment', sa.String(length=64), nullable=False),
    sa.Column('treated_n', sa.Integer(), nullable=False),
    sa.Column('treated_rate', sa.Float(), nullable=True),
    sa.Column('holdout_n', sa.Integer(), nullable=False),
    sa.Column('holdout_rate', sa.Float(), nullable=True),
    sa.Column('difference', sa.Float(), nullable=True),
    sa.Column('ci_low', sa.Float(), nullable=True),
    sa.Column('ci_high', sa.Float(), nullable=True),
    sa.Column('p_value', sa.Float(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('horizon_days', sa.Integer(), nullable=False),
    sa.Column('measured_as_of', sa.DateTime(timezone=True), nullable=False),
    sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('task', 'score_as_of', 'action', 'band', 'segment', name=op.f('pk_lift'))
    )


def downgrade() -> None:
    op.drop_table('lift')
