"""monitor runs keep the performance estimated before labels mature (issue #11.3)

* ``monitor_runs.estimated``: confidence-based performance estimation (CBPE) of the production
  version on the population as of T (expected confusion matrix, accuracy, ROC AUC);
* ``monitor_runs.estimation_error``: once the labels of an estimated date have matured, the
  estimated minus the realised ROC AUC, recorded on the run of that date.

Downgrade drops both columns (the estimates are lost).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN (no batch mode): SQLite adds nullable columns in place, without copying the table
    op.add_column('monitor_runs', sa.Column('estimated', sa.JSON().with_variant(
        postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True))
    op.add_column('monitor_runs', sa.Column('estimation_error', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('monitor_runs', schema=None) as batch_op:
        batch_op.drop_column('estimation_error')
        batch_op.drop_column('estimated')
