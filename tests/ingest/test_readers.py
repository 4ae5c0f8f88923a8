"""Readers: every row's ordinal and starting line, whatever the file's shape (case 15 of #9)."""

from __future__ import annotations

from pathlib import Path

import pytest

from journey_ml.ingest.readers import read_batches

HEAD = "a,b,c"


def _good(i: int) -> list[str]:
    return [f"r{i},{'x' * 40},y"]  # ~50 bytes: 3000 rows span several 64 KiB blocks


# (case, file content as a list of records (each a list of physical lines) and "" blank lines,
#  newline used between lines)
def _shapes() -> list[tuple[str, list, str]]:
    multi = ['r2,"one', 'two",y']
    bad = ["r3,x"]
    many = [_good(i) for i in range(3000)]
    return [
        ("plain", [_good(1), _good(2), _good(3)], "\n"),
        ("multi-line value", [_good(1), multi, _good(3)], "\n"),
        ("multi-line value, CRLF", [_good(1), multi, _good(3)], "\r\n"),
        ("blank lines inside", [_good(1), "", "", multi, _good(4)], "\n"),
        ("blank lines at the end", [_good(1), _good(2), "", ""], "\n"),
        ("malformed rows", [_good(1), bad, multi, ["r4,x,y,z"], _good(5)], "\n"),
        ("malformed row, CRLF", [_good(1), bad, multi, _good(4)], "\r\n"),
        ("lone CR line ends", [_good(1), bad, _good(3)], "\r"),
        ("malformed first and last", [bad, _good(2), bad], "\n"),
        ("malformed in a later block", many[:2500] + [bad] + [multi] + many[2500:2600], "\n"),
        ("multi-line values across blocks", many[:1500] + [multi] + many[1500:2800] + [multi] + many[2800:], "\n"),
    ]


SHAPES = _shapes()


@pytest.mark.parametrize(("case", "records", "nl"), SHAPES, ids=[s[0] for s in SHAPES])
def test_csv_rows_carry_their_ordinal_and_line(tmp_path: Path, case, records, nl):
    lines = [HEAD]
    expected = []  # (ordinal, line, well-formed)
    ordinal = 0
    for rec in records:
        if rec == "":
            lines.append("")
            continue
        ordinal += 1
        expected.append((ordinal, len(lines) + 1, rec[0].count(",") == 2 or len(rec) > 1))
        lines.extend(rec)
    path = tmp_path / "f.csv"
    path.write_bytes((nl.join(lines) + nl).encode())

    got = []
    batches = list(read_batches(path, "csv", batch_rows=1000))
    assert len(batches) > 1 or len(records) < 100
    for batch in batches:
        assert batch.line_numbers is not None
        got += [(int(o), int(ln), True) for o, ln in zip(batch.row_numbers, batch.line_numbers, strict=True)]
        got += [(b.row_number, b.line_number, False) for b in batch.bad_rows]
    assert sorted(got) == expected
    # the values are read as written (a quoted line break stays in the value)
    if case.startswith("multi-line value"):
        assert any(b.frame["b"].str.contains("one\ntwo|one\r\ntwo").any() for b in batches)
