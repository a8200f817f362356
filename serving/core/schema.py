"""Nested schemas: extraction of fields *for each found entity*, as UIE's schema trees do.

A schema is a tree: ``{"人物": ["职位", "就职于"], "公司": {"总部": ["城市"]}}``. Its keys are
fields extracted from the text (one extraction, chunked and windowed as any); each value names
the fields to extract for every entity found under that key: a list of field names, an object
for a deeper level, or ``null``/``[]`` for none. Each found entity's children are a second
extraction of the same text whose labels name the entity (``compose``: ``张三的职位``), and so on
down the tree, each level once its parent is answered. Everything here is pure: the service
hands ``walk`` its way to run one extraction and to run several at once.

Limits (``Settings``): ``schema_max_depth`` levels (the top one included),
``schema_max_children`` fields under one node, and ``schema_max_entities`` distinct entities
expanded per field; the rest of a field's entities are not expanded (their spans say
``fields: null``), and so is an entity whose composed labels break SeqGPT's label rules (a
comma in it, too long). ``prompts_per_window`` counts the most prompts a tree can send, from
these counts alone, so the service admits the whole tree before any work.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

from parsers import Extraction, Span
from serving.core.checks import InputChecks
from serving.core.errors import InvalidInputError
from serving.core.results import Generation

__all__ = ["Nested", "Schema", "compose", "parse_schema", "prompts_per_window", "walk"]

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


@dataclass(frozen=True)
class Schema:
    """One level of a schema tree: its fields in order, and the levels below some of them."""

    fields: list[str]
    children: dict[str, Schema] = field(default_factory=dict)


@dataclass(frozen=True)
class Nested:
    """One level's answer: its spans (as an ``Extraction`` has them) and each expanded entity's
    answer one level down, keyed by field and entity text."""

    fields: dict[str, list[Span]]
    ungrounded: dict[str, list[str]]
    children: dict[tuple[str, str], Nested] = field(default_factory=dict)
    expandable: frozenset[str] = frozenset()
    """The fields with children in the schema: their spans not in ``children`` were not
    expanded."""


def _invalid(message: str) -> InvalidInputError:
    return InvalidInputError(message, parameter="schema")


def parse_schema(
    raw: Any, checks: InputChecks, *, max_depth: int, max_children: int, where: str = "schema"
) -> Schema:
    """The checked tree of ``raw`` (a JSON object), or a 400 naming ``schema``: an empty level,
    a leaf that is not a field name, an invalid name, too many children or too deep a tree."""
    if not isinstance(raw, Mapping) or not raw:
        message = f"'{where}' must be a non-empty object of field names (or a list of them)."
        raise _invalid(message)
    try:
        names = checks.labels(list(raw))
    except InvalidInputError as exc:
        raise _invalid(f"'{where}': {exc}") from None
    if where != "schema" and len(names) > max_children:
        message = f"'{where}' has {len(names)} fields; this server accepts at most {max_children}"
        raise _invalid(message + " under one entity.")
    children: dict[str, Schema] = {}
    for key, value in raw.items():
        name, path = key.strip(), f"{where}.{key.strip()}"
        if value is None or value == []:
            continue
        if max_depth <= 1:
            message = f"'{path}' goes below the deepest level this server accepts"
            raise _invalid(message + " (SEQGPT_SCHEMA_MAX_DEPTH).")
        if isinstance(value, list):
            if not all(isinstance(leaf, str) for leaf in value):
                raise _invalid(f"'{path}' must list field names (strings) only.")
            value = dict.fromkeys(value)
        children[name] = parse_schema(
            value, checks, max_depth=max_depth - 1, max_children=max_children, where=path
        )
    return Schema(names, children)


def prompts_per_window(schema: Schema, chunk_size: int, max_entities: int) -> int:
    """The most prompts ``schema`` sends per window of the text: its own label chunks, and for
    each field with children, ``max_entities`` times its children's tree."""
    own = math.ceil(len(schema.fields) / chunk_size)
    below = sum(prompts_per_window(c, chunk_size, max_entities) for c in schema.children.values())
    return own + max_entities * below


def compose(entity: str, name: str) -> str:
    """The label asking for ``name`` of ``entity``: UIE's ``{entity}的{name}`` when either is
    Chinese, else ``{name} of {entity}`` (our choice: SeqGPT publishes no composition)."""
    entity = entity.strip()
    if _CJK.search(entity) or _CJK.search(name):
        return f"{entity}的{name}"
    return f"{name} of {entity}"


Extract = Callable[[list[str]], Awaitable[tuple[Extraction, list[Generation]]]]
Gather = Callable[[list[Coroutine[Any, Any, Any]]], Awaitable[list[Any]]]


async def walk(
    schema: Schema,
    labels: list[str],
    extract: Extract,
    gather: Gather,
    *,
    max_entities: int,
    valid: Callable[[list[str]], bool],
) -> tuple[Nested, list[Generation]]:
    """Answer ``schema`` asking ``labels`` (its fields, composed with the entity above), then
    every expanded entity's children at once; the generations in order: this level's, then each
    entity's subtree in field and entity order."""
    extraction, generations = await extract(labels)
    fields = {
        f: extraction.fields.get(label, []) for f, label in zip(schema.fields, labels, strict=True)
    }
    ungrounded = {
        f: extraction.ungrounded[label]
        for f, label in zip(schema.fields, labels, strict=True)
        if label in extraction.ungrounded
    }
    jobs: list[tuple[str, str, list[str]]] = []
    for name, child in schema.children.items():
        entities = list(dict.fromkeys(span.text for span in fields[name]))[:max_entities]
        for entity in entities:
            composed = [compose(entity, f) for f in child.fields]
            if valid(composed):
                jobs.append((name, entity, composed))
    answers = await gather(
        [
            walk(
                schema.children[name],
                composed,
                extract,
                gather,
                max_entities=max_entities,
                valid=valid,
            )
            for name, _, composed in jobs
        ]
    )
    children = {
        (name, entity): nested for (name, entity, _), (nested, _) in zip(jobs, answers, strict=True)
    }
    for _, below in answers:
        generations = generations + below
    return Nested(fields, ungrounded, children, frozenset(schema.children)), generations
