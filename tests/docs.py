"""The project's Markdown pages (README.md and docs/*.md), read by the tests that run or check
what they say: a command moved from one page to another is still found, and a section that is
gone fails loudly instead of yielding nothing."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The README first, then docs/ in name order: examples are collected in this order.
PAGES = ["README.md", *sorted(f"docs/{page.name}" for page in (ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"\s*```")
_HEADING = re.compile(r"(#{1,6}) ")


def read(page: str) -> str:
    """The text of ``page``, a path relative to the repository root."""
    return (ROOT / page).read_text(encoding="utf-8")


def code_blocks(text: str) -> list[tuple[str, str]]:
    """Every fenced block of ``text`` that names its language, as (language, code)."""
    return re.findall(r"```(\w+)\n(.*?)```", text, flags=re.S)


def headings(text: str) -> list[tuple[int, str]]:
    """(level, title) of every heading of ``text``, leaving out lines inside code blocks."""
    found: list[tuple[int, str]] = []
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and (match := _HEADING.match(line)):
            found.append((len(match.group(1)), line[match.end() :].strip()))
    return found


def section(page: str, heading: str) -> str:
    """The text under ``heading`` (a whole line such as ``"## Batch jobs"``) in ``page``, up to
    the next heading of the same or a higher level; a page's title gives the whole page."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = read(page).splitlines(keepends=True)
    start = None
    fenced = False
    for number, line in enumerate(lines):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        if start is None:
            if line.rstrip("\n") == heading:
                start = number + 1
        elif (match := _HEADING.match(line)) and len(match.group(1)) <= level:
            return "".join(lines[start:number])
    if start is None:
        raise LookupError(f"{page} has no heading {heading!r}")
    return "".join(lines[start:])
