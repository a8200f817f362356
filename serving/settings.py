"""The plugin's own settings, read once from ``SEQGPT_*`` environment variables at startup.

vLLM's flags (model, port, ``--api-key``, ``--max-model-len`` …) stay vLLM's; these are only
what the task endpoints add on top.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Limits and decoding defaults of the task endpoints."""

    model_config = SettingsConfigDict(env_prefix="SEQGPT_", frozen=True)

    max_text_chars: int = Field(default=4000, ge=1)
    """Longest accepted text, in characters. Longer texts get a 400, never a silent cut: the
    official code truncates on the left, which cuts SeqGPT's instruction itself off."""

    max_labels: int = Field(default=64, ge=1)
    """Most labels accepted in one request."""

    chunk_size: int = Field(default=6, ge=1, le=64)
    """Labels per extraction prompt (SeqGPT was trained with 6)."""

    max_new_tokens: int = Field(default=256, ge=1)
    """Upper bound on generated tokens per prompt (SeqGPT's reference ``max_new_tokens``)."""

    span_tokens_per_label: int | None = Field(default=None, ge=1)
    """Extraction budget per label for its spans, on top of the label's own tokens (unset: the
    task registry's default)."""

    constrain_classification: bool = True
    """Constrain single-label classification to the label set (vLLM structured outputs)."""
