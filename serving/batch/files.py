"""Batch files: rows read from INPUT (JSONL, or CSV by extension), results appended to OUTPUT.

INPUT rows:

- JSONL: one JSON object per non-blank line; CSV: one record per row after a header that has a
  ``text`` column. Other fields or columns are ignored.
- ``id``: a string or an integer; without one, the row's number (its 1-based line in JSONL, its
  1-based record after the header in CSV). Ids are compared as text (``5`` and ``"5"`` are the
  same id). The second row with an id already seen is a bad row with no id (``"id": null``).
- ``labels``: a list or one comma-separated string; it overrides the command's ``--labels``.
- A row that cannot be read (invalid JSON, not an object, a bad id) is a ``BadRow``; its text
  and labels are checked later, by the same request models as the REST API.
- A row over ``max_row_bytes`` (its line, or its CSV record, line end included) is a ``BadRow``
  with status 413 and no id, skipped without being held whole (``serving.batch.input_records``): one
  huge row costs no more memory than the limit. By default the limit leaves room for the longest
  text the server accepts (``default_max_row_bytes``).

OUTPUT is JSONL: one object per row with its ``id``, its ``row`` number, its ``request_id`` (null
for a row never sent) and the REST answer (or
``error``). Lines are written whole (one ``write`` of the encoded line) and flushed as rows
complete, so a stopped run leaves complete lines and at most one torn last line. ``open_output``
resumes: it first checks that every complete line is a result and that what follows the last
newline can only be a torn one of ours (a file of someone else's is refused untouched), then
drops that torn line, and the writer refuses to write a row already done again.

OUTPUT is known as this command's by what its lines begin with (``serving.batch.owned``, which
knows the report files of ``seqgpt-serve eval`` the same way).
"""

from __future__ import annotations

import codecs
import csv
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

from serving.batch.input_records import DEFAULT_MAX_ROW_BYTES, Oversize, csv_records, jsonl_records
from serving.batch.owned import BatchFileError, begins_with

__all__ = [
    "BadRow",
    "BatchFileError",
    "Key",
    "ResultWriter",
    "Row",
    "count_rows",
    "open_output",
    "read_done",
    "read_rows",
    "row_key",
]

_LINE_START = b'{"id": '
"""How every line this command writes begins (``json.dumps`` of ``{"id": ..., "row": ...}``)."""

Key = tuple[str, str]
"""What identifies a row across runs: ``("id", text of its id)``, or ``("row", number)`` for a
row that has no usable id."""


@dataclass(frozen=True)
class Row:
    """One readable row: its number, id, and the fields that make its request."""

    number: int
    id: str | int
    fields: dict[str, Any]
    kept: dict[str, Any] = field(default_factory=dict)
    """The fields ``read_rows`` was asked to keep beside the request's (eval's gold answers)."""


@dataclass(frozen=True)
class BadRow:
    """A row that cannot be read; it becomes an error row (``param`` names the field)."""

    number: int
    id: str | int | None
    message: str
    param: str | None = None
    status: int = HTTPStatus.BAD_REQUEST
    """The error body's status: 400, or 413 for a row over the size limit."""


def row_key(row: Row | BadRow) -> Key:
    """The identity of ``row`` in OUTPUT."""
    if row.id is None:
        return ("row", str(row.number))
    return ("id", str(row.id))


def read_rows(
    path: Path,
    max_row_bytes: int = DEFAULT_MAX_ROW_BYTES,
    keep: tuple[str, ...] = (),
    unique_ids: bool = True,
) -> Iterator[Row | BadRow]:
    """Every row of INPUT in file order, ids checked and duplicates turned into bad rows, rows
    over ``max_row_bytes`` bad rows too (never held whole); the fields named in ``keep`` are in
    ``Row.kept``. ``unique_ids=False``: duplicate ids are left as they are, and the ids seen are
    not kept (memory that grows with the rows), for a reader that goes by row number."""
    csv_file = path.suffix.lower() == ".csv"
    raw = (
        _csv_rows(path, max_row_bytes, keep) if csv_file else _jsonl_rows(path, max_row_bytes, keep)
    )
    if not unique_ids:
        yield from raw
        return
    seen: dict[str, int] = {}
    for row in raw:
        if row.id is None:
            yield row
            continue
        first = seen.setdefault(str(row.id), row.number)
        if first == row.number:
            yield row
        else:
            message = (
                f"Row {row.number} repeats the id {row.id!r} of row {first}; ids must be unique."
            )
            yield BadRow(row.number, None, message, "id")


def count_rows(
    path: Path, done: set[Key], max_row_bytes: int = DEFAULT_MAX_ROW_BYTES
) -> tuple[int, int]:
    """How many rows INPUT has, and how many of them are already in ``done``."""
    total = skipped = 0
    for row in read_rows(path, max_row_bytes):
        total += 1
        skipped += row_key(row) in done
    return total, skipped


def _from_fields(number: int, fields: dict[str, Any], keep: tuple[str, ...] = ()) -> Row | BadRow:
    """The row of one JSON object or CSV record: its id checked, its request fields kept."""
    row_id = fields.get("id")
    if row_id is None or row_id == "":
        row_id = number
    elif isinstance(row_id, bool) or not isinstance(row_id, str | int):
        return BadRow(number, None, f"Row {number}: 'id' must be a string or an integer.", "id")
    elif isinstance(row_id, str) and not _valid_unicode(row_id):
        message = f"Row {number}: 'id' holds an invalid character (an unpaired surrogate)."
        return BadRow(number, None, message, "id")
    # A null or empty labels field means none of its own: the command's --labels apply.
    request = {k: v for k, v in fields.items() if k == "text" or (k == "labels" and v)}
    return Row(number, row_id, request, {k: fields[k] for k in keep if k in fields})


def _valid_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _oversize(number: int, row: Oversize, limit: int) -> BadRow:
    """The error row of a row over the limit. No id: its own is unknown (the row is not read), and
    its number is no id of its own (a later row may hold that id)."""
    message = (
        f"Row {number} has {row.size} bytes, over the limit of {limit} bytes per row "
        "(--max-row-bytes); it was skipped unread."
    )
    return BadRow(number, None, message, status=HTTPStatus.REQUEST_ENTITY_TOO_LARGE)


def _jsonl_rows(path: Path, limit: int, keep: tuple[str, ...]) -> Iterator[Row | BadRow]:
    with _open_input(path, "rb") as handle:
        for number, raw in enumerate(jsonl_records(handle, limit), start=1):
            if isinstance(raw, Oversize):
                yield _oversize(number, raw, limit)
                continue
            if not raw.strip():
                continue
            try:
                fields = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                yield BadRow(number, number, f"Line {number} is not valid UTF-8.")
                continue
            except json.JSONDecodeError as exc:
                message = f"Line {number} is not valid JSON: {exc.msg} (column {exc.colno})."
                yield BadRow(number, number, message)
                continue
            if not isinstance(fields, dict):
                yield BadRow(number, number, f"Line {number} is not a JSON object.")
                continue
            yield _from_fields(number, fields, keep)


def _csv_rows(path: Path, limit: int, keep: tuple[str, ...]) -> Iterator[Row | BadRow]:
    # A record is at most `limit` bytes, so no field is longer: the csv module's own limit
    # (128 KiB by default) must not refuse less.
    csv.field_size_limit(limit)
    with _open_input(path, "rb") as handle:
        # Spreadsheets write a byte-order mark in front of the header: not part of its first field.
        bom = handle.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8
        offset = handle.seek(len(codecs.BOM_UTF8) if bom else 0)
        records = csv_records(handle, limit)
        header = next(records, b"")
        if isinstance(header, Oversize):
            raise BatchFileError(f"{path}'s header row is over {limit} bytes")
        names = _csv_values(path, header, offset)
        if "text" not in names:
            raise BatchFileError(f"{path} has no 'text' column in its header row")
        offset, number = offset + len(header), 0
        for record in records:
            if isinstance(record, Oversize):
                number += 1
                offset += record.size
                yield _oversize(number, record, limit)
                continue
            values = _csv_values(path, record, offset)
            offset += len(record)
            if values:  # a blank line is no record (as csv.DictReader reads them)
                number += 1
                # As csv.DictReader: extra values and missing columns are left out.
                yield _from_fields(number, dict(zip(names, values, strict=False)), keep)


def _csv_values(path: Path, record: bytes, offset: int) -> list[str]:
    """The values of one CSV record that starts at byte ``offset`` of ``path``."""
    try:
        text = record.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BatchFileError(f"{path} is not UTF-8 text (byte {offset + exc.start})") from exc
    try:
        return next(csv.reader([text]), [])
    except csv.Error as exc:
        raise BatchFileError(f"{path} is not valid CSV: {exc}") from exc


def _open_input(path: Path, mode: str, **kwargs: Any) -> Any:
    try:
        return path.open(mode, **kwargs)
    except OSError as exc:
        raise BatchFileError(f"cannot read {path}: {exc.strerror}") from exc


def read_done(path: Path, end: int | None = None) -> set[Key]:
    """The rows already in OUTPUT's first ``end`` bytes (all of it by default); a line that is not
    a result of this command is a ``BatchFileError``."""
    done: set[Key] = set()
    if not path.exists():
        return done
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            if end is not None and lines.tell() > end:
                break
            try:
                entry = json.loads(raw)
                key = _output_key(entry)
            except (ValueError, TypeError, KeyError):
                raise BatchFileError(
                    f"{path} line {number} is not a result of this command; pass another "
                    "--output file"
                ) from None
            done.add(key)
    return done


def _output_key(entry: Any) -> Key:
    if not isinstance(entry, dict) or not isinstance(entry["row"], int):
        raise TypeError
    if entry["id"] is None:
        return ("row", str(entry["row"]))
    return ("id", str(entry["id"]))


def _complete_end(path: Path) -> int:
    """Where OUTPUT's last complete line ends (after its last newline); 0 if it has none."""
    with path.open("rb") as handle:
        end = handle.seek(0, os.SEEK_END)
        while end > 0:
            step = min(65536, end)
            handle.seek(end - step)
            newline = handle.read(step).rfind(b"\n")
            if newline >= 0:
                return end - step + newline + 1
            end -= step
    return 0


def _torn_line(path: Path, start: int) -> bool:
    """Whether what follows ``start`` can be the start of a line this command writes (a run
    stopped while writing it), not someone else's text."""
    return begins_with(path, _LINE_START, start, torn=True)


def open_output(path: Path) -> tuple[ResultWriter, set[Key]]:
    """A writer appending to OUTPUT, and the rows it already holds. OUTPUT is checked to be a
    result file of this command before any byte of it changes; only then is a torn last line
    dropped. A file that is not one is refused and left exactly as it was."""
    try:
        if not path.exists():
            return ResultWriter(path, set()), set()
        end = _complete_end(path)
        done = read_done(path, end)
        if end != path.stat().st_size:
            if not _torn_line(path, end):
                raise BatchFileError(
                    f"{path} does not end as a result of this command; pass another --output file"
                )
            with path.open("rb+") as handle:
                handle.truncate(end)
        return ResultWriter(path, done), done
    except OSError as exc:
        raise BatchFileError(f"cannot write {path}: {exc.strerror}") from exc


class ResultWriter:
    """Appends result rows to OUTPUT as whole lines, flushed at once; each row at most once."""

    def __init__(self, path: Path, done: set[Key]) -> None:
        self._written = set(done)
        # Unbuffered and O_APPEND: each line reaches the file in one write call, or not at all
        # when the process is stopped before it.
        self._file = path.open("ab", buffering=0)

    def write(self, key: Key, entry: dict[str, Any]) -> None:
        """Append ``entry`` as one line; a key already written is a bug, never a second line."""
        if key in self._written:
            raise ValueError(f"row {key[1]} is already in the output")
        data = (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8")
        view = memoryview(data)
        while view:
            view = view[self._file.write(view) or 0 :]
        self._written.add(key)

    def close(self) -> None:
        """Close OUTPUT."""
        self._file.close()
