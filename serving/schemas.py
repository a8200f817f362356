"""Request and response bodies of the task endpoints (pydantic)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from prompts import parse_labels

__all__ = [
    "ClassifyRequest",
    "ClassifyResponse",
    "ExtractRequest",
    "ExtractResponse",
    "SpanModel",
    "Usage",
]


class _TaskRequest(BaseModel):
    # Unknown fields are rejected: a client setting e.g. "temperature" must learn that it is not
    # honoured rather than believe it was.
    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="The input text. Surrounding whitespace is stripped.")
    labels: list[str] | str = Field(
        description='Labels as a list, or one string separated by "," or "，".'
    )
    return_prompts: bool = Field(default=False, description="Echo prompts and raw generations.")

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("text must not be empty or blank")
        return text

    @field_validator("labels")
    @classmethod
    def _labels_valid(cls, labels: list[str] | str) -> list[str]:
        return parse_labels(labels)


class ClassifyRequest(_TaskRequest):
    """Body of ``POST /v1/classify``."""

    multi_label: bool = Field(
        default=False,
        description="Return every label the model names instead of exactly one.",
    )


class ExtractRequest(_TaskRequest):
    """Body of ``POST /v1/extract``."""


class Usage(BaseModel):
    """Token counts summed over the request's prompts."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class _TaskResponse(BaseModel):
    prompts: list[str] | None = Field(default=None, description="Only with return_prompts.")
    generations: list[str] | None = Field(default=None, description="Only with return_prompts.")
    usage: Usage


class ClassifyResponse(_TaskResponse):
    """The chosen label (``None`` if the model named none of the set) and all named labels."""

    label: str | None
    labels: list[str]


class SpanModel(BaseModel):
    """A span of the input: ``text[start:end] == span.text`` (character offsets)."""

    text: str
    start: int
    end: int


class ExtractResponse(_TaskResponse):
    """Every requested label with its grounded spans, and values not found in the text."""

    fields: dict[str, list[SpanModel]]
    ungrounded: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Values generated for a label that do not occur in the text.",
    )
