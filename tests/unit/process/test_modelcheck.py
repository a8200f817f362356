"""The model check refuses only what vLLM could not load either, honouring what vLLM honours."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import pytest
from huggingface_hub.errors import (
    LocalEntryNotFoundError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from serving.process.modelcheck import model_problem

_RESPONSE = httpx2.Response(404, request=httpx2.Request("GET", "https://huggingface.co/x"))


class Hub:
    """Stands in for ``hf_hub_download``: records each call, answers from a script."""

    def __init__(self, *answers: BaseException | None) -> None:
        self.answers = list(answers)
        self.calls: list[dict[str, Any]] = []

    def __call__(self, repo_id: str, filename: str, **kwargs: Any) -> str:
        self.calls.append({"repo_id": repo_id, "filename": filename, **kwargs})
        answer = self.answers.pop(0) if self.answers else None
        if answer is not None:
            raise answer
        return "/cache/config.json"


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Hub:
    fake = Hub()
    monkeypatch.setattr("huggingface_hub.hf_hub_download", fake)
    return fake


@pytest.mark.parametrize("model", ["./missing", "/abs/missing", "~/missing", "models/a/b"])
def test_a_missing_local_folder_says_what_to_do(model: str, hub: Hub) -> None:
    problem = model_problem(model)
    assert problem is not None
    assert problem.startswith(f"error: the model folder {model} does not exist")
    assert "make-test-model" in problem
    assert "\n" not in problem
    assert hub.calls == []


def test_existing_files_and_folders_and_uris_are_vllms_to_judge(tmp_path: Path, hub: Hub) -> None:
    (tmp_path / "model.gguf").write_bytes(b"")
    assert model_problem(str(tmp_path)) is None
    assert model_problem(str(tmp_path / "model.gguf")) is None
    assert model_problem("s3://bucket/seqgpt") is None
    assert hub.calls == []


def test_modelscope_is_not_checked_on_the_hugging_face_hub(hub: Hub) -> None:
    assert model_problem("damo/nlp_seqgpt-560m", use_modelscope=True) is None
    assert hub.calls == []


def test_the_hub_check_uses_the_revision_and_token(hub: Hub) -> None:
    assert model_problem("org/name", revision="v2", token="hf_x") is None
    (call,) = hub.calls
    assert call == {
        "repo_id": "org/name",
        "filename": "config.json",
        "revision": "v2",
        "token": "hf_x",
        "cache_dir": None,
    }


@pytest.mark.parametrize(
    "error",
    [
        RepositoryNotFoundError("no repo", response=_RESPONSE),
        RevisionNotFoundError("no revision", response=_RESPONSE),
        LocalEntryNotFoundError("offline and not cached"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_a_definite_no_from_the_hub_is_refused(error: BaseException, hub: Hub) -> None:
    hub.answers = [error]
    problem = model_problem("org/name")
    assert problem is not None
    assert problem.startswith("error: cannot get the model 'org/name' from the Hugging Face hub")
    assert f"({type(error).__name__})" in problem
    assert "\n" not in problem


@pytest.mark.parametrize(
    "error",
    [RemoteEntryNotFoundError("no config.json", response=_RESPONSE), TimeoutError("hub slow")],
    ids=["no-config-json", "outage"],
)
def test_anything_else_is_left_to_vllm(error: BaseException, hub: Hub) -> None:
    hub.answers = [error]
    assert model_problem("org/name") is None


def test_a_copy_cached_in_the_download_dir_is_accepted(hub: Hub) -> None:
    hub.answers = [LocalEntryNotFoundError("not in the default cache"), None]
    assert model_problem("org/name", download_dir="/data/hf") is None
    assert [call["cache_dir"] for call in hub.calls] == [None, "/data/hf"]


def test_offline_without_a_cached_copy_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real hub client, offline: nothing cached anywhere."""
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    problem = model_problem("nobody/no-such-model")
    assert problem is not None
    assert "cannot get the model 'nobody/no-such-model'" in problem
