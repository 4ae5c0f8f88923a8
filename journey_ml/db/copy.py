"""Bulk writes into PostgreSQL by ``COPY ... FROM STDIN`` from an Arrow table."""

from __future__ import annotations

import io


def copy_arrow(raw, target: str, table, *, chunk_rows: int = 100_000) -> int:
    """Write the rows of the pyarrow Table ``table`` into the columns of the same names of
    table ``target`` on the psycopg connection ``raw``, as CSV in chunks of ``chunk_rows``.
    Nulls go as unquoted empty fields (NULL), strings quoted (so "" stays an empty string).
    Returns the rows written; raises what psycopg raises."""
    import pyarrow.csv as pcsv

    opts = pcsv.WriteOptions(include_header=False)
    with raw.cursor() as cur, cur.copy(
            f"COPY {target} ({', '.join(table.column_names)}) FROM STDIN (FORMAT csv)") as cp:
        for start in range(0, table.num_rows, chunk_rows):
            buf = io.BytesIO()
            pcsv.write_csv(table.slice(start, chunk_rows), buf, opts)
            cp.write(buf.getvalue())
    return table.num_rows
