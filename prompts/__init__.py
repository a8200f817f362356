"""SeqGPT prompt builders: task + text + labels -> the exact prompts SeqGPT was trained on."""

from prompts.seqgpt import (
    GEN_MARKER,
    MAX_LABEL_CHARS,
    LabelError,
    build_classify_prompt,
    build_extract_prompts,
    chunk_labels,
    neutralize_text,
    parse_labels,
    validate_labels,
)

__all__ = [
    "GEN_MARKER",
    "MAX_LABEL_CHARS",
    "LabelError",
    "build_classify_prompt",
    "build_extract_prompts",
    "chunk_labels",
    "neutralize_text",
    "parse_labels",
    "validate_labels",
]
