"""Request and response bodies of the task endpoints (pydantic).

Requests are strict: unknown fields are rejected (a client setting ``temperature`` must learn
that it is not honoured), booleans must be JSON booleans (``"yes"``, ``1`` and ``"true"`` are
400s), and text and labels must be valid Unicode (a lone surrogate such as ``"\\udfff"`` is a
400). Label limits and label rules are checked by the service, after the label count.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from prompts import unicode_error

__all__ = [
    "ClassifyBatchRequest",
    "ClassifyBatchResponse",
    "ClassifyRequest",
    "ClassifyResponse",
    "ErrorInfo",
    "ExtractBatchRequest",
    "ExtractBatchResponse",
    "ExtractRequest",
    "ExtractResponse",
    "ItemError",
    "SpanModel",
    "Usage",
]


_DECODING = (
    '"fast": greedy decoding (a single-label classification constrained to the label set). '
    "\"reference\": SeqGPT's official beam search with 4 beams, up to the server's max_new_tokens "
    "(256), without the official repetition penalty (vLLM's beam search takes none); slower."
)
_SCORES = (
    "Return scores: for every label, the probability the model gives to answering exactly that "
    "label, normalised over the set (they sum to 1); label is then the best-scored one. "
    "Single-label classification with fast decoding only."
)


_RESULTS = "One per text, in input order: the single endpoint's answer, or that item's error."


def _check_unicode(value: str, what: str) -> None:
    if (problem := unicode_error(value, what)) is not None:
        raise ValueError(problem)


class _TaskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    text: str = Field(
        description="The input text (surrounding whitespace is stripped), up to the server's "
        "SEQGPT_MAX_TEXT_CHARS characters (100,000 by default; longer: 413). A text that does "
        "not fit one prompt is answered in overlapping windows."
    )
    return_prompts: bool = Field(default=False, description="Echo prompts and raw generations.")
    decoding: Literal["fast", "reference"] = Field(default="fast", description=_DECODING)

    @field_validator("text")
    @classmethod
    def _text_valid(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("The text is empty or blank.")
        _check_unicode(text, "text")
        return text

    @field_validator("labels", check_fields=False)
    @classmethod
    def _labels_unicode(cls, labels: list[str] | str | None) -> list[str] | str | None:
        for label in [labels] if isinstance(labels, str) else labels or ():
            _check_unicode(label, "labels")
        return labels


class ClassifyRequest(_TaskRequest):
    """Body of ``POST /v1/classify``."""

    labels: list[str] | str = Field(
        description='Labels as a list, or one string separated by "," or "，".'
    )

    multi_label: bool = Field(
        default=False,
        description="Return every label the model names instead of exactly one.",
    )
    scores: bool = Field(default=False, description=_SCORES)


_SCHEMA = (
    "Instead of labels, a tree of fields: each key is a field extracted from the text, its value "
    "the fields to extract for each entity found under it (a list of names, an object for a "
    'deeper level, or null for none), e.g. {"人物": ["职位", "就职于"]}. Each span of such a '
    "field then holds its own fields. Limits: SEQGPT_SCHEMA_MAX_DEPTH levels, "
    "SEQGPT_SCHEMA_MAX_CHILDREN fields per entity, SEQGPT_SCHEMA_MAX_ENTITIES entities expanded "
    "per field. Fast decoding only."
)
_EXTRACT_LABELS = 'Labels as a list, or one string separated by "," or "，" (or send a schema).'


class _Schema(BaseModel):
    """The ``schema`` field of the extraction requests (its tree is checked by the service)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    labels: list[str] | str | None = Field(default=None, description=_EXTRACT_LABELS)
    schema_: dict[str, Any] | None = Field(default=None, alias="schema", description=_SCHEMA)


class ExtractRequest(_Schema, _TaskRequest):
    """Body of ``POST /v1/extract``."""


class Usage(BaseModel):
    """Token counts summed over the request's prompts."""

    prompt_tokens: int = Field(description="Tokens of every prompt sent (scores: and the labels).")
    completion_tokens: int = Field(description="Tokens generated, over every prompt.")
    total_tokens: int = Field(description="prompt_tokens + completion_tokens.")


class _TaskResponse(BaseModel):
    # Listed first among the bases of a response, so these fields follow its answer fields.
    windows: int = Field(
        description="How many windows of the text the answer combines: 1 unless the text does "
        "not fit one prompt, which is then sent as overlapping windows of whole sentences "
        "(spans keep offsets in the whole text; classification is the windows' majority vote, "
        "multi-label the union of their labels, scores the mean of their scores)."
    )
    truncated: bool = Field(
        description="True when a prompt's answer stopped at its token budget: the values it was "
        "writing are left out, never returned cut (any prompt of any window)."
    )
    usage: Usage = Field(description="Token counts summed over every prompt of every window.")
    prompts: list[str] | None = Field(
        default=None,
        description="Only with return_prompts: every prompt sent, window by window, each "
        "window's label chunks in order.",
    )
    generations: list[str] | None = Field(
        default=None, description="Only with return_prompts: the raw generation of each prompt."
    )


class _ClassifyAnswer(BaseModel):
    label: str | None = Field(description="The answer: one label of the set, or null.")
    labels: list[str] = Field(description="Every label of the set the model named, in order.")
    scores: dict[str, float] | None = Field(
        default=None, description="Only with scores: every label's probability, in set order."
    )


class ClassifyResponse(_TaskResponse, _ClassifyAnswer):
    """The chosen label (``None`` if the model named none of the set) and all named labels."""


class SpanModel(BaseModel):
    """A span of the input: ``text[start:end] == span.text`` (character offsets)."""

    text: str = Field(description="The span, exactly as it is in the input text.")
    start: int = Field(description="Offset of its first character in the input text.")
    end: int = Field(description="Offset just after its last character.")
    fields: dict[str, list[SpanModel]] | None = Field(
        default=None,
        description="Only with a schema, on a field with children: this entity's fields, or "
        "null when the entity was not expanded (past SEQGPT_SCHEMA_MAX_ENTITIES distinct "
        "entities of the field, or its composed labels break the label rules).",
    )
    ungrounded: dict[str, list[str]] | None = Field(
        default=None,
        description="Only with fields: values generated for this entity that the text lacks.",
    )


class _ExtractAnswer(BaseModel):
    fields: dict[str, list[SpanModel]] = Field(
        description="Every requested label, with each mention in the text of each value."
    )
    ungrounded: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Values generated for a label that do not occur in the text.",
    )


class ExtractResponse(_TaskResponse, _ExtractAnswer):
    """Every requested label with its grounded spans, and values not found in the text."""


class _BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    texts: list[str] = Field(
        description="The texts, answered in this order. A text that is empty or invalid fails "
        "its own item, not the batch."
    )
    return_prompts: bool = Field(default=False, description="Echo prompts and raw generations.")
    decoding: Literal["fast", "reference"] = Field(default="fast", description=_DECODING)


class ClassifyBatchRequest(_BatchRequest):
    """Body of ``POST /v1/classify/batch``."""

    labels: list[str] | str = Field(
        description='Labels for every text, as a list or one string separated by "," or "，".'
    )

    multi_label: bool = Field(
        default=False,
        description="Return every label the model names instead of exactly one.",
    )
    scores: bool = Field(default=False, description=_SCORES)


class ExtractBatchRequest(_Schema, _BatchRequest):
    """Body of ``POST /v1/extract/batch``."""


class ErrorInfo(BaseModel):
    """The common error body's ``error``: vLLM's OpenAI ``ErrorInfo``, field for field (declared
    here so that the bodies, and the Python client that reads them, need no vLLM)."""

    message: str
    type: str
    param: str | None = None
    code: int


class ItemError(BaseModel):
    """A batch item that failed alone, in the common error body."""

    error: ErrorInfo = Field(description="What the single endpoint would answer for this text.")


class ClassifyBatchResponse(BaseModel):
    """One result per text, in input order: the single endpoint's answer, or an error."""

    results: list[ClassifyResponse | ItemError] = Field(description=_RESULTS)


class ExtractBatchResponse(BaseModel):
    """One result per text, in input order: the single endpoint's answer, or an error."""

    results: list[ExtractResponse | ItemError] = Field(description=_RESULTS)
