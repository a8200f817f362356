"""Refuse, in one line and before the engine starts, a model vLLM could not load either.

The check is narrow on purpose: it must never refuse what vLLM would serve. It speaks only for
a local path that does not exist, and for a hub id whose ``config.json`` the hub says does not
exist (no such repository, revision, or access) or that is neither reachable nor cached
(offline). vLLM reads a hub model's config through the default Hugging Face cache with
``--revision`` and ``--hf-token``, so the check does the same; it also accepts a copy cached in
``--download-dir``. Object-store URIs (``s3://`` …), existing files (GGUF) and folders, ModelScope
(``VLLM_USE_MODELSCOPE``) and any other hub answer are left to vLLM.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["model_problem"]

_TEST_MODEL_HINT = ".venv/bin/seqgpt-serve make-test-model ./test-model"


def _looks_local(model: str) -> bool:
    """A hub id is ``name`` or ``org/name``; these can only be paths."""
    return model.startswith((".", "/", "~")) or model.count("/") > 1


def model_problem(
    model: str,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    download_dir: str | None = None,
    use_modelscope: bool = False,
) -> str | None:
    """Why vLLM cannot load ``model`` (one line saying what to do), or None when it may."""
    if "://" in model or Path(model).expanduser().exists():
        return None
    if _looks_local(model):
        return (
            f"error: the model folder {model} does not exist; pass a folder holding the "
            f"SeqGPT-560M files, or make a random-weight one with: {_TEST_MODEL_HINT}"
        )
    if use_modelscope:
        return None
    reason = _hub_refusal(model, revision, token, download_dir)
    if reason is None:
        return None
    return (
        f"error: cannot get the model {model!r} from the Hugging Face hub ({reason}); check the "
        "name, --revision and network (HF_TOKEN, HF_ENDPOINT), or serve a local folder: offline, "
        f"copy the SeqGPT-560M files to a folder, or make a random-weight one with: "
        f"{_TEST_MODEL_HINT}"
    )


def _hub_refusal(
    model: str, revision: str | None, token: str | bool | None, download_dir: str | None
) -> str | None:
    """The hub's definite no for ``model``'s config (error class name), or None."""
    # huggingface_hub: only for a model given by hub name.
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    refusal: str | None = None
    for cache_dir in dict.fromkeys([None, download_dir]):
        try:
            hf_hub_download(
                model, "config.json", revision=revision, token=token, cache_dir=cache_dir
            )
        except (LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError) as exc:
            refusal = refusal or type(exc).__name__
        except Exception:  # no config.json (other formats), a hub outage …: vLLM's to judge
            return None
        else:
            return None
    return refusal
