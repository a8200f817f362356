"""The task endpoints' input checks, cheapest first: each failure is an ``InvalidInputError``
(400) naming the field, raised before any label is validated or any token reaches the engine.

- text: not blank, valid Unicode (no unpaired surrogate); over ``max_text_chars`` it is a 413
  (``TooLarge``), not a 400;
- labels: counted before anything else (a request with 40,000 labels costs one ``len``), then
  free of the model's special-token strings (the parsers treat them as noise), then SeqGPT's
  label rules (``prompts.validate_labels``).

Whether a prompt fits the model's context is the service's question: a text that does not fit
one prompt is sent in windows (``serving.core.windows``).
"""

from __future__ import annotations

from collections.abc import Sequence

from prompts import LabelError, split_labels, unicode_error, validate_labels
from serving.core.errors import InvalidInputError, TooLarge
from serving.core.settings import Settings

__all__ = ["InputChecks"]


class InputChecks:
    """The checks, with the server's limits and the model's special tokens."""

    def __init__(
        self, settings: Settings, special_tokens: Sequence[str], max_model_len: int
    ) -> None:
        self._settings = settings
        self._special_tokens = tuple(special_tokens)
        self._max_model_len = max_model_len

    def text(self, text: str) -> None:
        """Refuse a blank, invalid or too long text."""
        if not text.strip():
            raise InvalidInputError("The text is empty or blank.", parameter="text")
        if (problem := unicode_error(text, "text")) is not None:
            raise InvalidInputError(problem, parameter="text")
        limit = self._settings.max_text_chars
        if len(text) > limit:
            message = f"The text has {len(text)} characters; this server accepts at most {limit}."
            raise TooLarge(message, param="text")

    def labels(self, labels: str | Sequence[str]) -> list[str]:
        """The validated labels: counted, free of special tokens, within SeqGPT's rules."""
        items = split_labels(labels)
        if len(items) > self._settings.max_labels:
            message = (
                f"{len(items)} labels were given; this server accepts at most "
                f"{self._settings.max_labels} per request."
            )
            raise InvalidInputError(message, parameter="labels")
        for position, label in enumerate(items):
            problem = unicode_error(label, "labels") if isinstance(label, str) else None
            if problem is not None:
                raise InvalidInputError(problem, parameter="labels")
            for token in self._special_tokens:
                if isinstance(label, str) and token in label:
                    message = (
                        f"Label {position} holds the model's special token {token}; labels "
                        "must be plain text."
                    )
                    raise InvalidInputError(message, parameter="labels")
        try:
            return validate_labels(items)
        except LabelError as exc:
            raise InvalidInputError(str(exc), parameter="labels") from exc

    @property
    def max_model_len(self) -> int:
        """The model's context, in tokens: a prompt and its answer budget together."""
        return self._max_model_len
