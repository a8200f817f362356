"""``seqgpt-serve eval`` over the real service with a scripted fake engine (known answers): the
exact metrics.json, every wrong row's request id in report.md, resume after a stop, bad inputs."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from serving.batch.engine import EngineAnswerer, build_service
from serving.cli.app import main
from serving.core.settings import Settings
from tests.api.fake_engine import FakeEngine

LABELS = "财经,体育,娱乐"
CLASSIFY_ROWS: list[dict[str, Any]] = [
    {"id": "a", "text": "股市大涨", "label": "财经"},
    {"id": "b", "text": "球队夺冠", "label": "体育"},
    {"id": "c", "text": "电影上映", "labels": ["娱乐"]},  # a one-item list is one label
    {"id": "d", "text": "基金净值", "label": "财经"},
    {"id": "e", "text": "", "label": "体育"},  # an error row: never scored
    {"id": "f", "text": "比赛结果", "label": "体育"},
]
ANSWERS = {"股市大涨": "财经", "球队夺冠": "体育", "电影上映": "财经", "基金净值": "天气"}
ANSWERS |= {"比赛结果": "体育"}


def _text(prompt: str) -> str:
    return prompt.split("\n")[0].removeprefix("输入: ")


def _write(path: Path, rows: list[Any]) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows]
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
    """The engine every ``--url`` run of this module reaches (through the real service)."""
    engine = FakeEngine(respond=lambda prompt, _p: ANSWERS.get(_text(prompt), "None"))
    runner = EngineAnswerer(build_service(engine, Settings(ui=False)), batch_size=4)

    def source(*_args: Any) -> Callable[[], Any]:
        return lambda: contextlib.nullcontext(runner)

    monkeypatch.setattr("serving.batch.remote.http_source", source)
    monkeypatch.delenv("VLLM_API_KEY", raising=False)
    return engine


def _eval(rows: Path, report: Path, *extra: str) -> int:
    argv = ["eval", str(rows), "-o", str(report), "--url", "http://scripted", *extra]
    return main(argv)


def test_classification_metrics_are_exact_and_wrong_rows_have_their_request_ids(
    engine: FakeEngine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _write(tmp_path / "news.jsonl", CLASSIFY_ROWS)
    report = tmp_path / "report"
    assert _eval(rows, report, "--task", "classify", "--labels", LABELS) == 0
    assert len(engine.calls) == 5
    metrics = json.loads((report / "metrics.json").read_text(encoding="utf-8"))
    # gold 财经 体育 娱乐 财经 体育; predicted 财经 体育 财经 (none) 体育
    assert metrics == {
        "task": "classify",
        "multi_label": False,
        "rows": 6,
        "scored": 5,
        "errors": 1,
        "wrong": 2,
        "accuracy": 0.6,
        "micro": {"precision": 0.75, "recall": 0.6, "f1": pytest.approx(2 / 3)},
        "macro": {"precision": 0.5, "recall": 0.5, "f1": 0.5},
        "labels": [
            {"label": "财经", "precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2},
            {"label": "体育", "precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2},
            {"label": "娱乐", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1},
        ],
        "confusion": {
            "gold": ["财经", "体育", "娱乐"],
            "predicted": ["财经", "体育", "娱乐", "(no label)"],
            "matrix": [[1, 0, 0, 1], [0, 2, 0, 0], [1, 0, 0, 0]],
        },
        "wrong_rows": [
            {"row": 3, "id": "c", "request_id": "batch-c"},
            {"row": 4, "id": "d", "request_id": "batch-d"},
        ],
        "error_rows": [
            {
                "row": 5,
                "id": "e",
                "request_id": None,
                "type": "BadRequestError",
                "message": metrics["error_rows"][0]["message"],
            }
        ],
    }
    text = (report / "report.md").read_text(encoding="utf-8")
    assert "| 3 | c | batch-c | 娱乐 | 财经 |" in text
    assert "| 4 | d | batch-d | 财经 | — |" in text
    assert "## Error rows (1)" in text
    assert (report / "confusion.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    last = capsys.readouterr().err.strip().splitlines()[-1]
    scores = "accuracy 0.6000, macro F1 0.5000; 5 rows scored, 1 errors"
    assert last == f"report: {report / 'report.md'} ({scores})"


def test_multi_label_gold_is_counted_per_label(engine: FakeEngine, tmp_path: Path) -> None:
    engine.respond = lambda prompt, _p: {"a": "财经，体育", "b": "体育", "c": "None"}[_text(prompt)]
    rows = [
        {"text": "a", "labels": ["财经", "体育"]},
        {"text": "b", "labels": "体育,娱乐"},
        {"text": "c", "labels": []},
    ]
    report = tmp_path / "r"
    argv = ["--task", "classify", "--labels", LABELS, "--multi-label"]
    assert _eval(_write(tmp_path / "in.jsonl", rows), report, *argv) == 0
    metrics = json.loads((report / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["accuracy"] == pytest.approx(2 / 3)
    assert metrics["micro"] == {"precision": 1.0, "recall": 0.75, "f1": pytest.approx(6 / 7)}
    assert metrics["confusion"]["per_label"]["娱乐"] == [[2, 0], [1, 0]]
    assert metrics["wrong_rows"] == [{"row": 2, "id": 2, "request_id": "batch-2"}]
    assert all(call.params.structured_outputs is None for call in engine.calls)


def test_extraction_metrics_exact_and_overlap(engine: FakeEngine, tmp_path: Path) -> None:
    answers = {
        "张三在北京市工作": "人物: 张三\n地点: 北京",
        "李四去了上海": "人物: 李四\n地点: 上海",
    }
    engine.respond = lambda prompt, _p: answers[_text(prompt)]
    rows = [
        {"id": "x", "text": "张三在北京市工作", "fields": {"人物": ["张三"], "地点": ["北京市"]}},
        {"id": "y", "text": "李四去了上海", "fields": {"人物": "李四", "地点": ["上海"]}},
    ]
    report = tmp_path / "r"
    assert _eval(_write(tmp_path / "in.jsonl", rows), report, "--task", "extract",
                 "--labels", "人物,地点") == 0  # fmt: skip
    metrics = json.loads((report / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["exact"]["micro"] == {"precision": 0.75, "recall": 0.75, "f1": 0.75}
    assert metrics["overlap"]["micro"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert metrics["exact"]["per_field"][1] == {
        "field": "地点",
        "precision": 0.5,
        "recall": 0.5,
        "f1": 0.5,
        "matched": 1,
        "predicted": 2,
        "gold": 2,
    }
    assert metrics["wrong_rows"] == [{"row": 1, "id": "x", "request_id": "batch-x"}]
    text = (report / "report.md").read_text(encoding="utf-8")
    assert '| 1 | x | batch-x | 地点 | {"人物": ["张三"], "地点": ["北京市"]} |' in text
    assert (report / "fields.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_schema_runs_score_every_field_path(engine: FakeEngine, tmp_path: Path) -> None:
    answers = {
        "人物": {"x": "人物: 张三\t李四", "y": "人物: 王五\t赵六"},
        "张三的职位": {"x": "张三的职位: 工程师"},
        "李四的职位": {"x": "李四的职位: 总经理"},  # overlaps the gold 经理
        "王五的职位": {"y": "王五的职位: None"},
        "赵六的职位": {"y": "赵六的职位: 司机"},  # under an entity the gold has not
    }

    def respond(prompt: str, _params: object) -> str:
        row = "x" if "张三" in _text(prompt) else "y"
        return answers[prompt.split("\n")[1].removeprefix("抽取: ")][row]

    engine.respond = respond
    rows = [
        {
            "id": "x",
            "text": "张三是工程师，李四是总经理",
            "fields": {
                "人物": [
                    {"text": "张三", "fields": {"职位": ["工程师"]}},
                    {"text": "李四", "fields": {"职位": "经理"}},
                ]
            },
        },
        {"id": "y", "text": "王五在家，司机赵六", "fields": {"人物": ["王五"]}},
    ]
    schema = tmp_path / "schema.json"
    schema.write_text('{"人物": ["职位"]}', encoding="utf-8")
    report = tmp_path / "r"
    argv = ["--task", "extract", "--schema", str(schema)]
    assert _eval(_write(tmp_path / "in.jsonl", rows), report, *argv) == 0
    assert len(engine.calls) == 6
    metrics = json.loads((report / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["fields"] == ["人物", "人物.职位"]
    # 人物: 4 predicted, 3 gold, 3 matched; 人物.职位: 张三/工程师 exact, 李四/总经理 overlap only,
    # 赵六/司机 wrong: 3 predicted, 2 gold
    exact, overlap = metrics["exact"], metrics["overlap"]
    assert [(r["field"], r["matched"], r["predicted"], r["gold"]) for r in exact["per_field"]] == [
        ("人物", 3, 4, 3),
        ("人物.职位", 1, 3, 2),
    ]
    assert exact["per_field"][1] | {"f1": round(exact["per_field"][1]["f1"], 6)} == {
        "field": "人物.职位",
        "precision": pytest.approx(1 / 3),
        "recall": 0.5,
        "f1": 0.4,
        "matched": 1,
        "predicted": 3,
        "gold": 2,
    }
    assert exact["micro"] == {
        "precision": pytest.approx(4 / 7),
        "recall": 0.8,
        "f1": pytest.approx(2 / 3),
    }
    assert overlap["micro"] == {
        "precision": pytest.approx(5 / 7),
        "recall": 1.0,
        "f1": pytest.approx(5 / 6),
    }
    assert overlap["per_field"][1]["matched"] == 2
    assert [r["row"] for r in metrics["wrong_rows"]] == [1, 2]
    text = (report / "report.md").read_text(encoding="utf-8")
    assert "| 1 | x | batch-x | 人物.职位 | " in text
    assert "| 2 | y | batch-y | 人物, 人物.职位 | " in text


def test_schema_is_for_extraction_and_not_with_labels(
    engine: FakeEngine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _write(tmp_path / "in.jsonl", [{"text": "t", "fields": {"a": ["t"]}}])
    schema = tmp_path / "schema.json"
    schema.write_text('{"a": ["b"]}', encoding="utf-8")
    report = tmp_path / "r"
    assert _eval(rows, report, "--task", "classify", "--labels", "a", "--schema", str(schema)) == 2
    assert "--schema is for --task extract" in capsys.readouterr().err
    assert _eval(rows, report, "--task", "extract", "--labels", "a", "--schema", str(schema)) == 2
    assert "pass --labels or --schema, not both" in capsys.readouterr().err
    assert engine.calls == []
    assert not report.exists()


def test_a_stopped_eval_resumes_to_the_same_metrics_and_no_row_twice(
    engine: FakeEngine, tmp_path: Path
) -> None:
    rows = _write(tmp_path / "news.jsonl", CLASSIFY_ROWS)
    options = ["--task", "classify", "--labels", LABELS, "--concurrency", "1"]
    assert _eval(rows, tmp_path / "whole", *options) == 0
    whole = (tmp_path / "whole" / "metrics.json").read_text(encoding="utf-8")

    engine.calls.clear()

    def stop_on_the_third(prompt: str, _params: object) -> str:
        if len(engine.calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)  # as a Ctrl-C would, mid-run
        return ANSWERS.get(_text(prompt), "None")

    engine.respond = stop_on_the_third
    report = tmp_path / "report"
    assert _eval(rows, report, *options) == 128 + signal.SIGINT
    assert not (report / "metrics.json").exists()
    first = (report / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    assert 2 <= len(first) < 6

    engine.respond = lambda prompt, _p: ANSWERS.get(_text(prompt), "None")
    engine.calls.clear()
    assert _eval(rows, report, *options) == 0
    lines = (report / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    assert lines[: len(first)] == first
    assert sorted(json.loads(line)["row"] for line in lines) == [1, 2, 3, 4, 5, 6]
    answered = [json.loads(line)["id"] for line in first if "error" not in json.loads(line)]
    assert not {_text(c.prompt) for c in engine.calls} & {
        row["text"] for row in CLASSIFY_ROWS if row["id"] in answered
    }
    assert (report / "metrics.json").read_text(encoding="utf-8") == whole


@pytest.mark.parametrize(
    ("rows", "extra", "message"),
    [
        ([{"text": "t"}], ["--task", "classify", "--labels", LABELS], "Row 1 has no gold answer"),
        (
            [{"text": "t", "label": "财经"}, {"text": "u"}],
            ["--task", "classify", "--labels", LABELS],
            "Row 2 has no gold answer: give 'label'",
        ),
        (
            [{"text": "t", "labels": ["财经", "体育"]}],
            ["--task", "classify", "--labels", LABELS],
            "Row 1 has 2 gold labels, not one; pass --multi-label",
        ),
        (
            [{"text": "t", "label": "财经", "labels": ["体育"]}],
            ["--task", "classify", "--labels", LABELS],
            "Row 1 has both 'label' and 'labels'",
        ),
        ([{"text": "t"}], ["--task", "extract", "--labels", "a"], "Row 1 has no gold answer"),
        (
            [{"text": "t", "fields": {"a": [1]}}],
            ["--task", "extract", "--labels", "a"],
            "Row 1's gold 'fields' must be an object {field: [span text, ...]}; 'a' is not",
        ),
        (
            [{"text": "t", "fields": {"a": [{"text": "t", "fields": {"b": [2]}}]}}],
            ["--task", "extract", "--labels", "a"],
            "Row 1's gold 'fields' must be an object {field: [span text, ...]}; 'b' is not",
        ),
        (
            [{"text": "t", "fields": ["a"]}],
            ["--task", "extract", "--labels", "a"],
            "Row 1's gold 'fields' must be an object",
        ),
        ([{"text": "t", "label": "a"}], ["--task", "summarize"], "--task must be one of"),
        ([{"text": "t", "label": "a"}], ["--task", "classify"], "--task classify needs --labels"),
        (
            [{"text": "t", "fields": {}}],
            ["--task", "extract", "--multi-label"],
            "--multi-label is for --task classify",
        ),
    ],
)
def test_bad_inputs_are_one_line_and_status_2_before_any_work(
    engine: FakeEngine,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    rows: list[Any],
    extra: list[str],
    message: str,
) -> None:
    report = tmp_path / "report"
    assert _eval(_write(tmp_path / "in.jsonl", rows), report, *extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert err.count("\n") == 1, err
    assert message in err
    assert engine.calls == []
    assert not report.exists()


def test_a_usage_error_of_the_run_leaves_no_report_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _write(tmp_path / "in.jsonl", [{"text": "t", "label": "财经"}])
    report = tmp_path / "report"
    argv = ["eval", str(rows), "-o", str(report), "--task", "classify", "--labels", LABELS]
    assert main(argv) == 2  # neither --model nor --url
    assert "pass --model DIR" in capsys.readouterr().err
    assert not report.exists()


def test_csv_gold_columns(engine: FakeEngine, tmp_path: Path) -> None:
    rows = tmp_path / "in.csv"
    rows.write_text("id,text,label\na,股市大涨,财经\nb,球队夺冠,娱乐\n", encoding="utf-8")
    report = tmp_path / "r"
    assert _eval(rows, report, "--task", "classify", "--labels", LABELS) == 0
    metrics = json.loads((report / "metrics.json").read_text(encoding="utf-8"))
    assert (metrics["accuracy"], metrics["wrong_rows"][0]["row"]) == (0.5, 2)

    engine.respond = lambda _prompt, _p: "人物: 张三"
    spans = tmp_path / "spans.csv"
    spans.write_text('text,fields\n张三来了,"{""人物"": [""张三""]}"\n', encoding="utf-8")
    assert _eval(spans, tmp_path / "s", "--task", "extract", "--labels", "人物") == 0
    metrics = json.loads((tmp_path / "s" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["exact"]["micro"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0}


REPORT_FILES = ["metrics.json", "report.md", "confusion.png"]


@pytest.mark.parametrize("name", REPORT_FILES)
def test_a_link_in_a_report_files_place_is_refused_and_its_target_untouched(
    engine: FakeEngine, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    rows = _write(tmp_path / "news.jsonl", CLASSIFY_ROWS)
    report = tmp_path / "report"
    report.mkdir()
    target = tmp_path / "precious.txt"
    target.write_text("not yours\n")
    (report / name).symlink_to(target)
    assert _eval(rows, report, "--task", "classify", "--labels", LABELS) == 2
    assert target.read_text() == "not yours\n"
    assert (report / name).is_symlink()
    err = capsys.readouterr().err
    assert f"error: {report / name} is a symbolic link" in err
    assert engine.calls == []  # refused before any work


@pytest.mark.parametrize("name", REPORT_FILES)
def test_a_report_file_of_someone_else_is_refused_untouched(
    engine: FakeEngine, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    rows = _write(tmp_path / "news.jsonl", CLASSIFY_ROWS)
    report = tmp_path / "report"
    report.mkdir()
    (report / name).write_text("my notes\n")
    assert _eval(rows, report, "--task", "classify", "--labels", LABELS) == 2
    assert (report / name).read_text() == "my notes\n"
    assert f"{report / name} is not a file this command wrote" in capsys.readouterr().err


def test_a_link_planted_after_the_check_is_replaced_never_followed(
    engine: FakeEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = _write(tmp_path / "news.jsonl", CLASSIFY_ROWS)
    report = tmp_path / "report"
    report.mkdir()
    target = tmp_path / "precious.txt"
    target.write_text("not yours\n")
    # Every check passes; the link appears once the run is over, before the report is written.
    monkeypatch.setattr("serving.batch.owned.check_ours", lambda *_args: None)
    monkeypatch.setattr("serving.batch.report.check_ours", lambda *_args: None)
    written = report / "predictions.jsonl"
    real = json.loads

    def plant(text: Any, **kwargs: Any) -> Any:
        if not (report / "report.md").is_symlink() and written.exists():
            (report / "report.md").symlink_to(target)
        return real(text, **kwargs)

    monkeypatch.setattr("serving.batch.evaluate.json.loads", plant)
    assert _eval(rows, report, "--task", "classify", "--labels", LABELS) == 0
    assert target.read_text() == "not yours\n"
    assert not (report / "report.md").is_symlink()
    assert (report / "report.md").read_text(encoding="utf-8").startswith("# Evaluation: ")


def test_a_report_is_written_again_over_its_own(engine: FakeEngine, tmp_path: Path) -> None:
    rows = _write(tmp_path / "news.jsonl", CLASSIFY_ROWS)
    report = tmp_path / "report"
    options = ["--task", "classify", "--labels", LABELS]
    assert _eval(rows, report, *options) == 0
    first = {name: (report / name).read_bytes() for name in REPORT_FILES}
    assert _eval(rows, report, *options) == 0  # resumed: every row done, the report rewritten
    assert {name: (report / name).read_bytes() for name in REPORT_FILES} == first
    assert sorted(p.name for p in report.iterdir()) == sorted([*REPORT_FILES, "predictions.jsonl"])


@pytest.mark.parametrize(
    ("extra", "priority"), [((), "batch"), (("--priority", "interactive"), "interactive")]
)
def test_eval_sends_its_rows_as_batch_work_unless_told(
    engine: FakeEngine,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    extra: tuple[str, ...],
    priority: str,
) -> None:
    runner = EngineAnswerer(build_service(engine, Settings(ui=False)), batch_size=4)
    asked: list[tuple[Any, ...]] = []

    def source(*args: Any) -> Callable[[], Any]:
        asked.append(args)
        return lambda: contextlib.nullcontext(runner)

    monkeypatch.setattr("serving.batch.remote.http_source", source)
    rows = _write(tmp_path / "news.jsonl", CLASSIFY_ROWS)
    assert _eval(rows, tmp_path / "r", "--task", "classify", "--labels", LABELS, *extra) == 0
    assert [args[-1] for args in asked] == [priority]
