"""Spreadsheet-safe CSV: formulas neutralised (the OWASP list, tab, CR and LF included), RFC 4180
quoting, UTF-8 with a byte-order mark."""

from __future__ import annotations

import asyncio
import csv
import io

import pytest

from spotless.domain.exports.csvsafe import BOM, csv_bytes, csv_chunks, money, neutralise

HOSTILE = ['=HYPERLINK("http://evil")', "+1+2", "-3+4", "@SUM(A1:A9)", "\tTAB", "\rCR", "\nLF"]


@pytest.mark.parametrize("value", HOSTILE)
def test_every_formula_start_is_neutralised(value):
    assert neutralise(value) == "'" + value


@pytest.mark.parametrize("value", ["plain", "a=b", "1+1", " =lead space", "", "'quoted"])
def test_other_text_is_kept(value):
    assert neutralise(value) == value


def test_quoting_is_rfc4180_and_the_file_starts_with_a_bom():
    data = csv_bytes(("name", "note", "amount"), [('Ada "A", Lovelace', "line1\nline2", money(-1234))])
    text = data.decode("utf-8")
    assert text.startswith(BOM)
    assert text == BOM + 'name,note,amount\r\n"Ada ""A"", Lovelace","line1\nline2",-12.34\r\n'
    rows = list(csv.reader(io.StringIO(text[1:])))
    assert rows == [["name", "note", "amount"], ['Ada "A", Lovelace', "line1\nline2", "-12.34"]]


def test_hostile_cells_come_out_as_text_and_numbers_stay_numbers():
    data = csv_bytes(("v", "n", "m"), [(value, -5, money(-5)) for value in HOSTILE])
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))[1:]
    assert [row[0] for row in rows] == ["'" + value for value in HOSTILE]
    assert {row[1] for row in rows} == {"-5"} and {row[2] for row in rows} == {"-0.05"}


def test_chunks_are_bounded_and_join_to_the_whole():
    async def rows():
        for i in range(20_000):
            yield (f"client {i}", "x" * 40)

    async def collect():
        return [chunk async for chunk in csv_chunks(("a", "b"), rows())]

    chunks = asyncio.run(collect())
    assert len(chunks) > 10
    assert max(len(c) for c in chunks) < 80 * 1024
    whole = b"".join(chunks).decode("utf-8-sig")
    assert whole.count("\r\n") == 20_001
