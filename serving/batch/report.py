"""The report of ``seqgpt-serve eval``, written into its folder beside ``predictions.jsonl``.

- ``metrics.json``: the counts (rows, scored, errors, wrong), every score of
  ``serving.batch.metrics``, and the listed wrong and error rows by row number, id and request
  id.
- ``report.md``: the same scores as tables, the confusion matrix (or per-field chart), and the
  wrong rows (the first ``LISTED_ROWS`` by row number, then how many more) with their input row
  number (line in JSONL, record in CSV) and request id (the server's X-Request-Id, to find it in
  the request log), then the error rows apart, capped the same way.
- ``confusion.png`` (classification: gold × predicted; multi-label: per label TP, FP, FN, TN) or
  ``fields.png`` (extraction: per-field F1, exact and overlap), drawn by matplotlib's Agg backend.

Each is written whole, never through a link, and an existing one is replaced only when this
command wrote it (``serving.batch.owned``: each file's head, ``HEADS``); ``check_report`` says so
before the run.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from pathlib import Path
from typing import Any

from serving.batch.evaluate import PREDICTIONS, Evaluation
from serving.batch.owned import check_ours, replace_file

__all__ = ["HEADS", "check_report", "report_files", "write_report"]

_SOFTWARE = "seqgpt-serve eval"
HEADS: dict[str, tuple[bytes, int]] = {
    "metrics.json": (b'{\n  "task": ', 0),
    "report.md": (b"# Evaluation: ", 0),
    # The PNG's first chunk after its 33-byte signature and IHDR: our Software text.
    "plot": (b"\x00\x00\x00\x1atEXtSoftware\x00" + _SOFTWARE.encode(), 33),
}
"""How each report file this command wrote begins: its bytes, and where."""

_SCORES = ("precision", "recall", "f1")
# Font files with Chinese glyphs (labels are often Chinese; DejaVu Sans has none).
_CJK_HINTS = ("cjk", "wqy", "wenquanyi", "droidsansfallback", "sourcehan", "notosanssc")


def report_files(folder: Path, task: str) -> dict[str, Path]:
    """The report's files in ``folder`` by their ``HEADS`` name."""
    plot = "fields.png" if task == "extract" else "confusion.png"
    return {name: folder / name for name in ("metrics.json", "report.md")} | {"plot": folder / plot}


def check_report(folder: Path, task: str) -> None:
    """``BatchFileError`` when a report file in ``folder`` is a link or someone else's file."""
    for name, path in report_files(folder, task).items():
        check_ours(path, *HEADS[name])


def write_report(folder: Path, evaluation: Evaluation) -> list[Path]:
    """Write ``metrics.json``, the plot and ``report.md`` into ``folder``; return their paths."""
    check_report(folder, evaluation.task)  # all of them, before any is written
    files = report_files(folder, evaluation.task)
    document = evaluation.document()
    document["wrong_rows"] = [_where(row) for row in evaluation.wrong]
    document["error_rows"] = evaluation.errors
    metrics = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
    replace_file(files["metrics.json"], metrics.encode("utf-8"), *HEADS["metrics.json"])
    replace_file(files["plot"], _plot(evaluation), *HEADS["plot"])
    report = render(evaluation, files["plot"].name).encode("utf-8")
    replace_file(files["report.md"], report, *HEADS["report.md"])
    return [files["report.md"], files["metrics.json"], files["plot"]]


def _where(row: dict[str, Any]) -> dict[str, Any]:
    return {key: row[key] for key in ("row", "id", "request_id")}


def _cell(value: Any) -> str:
    """A Markdown table cell: numbers to 4 places, lists joined, pipes and newlines escaped."""
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, list | tuple):
        value = ", ".join(map(str, value)) or "—"
    elif isinstance(value, dict):
        value = json.dumps(value, ensure_ascii=False)
    elif value is None:
        value = "—"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    if not rows:
        return ["None.", ""]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return [*lines, *("| " + " | ".join(map(_cell, row)) + " |" for row in rows), ""]


def render(evaluation: Evaluation, plot: str) -> str:
    """The text of ``report.md``."""
    e = evaluation
    kind = ("multi-label " if e.multi_label else "") + (
        "extraction" if e.task == "extract" else "classification"
    )
    lines = [
        f"# Evaluation: {kind}",
        "",
        f"{e.rows} rows: {e.rows - e.error_count} scored, {e.wrong_count} wrong, "
        f"{e.error_count} errors (not scored). The answers are in `{PREDICTIONS}`.",
        "",
    ]
    lines += _extraction(e) if e.task == "extract" else _classification(e)
    lines += [f"![{'per-field F1' if e.task == 'extract' else 'confusion matrix'}]({plot})", ""]
    lines += [f"## Wrong rows ({e.wrong_count})", ""]
    if e.task == "extract":
        header = ["row", "id", "request id", "fields", "gold", "predicted"]
        keys = ["row", "id", "request_id", "fields", "gold", "predicted"]
    else:
        header = ["row", "id", "request id", "gold", "predicted"]
        keys = ["row", "id", "request_id", "gold", "predicted"]
    lines += _table(header, [[row[k] for k in keys] for row in e.wrong])
    lines += _more(e.wrong_count - len(e.wrong), "wrong")
    lines += [f"## Error rows ({e.error_count})", ""]
    keys = ["row", "id", "request_id", "type", "message"]
    lines += _table(
        ["row", "id", "request id", "type", "message"], [[row[k] for k in keys] for row in e.errors]
    )
    lines += _more(e.error_count - len(e.errors), "error")
    return "\n".join(lines)


def _more(left_out: int, kind: str) -> list[str]:
    """The line under a capped list: how many rows it leaves out, and where they are."""
    if left_out <= 0:
        return []
    return [
        f"… and {left_out} more {kind} rows (the first by row number are listed; every "
        f"row's answer is in `{PREDICTIONS}`).",
        "",
    ]


def _classification(e: Evaluation) -> list[str]:
    m = e.metrics
    lines = [f"Accuracy: {m['accuracy']:.4f}", "", "## Scores", ""]
    lines += _table(
        ["", *_SCORES], [[avg, *(m[avg][k] for k in _SCORES)] for avg in ("micro", "macro")]
    )
    lines += ["## Per label", ""]
    rows = [[r["label"], *(r[k] for k in _SCORES), r["support"]] for r in m["labels"]]
    lines += _table(["label", *_SCORES, "support"], rows)
    lines += ["## Confusion matrix", ""]
    confusion = m["confusion"]
    if e.multi_label:
        rows = [
            [label, c[1][1], c[0][1], c[1][0], c[0][0]]
            for label, c in confusion["per_label"].items()
        ]
        lines += _table(["label", "TP", "FP", "FN", "TN"], rows)
    else:
        rows = [
            [g, *counts] for g, counts in zip(confusion["gold"], confusion["matrix"], strict=True)
        ]
        lines += _table(["gold \\ predicted", *confusion["predicted"]], rows)
    return lines


def _extraction(e: Evaluation) -> list[str]:
    m = e.metrics
    lines = ["## Scores", ""]
    rows = [
        [f"{match} {avg}", *(m[match][avg][k] for k in _SCORES)]
        for match in ("exact", "overlap")
        for avg in ("micro", "macro")
    ]
    lines += _table(["", *_SCORES], rows)
    for match in ("exact", "overlap"):
        lines += [f"## Per field, {match} match", ""]
        rows = [
            [r["field"], *(r[k] for k in _SCORES), r["matched"], r["predicted"], r["gold"]]
            for r in m[match]["per_field"]
        ]
        lines += _table(["field", *_SCORES, "matched", "predicted", "gold"], rows)
    return lines


def _plot(e: Evaluation) -> bytes:
    """Draw the run's chart with matplotlib's Agg backend (no display): a PNG's bytes."""
    # matplotlib: only when a report is drawn (a second of import).
    import matplotlib

    matplotlib.use("Agg")
    # after matplotlib.use, so pyplot takes the Agg backend.
    from matplotlib import pyplot

    fonts = logging.getLogger("matplotlib.font_manager")
    level = fonts.level
    fonts.setLevel(logging.ERROR)  # its notes on a font's weights are no news for the user
    try:
        with warnings.catch_warnings():
            # A label in a script no font has is drawn as boxes; its name is in report.md.
            warnings.filterwarnings("ignore", "Glyph .* missing from", UserWarning)
            families = ["DejaVu Sans", *_cjk_families()[:1]]
            with matplotlib.rc_context({"font.family": families}):
                return _draw(pyplot, e)
    finally:
        fonts.setLevel(level)


def _cjk_families() -> list[str]:
    """Names of the system's fonts with Chinese glyphs (added to matplotlib's list if its cache
    predates them)."""
    # matplotlib: as in _plot.
    from matplotlib import font_manager

    def cjk(path: str) -> bool:
        return any(hint in Path(path).name.lower().replace("-", "") for hint in _CJK_HINTS)

    known = {font.fname for font in font_manager.fontManager.ttflist}
    for path in font_manager.findSystemFonts():
        if cjk(path) and path not in known:
            with contextlib.suppress(Exception):  # a font file matplotlib cannot read
                font_manager.fontManager.addfont(path)
    names = (font.name for font in font_manager.fontManager.ttflist if cjk(font.fname))
    return list(dict.fromkeys(names))


def _draw(pyplot: Any, e: Evaluation) -> bytes:
    m = e.metrics
    if e.task == "extract":
        names = m["fields"]
        values = [[r["f1"] for r in m[match]["per_field"]] for match in ("exact", "overlap")]
        figure, axes = pyplot.subplots(figsize=(max(4.0, 0.8 * len(names) + 2), 4))
        positions = range(len(names))
        axes.bar([p - 0.2 for p in positions], values[0], 0.4, label="exact")
        axes.bar([p + 0.2 for p in positions], values[1], 0.4, label="overlap")
        axes.set_xticks(list(positions), names)
        axes.set_ylim(0, 1)
        axes.set_ylabel("F1")
        axes.legend()
    else:
        confusion = m["confusion"]
        if e.multi_label:
            rows = list(confusion["per_label"])
            columns = ["TP", "FP", "FN", "TN"]
            cells = confusion["per_label"].values()
            matrix = [[c[1][1], c[0][1], c[1][0], c[0][0]] for c in cells]
        else:
            rows, columns, matrix = confusion["gold"], confusion["predicted"], confusion["matrix"]
        size = max(4.0, 0.7 * max(len(rows), len(columns)) + 2)
        figure, axes = pyplot.subplots(figsize=(size, size))
        axes.imshow(matrix or [[0]], cmap="Blues")
        darkest = max((max(counts) for counts in matrix), default=0)
        for i, counts in enumerate(matrix):
            for j, count in enumerate(counts):
                color = "white" if count > darkest / 2 else "black"
                axes.text(j, i, str(count), ha="center", va="center", color=color)
        axes.set_xticks(range(len(columns)), columns, rotation=45, ha="right")
        axes.set_yticks(range(len(rows)), rows)
        axes.set_xlabel("predicted")
        axes.set_ylabel("gold")
    axes.set_title(f"{e.rows - e.error_count} rows scored")
    figure.tight_layout()
    png = io.BytesIO()
    figure.savefig(png, format="png", metadata={"Software": _SOFTWARE})
    pyplot.close(figure)
    return png.getvalue()
