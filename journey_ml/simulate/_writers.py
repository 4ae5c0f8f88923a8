"""Append-only writers for every export file, fed chunk by chunk (bounded memory)."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from journey_ml.simulate import _tables as tb
from journey_ml.simulate._format import Calendar, csv_header, csv_lines, json_lines, text_bytes

CSV_FILES: dict[str, tuple[str, tuple[str, ...]]] = {
    "accounts": ("crm/accounts.csv", tb.ACCOUNT_COLUMNS),
    "contacts": ("crm/contacts.csv", tb.CONTACT_COLUMNS),
    "email": ("email/email_activity.csv", tb.EMAIL_COLUMNS),
    "webinars": ("webinars/webinars.csv", tb.WEBINAR_COLUMNS),
    "sales": ("sales/activities.csv", tb.SALES_COLUMNS),
    "support": ("support/tickets.csv", tb.SUPPORT_COLUMNS),
    "truth": ("truth/accounts_truth.csv", tb.TRUTH_COLUMNS),
}
EVENT_SOURCES = ("web", "email", "webinars", "sales", "support", "billing", "product")
BILLING_FILE = "billing/billing.parquet"


def web_file(month: str) -> str:
    return f"web/web-{month}.jsonl"


def product_file(month: str) -> str:
    return f"product/usage-{month}.parquet"


def remove_stale(out_dir: Path) -> None:
    """Delete monthly exports of an earlier run, which would otherwise be ingested too."""
    for pattern in ("web/web-*.jsonl", "product/usage-*.parquet"):
        for path in out_dir.glob(pattern):
            path.unlink()


class Sink:
    """All output files of one simulation; counts the rows written to each."""

    def __init__(self, out_dir: Path, cal: Calendar) -> None:
        self._out = out_dir
        self._stack = ExitStack()
        self._months = [m.strftime("%Y-%m") for m in cal.months]
        self.rows: dict[str, int] = {}
        self._csv: dict[str, BinaryIO] = {}
        for name, (rel, cols) in CSV_FILES.items():
            self._csv[name] = self._open(rel)
            self._csv[name].write(csv_header(cols))
        self._web = [self._open(web_file(m)) for m in self._months]
        self._billing = self._parquet(BILLING_FILE, tb.BILLING_SCHEMA)
        self._product = [self._parquet(product_file(m), tb.PRODUCT_SCHEMA) for m in self._months]

    def _path(self, rel: str) -> Path:
        path = self._out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        self.rows[rel] = 0
        return path

    def _open(self, rel: str) -> BinaryIO:
        return self._stack.enter_context(open(self._path(rel), "wb"))  # noqa: SIM115

    def _parquet(self, rel: str, schema: pa.Schema) -> pq.ParquetWriter:
        writer = pq.ParquetWriter(self._path(rel), schema)
        self._stack.callback(writer.close)
        return writer

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def write(self, name: str, table: pa.Table) -> None:
        """Append a chunk of one source's rows."""
        if name in CSV_FILES:
            rel, cols = CSV_FILES[name]
            self._csv[name].write(text_bytes(csv_lines(table.select(list(cols)))))
            self.rows[rel] += table.num_rows
        elif name == "web":
            self._write_web(table)
        elif name == "billing":
            self._billing.write_table(table)
            self.rows[BILLING_FILE] += table.num_rows
        elif name == "product":
            month = table.column("_month").to_numpy()
            data = table.drop_columns(["_month"])
            for m, writer in enumerate(self._product):
                part = data.filter(pa.array(month == m))
                if part.num_rows:
                    writer.write_table(part)
                    self.rows[product_file(self._months[m])] += part.num_rows
        else:
            raise KeyError(name)

    def _write_web(self, table: pa.Table) -> None:
        month = table.column("_month").to_numpy()
        overlap = table.column("_overlap").to_numpy(zero_copy_only=False)
        data = table.select(list(tb.WEB_COLUMNS))
        for m, fh in enumerate(self._web):
            # real exports repeat the last two days of the previous month
            part = data.filter(pa.array((month == m) | ((month == m - 1) & overlap)))
            if part.num_rows:
                fh.write(text_bytes(json_lines(part, numeric=frozenset({"duration_s"}))))
                self.rows[web_file(self._months[m])] += part.num_rows

    def event_rows(self) -> int:
        """Rows written to all event files so far."""
        return sum(n for rel, n in self.rows.items() if not rel.startswith(("crm/", "truth/")))
