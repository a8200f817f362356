"""The README and the docs pages hold together: every relative link (and image) names a file or
folder that exists, every ``#anchor`` a heading of the page it points into; each docs page links
back to the README, and the README stays a doorway (setup, two commands, first calls, links)."""

from __future__ import annotations

import re

import pytest

from tests.docs import PAGES, ROOT, headings, read

_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
_EXTERNAL = re.compile(r"[a-z][a-z0-9+.-]*:", flags=re.I)  # https:, mailto: ...


def links(text: str) -> list[str]:
    """The targets of the Markdown links of ``text``, outside code blocks and inline code."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    return _LINK.findall(text)


def anchor(title: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, blanks as hyphens."""
    title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title)  # a link in a heading: its words
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every anchor of a page; a repeated heading gets -1, -2 ... as on GitHub."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for _, title in headings(text):
        base = anchor(title)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(f"{base}-{count}" if count else base)
    return found


def test_the_pages_are_found() -> None:
    assert PAGES[0] == "README.md"
    assert {"docs/api.md", "docs/running.md", "docs/operations.md"} <= set(PAGES)


def problem(page: str, target: str) -> str | None:
    """What is wrong with the link ``target`` written in ``page``, or None."""
    path, _, fragment = target.partition("#")
    resolved = (ROOT / page).parent / path if path else ROOT / page
    if not resolved.exists():
        return f"{target}: no such file"
    if not fragment or resolved.suffix != ".md":
        return None
    if fragment not in anchors(resolved.read_text(encoding="utf-8")):
        return f"{target}: no heading with this anchor"
    return None


@pytest.mark.parametrize("page", [*PAGES, "ARCHITECTURE.md", "SECURITY.md"])
def test_relative_links_resolve(page: str) -> None:
    targets = [target for target in links(read(page)) if not _EXTERNAL.match(target)]
    problems = [found for target in targets if (found := problem(page, target))]
    assert not problems, problems


@pytest.mark.parametrize("page", [page for page in PAGES if page.startswith("docs/")])
def test_docs_pages_link_back_to_the_readme(page: str) -> None:
    assert "](../README.md" in read(page), page


def test_every_docs_page_is_reachable_from_the_readme() -> None:
    readme = {target.partition("#")[0] for target in links(read("README.md"))}
    for page in [*PAGES[1:], "ARCHITECTURE.md"]:
        assert page in readme, page


def test_the_readme_stays_a_doorway() -> None:
    readme = read("README.md")
    assert len(readme.splitlines()) <= 250
    sections = [title for level, title in headings(readme) if level == 2]
    assert sections[0] == "Two commands"
    assert sections[-1] == "Where to go next"
