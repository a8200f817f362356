"""Parsers for SeqGPT generations: pure functions from generated text to labels and spans.

``parse_classification`` maps a generation to labels of the requested set;
``parse_extraction`` maps it to spans of the input text per requested label
(``parse_extraction_detailed`` also reports the values that the text lacks);
``drop_nested_spans`` removes spans lying inside longer spans of the same request. The parsers
take ``complete=False`` for a generation cut short by its token budget, and then never present
its unfinished tail as an answer. They never raise on any string input, and every span
satisfies ``text[span.start:span.end] == span.text``.
"""

from parsers.classification import parse_classification
from parsers.extraction import parse_extraction, parse_extraction_detailed
from parsers.grounding import drop_nested_spans
from parsers.spans import Extraction, Span

__all__ = [
    "Extraction",
    "Span",
    "drop_nested_spans",
    "parse_classification",
    "parse_extraction",
    "parse_extraction_detailed",
]
