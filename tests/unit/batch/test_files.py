"""Batch files: reading INPUT (JSONL and CSV, ids, labels, bad rows), resuming OUTPUT (torn last
line, done rows), and the writer (whole lines, never a row twice)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from serving.batch.files import (
    BadRow,
    BatchFileError,
    Row,
    count_rows,
    open_output,
    read_done,
    read_rows,
    row_key,
)


def _jsonl(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "in.csv"
    path.write_text(text, encoding="utf-8")
    return path


# --- JSONL -------------------------------------------------------------------------------------


def test_jsonl_ids_default_to_line_numbers_and_blank_lines_are_not_rows(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path,
        '{"text": "a"}',
        "",
        '{"id": "x", "text": "b", "labels": ["l1", "l2"]}',
        '{"id": 7, "text": "c", "labels": "l1,l2", "other": 1}',
        "   ",
        '{"text": "d", "id": null}',
    )
    assert list(read_rows(path)) == [
        Row(1, 1, {"text": "a"}),
        Row(3, "x", {"text": "b", "labels": ["l1", "l2"]}),
        Row(4, 7, {"text": "c", "labels": "l1,l2"}),
        Row(6, 6, {"text": "d"}),
    ]


@pytest.mark.parametrize("labels", ["null", '""', "[]"])
def test_jsonl_empty_labels_leave_the_commands_labels(tmp_path: Path, labels: str) -> None:
    path = _jsonl(tmp_path, f'{{"text": "a", "labels": {labels}}}')
    assert list(read_rows(path)) == [Row(1, 1, {"text": "a"})]


def test_jsonl_fields_are_kept_as_sent_for_the_api_models_to_check(tmp_path: Path) -> None:
    path = _jsonl(tmp_path, '{"text": 5, "labels": [1]}', '{"labels": "a"}')
    assert list(read_rows(path)) == [
        Row(1, 1, {"text": 5, "labels": [1]}),
        Row(2, 2, {"labels": "a"}),
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"text": "a"', "Line 1 is not valid JSON"),
        ("not json", "Line 1 is not valid JSON"),
        ('["text", "a"]', "Line 1 is not a JSON object."),
        ('"text"', "Line 1 is not a JSON object."),
    ],
)
def test_an_unreadable_line_is_a_bad_row_with_its_line_number_as_id(
    tmp_path: Path, line: str, message: str
) -> None:
    (row,) = read_rows(_jsonl(tmp_path, line))
    assert isinstance(row, BadRow)
    assert (row.number, row.id, row.param) == (1, 1, None)
    assert row.message.startswith(message)


def test_a_line_that_is_not_utf8_is_a_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"text": "\xff\xfe"}\n{"text": "ok"}\n')
    bad, good = read_rows(path)
    assert bad == BadRow(1, 1, "Line 1 is not valid UTF-8.")
    assert good == Row(2, 2, {"text": "ok"})


@pytest.mark.parametrize("value", ["true", "1.5", "[1]", '{"a": 1}', '"\\ud800"'])
def test_a_bad_id_is_a_bad_row_without_id(tmp_path: Path, value: str) -> None:
    (row,) = read_rows(_jsonl(tmp_path, f'{{"id": {value}, "text": "a"}}'))
    assert isinstance(row, BadRow)
    assert (row.id, row.param) == (None, "id")
    assert row_key(row) == ("row", "1")


def test_the_second_row_with_an_id_is_a_bad_row_without_id(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path,
        '{"id": "a", "text": "1"}',
        '{"id": "a", "text": "2"}',
        '{"id": 1, "text": "3"}',  # row 1's default id, but row 1 has one of its own
        '{"id": "1", "text": "4"}',  # "1" and 1 are the same id
        '{"text": "5"}',
    )
    rows = list(read_rows(path))
    assert [row.id for row in rows] == ["a", None, 1, None, 5]
    duplicate = rows[1]
    assert isinstance(duplicate, BadRow)
    assert duplicate.message == "Row 2 repeats the id 'a' of row 1; ids must be unique."
    assert duplicate.param == "id"
    assert isinstance(rows[3], BadRow)
    assert "repeats the id '1' of row 3" in rows[3].message


def test_count_rows_counts_rows_and_those_done(tmp_path: Path) -> None:
    path = _jsonl(tmp_path, '{"text": "a"}', '{"text": "b"}', "bad", '{"id": "x", "text": "c"}')
    assert count_rows(path, set()) == (4, 0)
    assert count_rows(path, {("id", "1"), ("id", "x"), ("id", "nope")}) == (4, 2)


def test_a_missing_input_is_a_file_error(tmp_path: Path) -> None:
    with pytest.raises(BatchFileError, match="cannot read"):
        list(read_rows(tmp_path / "nope.jsonl"))


# --- CSV ---------------------------------------------------------------------------------------


def test_csv_rows_by_record_number_with_optional_id_and_labels(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "\ufeffid,text,labels,extra\n"  # a spreadsheet's byte-order mark
        'a,"one, with a comma",财经,x\n'
        ',"two\nlines",,y\n'
        "c,three\n",  # a short record: no labels cell
    )
    assert list(read_rows(path)) == [
        Row(1, "a", {"text": "one, with a comma", "labels": "财经"}),
        Row(2, 2, {"text": "two\nlines"}),
        Row(3, "c", {"text": "three"}),
    ]


def test_a_quoted_header_field_right_after_a_byte_order_mark(tmp_path: Path) -> None:
    path = _csv(tmp_path, '\ufeff"notes\n(free)",text\nn,"a\nb"\n')
    assert list(read_rows(path)) == [Row(1, 1, {"text": "a\nb"})]


def test_csv_without_a_text_column_is_a_file_error(tmp_path: Path) -> None:
    with pytest.raises(BatchFileError, match="no 'text' column"):
        list(read_rows(_csv(tmp_path, "id,body\n1,a\n")))


def test_csv_that_is_not_utf8_is_a_file_error(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes("text\n财经\n".encode("gbk"))
    with pytest.raises(BatchFileError, match="not UTF-8"):
        list(read_rows(path))


def test_csv_duplicate_ids_are_bad_rows(tmp_path: Path) -> None:
    rows = list(read_rows(_csv(tmp_path, "id,text\nx,a\nx,b\n")))
    assert isinstance(rows[1], BadRow)
    assert rows[1].id is None


def test_the_extension_decides_the_format(tmp_path: Path) -> None:
    path = tmp_path / "rows.CSV"
    path.write_text("text\nhello\n", encoding="utf-8")
    assert list(read_rows(path)) == [Row(1, 1, {"text": "hello"})]


# --- Rows over the size limit ------------------------------------------------------------------

LIMIT = 100


def _too_large(number: int, size: int) -> BadRow:
    message = (
        f"Row {number} has {size} bytes, over the limit of {LIMIT} bytes per row "
        "(--max-row-bytes); it was skipped unread."
    )
    return BadRow(number, None, message, status=413)


def test_jsonl_rows_over_the_limit_are_error_rows_wherever_they_are(tmp_path: Path) -> None:
    big = json.dumps({"id": "big", "text": "长" * 40})  # 265 bytes: 长 is \\u957f
    size = len(big) + 1
    path = tmp_path / "in.jsonl"
    lines = [big, '{"text": "a"}', big, big, '{"id": "a", "text": "b"}', "", big]
    path.write_text("\n".join(lines), encoding="utf-8")  # the last line has no newline
    rows = list(read_rows(path, LIMIT))
    assert rows == [
        _too_large(1, size),
        Row(2, 2, {"text": "a"}),
        _too_large(3, size),
        _too_large(4, size),
        Row(5, "a", {"text": "b"}),
        _too_large(7, size - 1),
    ]
    assert count_rows(path, {("row", "3"), ("id", "a")}, LIMIT) == (6, 2)
    assert [row_key(row) for row in rows[:3]] == [("row", "1"), ("id", "2"), ("row", "3")]


def test_an_error_row_takes_no_id_a_later_row_may_hold(tmp_path: Path) -> None:
    path = _jsonl(tmp_path, "x" * LIMIT, '{"id": 1, "text": "a"}')
    assert list(read_rows(path, LIMIT))[1] == Row(2, 1, {"text": "a"})  # not a duplicate


def test_csv_records_over_the_limit_are_error_rows_and_reading_goes_on(tmp_path: Path) -> None:
    lines = "\n".join(f'line {n}, "quoted"' for n in range(10))
    quoted = '"' + lines.replace('"', '""') + '"'  # one field over many lines
    path = _csv(
        tmp_path,
        f'id,text\nbig,{quoted}\na,one\r\nbig2,x{"y" * LIMIT}\n\nb,"two\nlines"\nbig3,{quoted}',
    )
    assert list(read_rows(path, LIMIT)) == [
        _too_large(1, len(f"big,{quoted}\n".encode())),
        Row(2, "a", {"text": "one"}),
        _too_large(3, LIMIT + 7),
        Row(4, "b", {"text": "two\nlines"}),  # after a blank line, which is no record
        _too_large(5, len(f"big3,{quoted}".encode())),
    ]
    assert count_rows(path, set(), LIMIT) == (5, 0)


def test_a_csv_header_over_the_limit_is_a_file_error(tmp_path: Path) -> None:
    path = _csv(tmp_path, "text," + "x" * LIMIT + "\na\n")
    with pytest.raises(BatchFileError, match="header row is over 100 bytes"):
        list(read_rows(path, LIMIT))


# The peak is VmHWM, this process's own: ru_maxrss would count the parent's memory from before
# exec (pytest's, which can hide the reader's under it).
_PEAK = """
import re, sys
from pathlib import Path
from serving.batch.files import BadRow, read_rows
kinds = [isinstance(row, BadRow) for row in read_rows(Path(sys.argv[1]))]
status = Path("/proc/self/status").read_text()
print(len(kinds), sum(kinds), int(re.search(r"VmHWM:\\s+(\\d+) kB", status)[1]) * 1024)
"""


def _reading_peak(path: Path) -> tuple[int, int, int]:
    """The rows and bad rows of ``path``, and the peak memory (bytes) of a process that only
    reads them."""
    result = subprocess.run(
        [sys.executable, "-c", _PEAK, str(path)], capture_output=True, text=True, check=True
    )
    rows, bad, peak = map(int, result.stdout.split())
    return rows, bad, peak


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_a_200_mb_row_costs_no_more_memory_than_the_limit(tmp_path: Path, suffix: str) -> None:
    """Read whole, the row cost ~490 MB (JSONL) and ~560 MB (CSV) here."""
    size = 200 * 1024 * 1024
    if suffix == ".csv":
        head, row, tail = "id,text\na,one\n", ('big,"', '"\n'), "b,two\nc,three"
    else:
        head, tail = '{"id": "a", "text": "one"}\n', '{"id": "b", "text": "two"}'
        row = ('{"id": "big", "text": "', '"}\n')
    small, big = tmp_path / f"small{suffix}", tmp_path / f"big{suffix}"
    small.write_text(head + tail, encoding="utf-8")
    with big.open("w", encoding="utf-8") as out:
        out.write(head + row[0])
        for _ in range(size // (1 << 20)):
            out.write("长" * ((1 << 20) // 3))
        out.write(row[1] + tail)
    rows, bad, without = _reading_peak(small)
    assert bad == 0
    big_rows, bad, peak = _reading_peak(big)
    big.unlink()  # pytest keeps the temporary folders of the last runs
    assert peak - without < 8 * 1024 * 1024, f"{peak:,} bytes against {without:,}"
    assert (big_rows, bad) == (rows + 1, 1)  # an error row, and the rows after it


# --- OUTPUT: resume and writer -----------------------------------------------------------------


def _line(row_id: object, row: int, **fields: object) -> str:
    return json.dumps({"id": row_id, "row": row, **fields}, ensure_ascii=False) + "\n"


def test_a_new_output_has_nothing_done(tmp_path: Path) -> None:
    writer, done = open_output(tmp_path / "out.jsonl")
    writer.close()
    assert done == set()
    assert (tmp_path / "out.jsonl").read_bytes() == b""


def test_resume_reads_done_ids_and_rows_without_id(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text(_line("a", 1, label="x") + _line(5, 5, error={}) + _line(None, 9, error={}))
    writer, done = open_output(path)
    writer.close()
    assert done == {("id", "a"), ("id", "5"), ("row", "9")}


@pytest.mark.parametrize(
    "torn",
    ['{"id": "b", "row": 2, "lab', '{"id": "b", "row": 2}', "{", '{"id": "日'],
    ids=["cut", "complete-json-without-newline", "one-byte", "cut-inside-utf8"],
)
def test_resume_drops_a_torn_last_line(tmp_path: Path, torn: str) -> None:
    path = tmp_path / "out.jsonl"
    kept = _line("a", 1, label="x")
    data = kept.encode() + torn.encode()
    if torn.endswith("日"):
        data = data[:-1]  # a multi-byte character cut in half
    path.write_bytes(data)
    writer, done = open_output(path)
    writer.write(("id", "b"), {"id": "b", "row": 2, "label": "y"})
    writer.close()
    assert done == {("id", "a")}
    assert path.read_text(encoding="utf-8") == kept + _line("b", 2, label="y")


def test_resume_of_a_file_that_is_only_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text('{"id": "a", "ro')
    writer, done = open_output(path)
    writer.close()
    assert done == set()
    assert path.read_bytes() == b""


@pytest.mark.parametrize(
    "line", ["not json\n", "[1]\n", '{"id": "a"}\n', '{"row": 1}\n', '{"id": "a", "row": "1"}\n']
)
def test_an_output_line_that_is_not_a_result_refuses_the_file(tmp_path: Path, line: str) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text(_line("a", 1) + line + _line("b", 2))
    with pytest.raises(BatchFileError, match="line 2 is not a result of this command"):
        read_done(path)


@pytest.mark.parametrize(
    "foreign",
    [b"report,total\n1,2\nno newline at the end", b"no newline at all", b'{"id": 1}\n{"other"'],
    ids=["csv-without-last-newline", "no-newline", "json-then-foreign-tail"],
)
def test_a_file_that_is_not_ours_is_refused_and_left_byte_for_byte(
    tmp_path: Path, foreign: bytes
) -> None:
    path = tmp_path / "report.csv"
    path.write_bytes(foreign)
    with pytest.raises(BatchFileError, match="result of this command"):
        open_output(path)
    assert path.read_bytes() == foreign


def test_the_writer_appends_whole_lines_and_never_a_row_twice(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text(_line("a", 1))
    writer, done = open_output(path)
    writer.write(("id", "b"), {"id": "b", "row": 2, "fields": {"人物": []}})
    with pytest.raises(ValueError, match="already in the output"):
        writer.write(("id", "a"), {"id": "a", "row": 1})
    with pytest.raises(ValueError, match="already in the output"):
        writer.write(("id", "b"), {"id": "b", "row": 2})
    writer.close()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines == [_line("a", 1).strip(), '{"id": "b", "row": 2, "fields": {"人物": []}}']
    assert done == {("id", "a")}


def test_the_writer_flushes_each_line_at_once(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    writer, _ = open_output(path)
    writer.write(("id", "a"), {"id": "a", "row": 1})
    assert path.read_text() == _line("a", 1)  # before close: nothing waits in a buffer
    writer.close()
