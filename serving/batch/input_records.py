"""INPUT cut into records (JSONL lines, CSV records) of bounded size, none over it held whole.

The size limit is the batch command's ``--max-row-bytes``; by default it refuses no row for its
text (``default_max_row_bytes``): room for the longest text the server accepts
(``SEQGPT_MAX_TEXT_CHARS``) however it is written, and 1 MiB for the id, the labels and any other
field. The file is read in chunks of 64 KiB. A record of at most ``limit`` bytes (its line end
included) comes back as its bytes; a longer one is skipped chunk by chunk to its end and comes
back as its size alone (``Oversize``), so reading a file costs ``limit`` bytes plus a chunk
however long its rows are. Records end where the format says:

- JSONL (``jsonl_records``): after each ``\\n``.
- CSV (``csv_records``): after a line end (``\\n``, ``\\r\\n`` or ``\\r``) outside quotes, found
  exactly as Python's csv module reads the excel dialect (``,`` between fields, a field opening
  with ``"`` is quoted until a ``"`` that is not doubled, a ``"`` inside an unquoted field is
  text), so each record is one record for the csv module to parse. The csv module cannot bound
  a record itself: it reads whole lines, and after a field over its ``field_size_limit`` it goes
  on at the next line, which may be the middle of the same quoted field (its rest then read as
  records of their own).

The last record may end without a line end. Every byte belongs to one record: the sizes of the
records of a file add up to its size.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from serving.core.settings import Settings

__all__ = [
    "DEFAULT_MAX_ROW_BYTES",
    "ROW_BYTES_BESIDE_TEXT",
    "ROW_BYTES_PER_CHAR",
    "Oversize",
    "csv_records",
    "default_max_row_bytes",
    "jsonl_records",
]

ROW_BYTES_PER_CHAR = 12
"""The most bytes one character of a text can take in a row: a JSON escape of a character outside
the BMP (``\\ud83d\\ude00``, as ``json.dumps`` writes an emoji); UTF-8 takes at most 4."""
ROW_BYTES_BESIDE_TEXT = 1024 * 1024
"""Room in a row for what is not its text: its id, labels (64 of at most 64 characters by
default) and any other fields."""


def default_max_row_bytes(max_text_chars: int) -> int:
    """The row size limit that refuses no row for its text: room for a text of
    ``max_text_chars`` characters however it is written, and 1 MiB for the rest."""
    return ROW_BYTES_PER_CHAR * max_text_chars + ROW_BYTES_BESIDE_TEXT


DEFAULT_MAX_ROW_BYTES = default_max_row_bytes(Settings.model_fields["max_text_chars"].default)
"""The limit for the server's default ``SEQGPT_MAX_TEXT_CHARS`` (2,248,576 bytes for 100,000)."""

_CHUNK = 64 * 1024

# Where the CSV parser's state changes: a quote (inside a quoted field), or outside quotes a line
# end or a comma before a quote (a quoted field opens); a comma that ends the data may open one
# at the start of the next chunk.
_QUOTE = ord('"')
_UNQUOTED_STOP = re.compile(rb'[\r\n]|,(?="|\Z)')
_FIELD_START, _UNQUOTED, _QUOTED, _QUOTE_SEEN, _CR_SEEN = range(5)


@dataclass(frozen=True)
class Oversize:
    """A record over the limit, skipped unread: its size in bytes (line end included)."""

    size: int


def jsonl_records(handle: BinaryIO, limit: int) -> Iterator[bytes | Oversize]:
    """The lines of ``handle`` (``\\n`` kept), each over ``limit`` bytes as its ``Oversize``."""
    return _records(handle, limit, _line_end)


def csv_records(handle: BinaryIO, limit: int) -> Iterator[bytes | Oversize]:
    """The CSV records of ``handle`` (line end kept), each over ``limit`` bytes as its
    ``Oversize``."""
    return _records(handle, limit, _csv_end)


_Scan = Callable[[bytes, int, int], tuple[int, int]]


def _records(handle: BinaryIO, limit: int, scan: _Scan) -> Iterator[bytes | Oversize]:
    """Split ``handle`` where ``scan`` finds a record's end, keeping at most ``limit`` bytes."""
    record = bytearray()
    size, state = 0, _FIELD_START
    while chunk := handle.read(_CHUNK):
        start = 0
        while start < len(chunk):
            end, state = scan(chunk, start, state)
            stop = len(chunk) if end < 0 else end
            size += stop - start
            if size <= limit:
                record += chunk[start:stop]
            else:  # over the limit: its bytes are counted, not kept
                record.clear()
            if end < 0:
                break
            yield bytes(record) if size <= limit else Oversize(size)
            record.clear()
            size, state, start = 0, _FIELD_START, end
    if size:
        yield bytes(record) if size <= limit else Oversize(size)


def _line_end(data: bytes, start: int, state: int) -> tuple[int, int]:
    """Where the line going on at ``data[start]`` ends (after its ``\\n``), or -1."""
    newline = data.find(b"\n", start)
    return (newline + 1 if newline >= 0 else -1), state


def _csv_end(data: bytes, pos: int, state: int) -> tuple[int, int]:
    """Where the CSV record going on at ``data[pos]`` in ``state`` ends (after its line end), or
    -1 and the state at the end of ``data``.

    The states follow the csv module's (``Modules/_csv.c``, non-strict): at a field's start a
    quote opens a quoted field; in one, a quote is seen and a second one right after it is a
    quote of the text; anything else after a closing quote, like an unquoted field, runs to a
    comma or a line end. A ``\\r`` is a line end of its own unless a ``\\n`` follows it.
    """
    while pos < len(data):
        if state == _QUOTED:
            pos = data.find(b'"', pos) + 1
            if pos == 0:
                return -1, _QUOTED
            state = _QUOTE_SEEN
        elif state == _CR_SEEN:
            return pos + (data[pos] == ord("\n")), _FIELD_START
        elif state in (_FIELD_START, _QUOTE_SEEN) and data[pos] == _QUOTE:
            pos, state = pos + 1, _QUOTED
        else:  # unquoted text, or what follows a closing quote
            stop = _UNQUOTED_STOP.search(data, pos)
            if stop is None:
                return -1, _UNQUOTED
            pos = stop.end()
            if stop[0] == b"\n":
                return pos, _FIELD_START
            state = _FIELD_START if stop[0] == b"," else _CR_SEEN
    return -1, state
