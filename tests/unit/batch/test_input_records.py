"""INPUT cut into bounded records: CSV records exactly where the csv module ends them, whatever
the chunk boundaries; a record over the limit as its size alone; every byte in one record."""

from __future__ import annotations

import csv
import io
import json
from typing import BinaryIO, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serving.batch.input_records import (
    DEFAULT_MAX_ROW_BYTES,
    Oversize,
    csv_records,
    default_max_row_bytes,
    jsonl_records,
)
from serving.core.settings import Settings


class Trickle:
    """A file that hands out at most ``step`` bytes per read: every chunk boundary is tried."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data, self._step, self._at = data, step, 0

    def read(self, size: int) -> bytes:
        piece = self._data[self._at : self._at + min(size, self._step)]
        self._at += len(piece)
        return piece


def _records(data: bytes, limit: int = 10**9, step: int = 1 << 20) -> list[bytes | Oversize]:
    return list(csv_records(cast(BinaryIO, Trickle(data, step)), limit))


@settings(max_examples=500, deadline=None)
@given(
    text=st.text(alphabet='a,"\r\n长 ', max_size=30),
    step=st.integers(min_value=1, max_value=5),
)
def test_csv_records_end_where_the_csv_module_ends_them(text: str, step: int) -> None:
    data = text.encode()
    records = _records(data, step=step)
    assert b"".join(cast(list[bytes], records)) == data
    parsed = [list(csv.reader([cast(bytes, r).decode()])) for r in records]
    assert all(len(rows) == 1 for rows in parsed), parsed  # one record each
    assert [rows[0] for rows in parsed] == list(csv.reader(io.StringIO(text, newline="")))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'a,"b\nc"\nd\n', [b'a,"b\nc"\n', b"d\n"]),  # a line end inside quotes
        (b'"a""\n",b\r\nc', [b'"a""\n",b\r\n', b"c"]),  # a doubled quote; no last line end
        (b'a"b\nc"d\n', [b'a"b\n', b'c"d\n']),  # a quote inside an unquoted field is text
        (b'"a"b\n"c\n', [b'"a"b\n', b'"c\n']),  # text after a closing quote; quote open at EOF
        (b"a\rb\r\n\nc", [b"a\r", b"b\r\n", b"\n", b"c"]),  # \r, \r\n, a blank line
    ],
)
def test_csv_records_at_every_chunk_boundary(data: bytes, expected: list[bytes]) -> None:
    for step in range(1, len(data) + 1):
        assert _records(data, step=step) == expected, step


@pytest.mark.parametrize("step", [1, 3, 1 << 16])
def test_a_record_over_the_limit_is_its_size_alone(step: int) -> None:
    quoted = b'"' + b"x\n" * 20 + b'"\n'  # 43 bytes, 21 lines
    data = b"a,b\n" + quoted + b"c,d\n" + b"e" * 11
    records = list(csv_records(cast(BinaryIO, Trickle(data, step)), 10))
    assert records == [b"a,b\n", Oversize(len(quoted)), b"c,d\n", Oversize(11)]


def test_the_limit_counts_the_line_end() -> None:
    data = b"12345678\n123456789\n1234567890"
    assert list(jsonl_records(io.BytesIO(data), 10)) == [
        b"12345678\n",
        b"123456789\n",
        b"1234567890",
    ]
    assert list(jsonl_records(io.BytesIO(data), 9)) == [b"12345678\n", Oversize(10), Oversize(10)]


def test_jsonl_records_are_lines_whatever_the_quotes() -> None:
    data = b'{"text": "a\\"\r"}\n\n"\n' + b"z" * 100_000 + b"\nlast"
    records = list(jsonl_records(io.BytesIO(data), 1000))
    assert records == [b'{"text": "a\\"\r"}\n', b"\n", b'"\n', Oversize(100_001), b"last"]


def test_an_empty_file_has_no_record() -> None:
    assert list(csv_records(io.BytesIO(b""), 10)) == []
    assert list(jsonl_records(io.BytesIO(b""), 10)) == []


def test_the_default_limit_fits_the_longest_legal_text_in_any_spelling() -> None:
    chars = Settings.model_fields["max_text_chars"].default
    assert DEFAULT_MAX_ROW_BYTES == default_max_row_bytes(chars) == 2_248_576
    labels = [f"{n:02d}" + "😀" * 62 for n in range(64)]  # the most labels, each its longest
    row = json.dumps({"id": "x" * 1000, "text": "😀" * chars, "labels": labels})  # \ud83d\ude00
    assert len(row.encode()) + 1 <= DEFAULT_MAX_ROW_BYTES
