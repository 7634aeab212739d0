"""Every relative link of README.md and docs/*.md names a file of the repository, and every
``#anchor`` a heading of its page, the way GitHub renders it.

GitHub's anchor of a heading: its text as rendered (code spans and links by their text), lowercase,
every character other than a letter, digit, space, ``-`` or ``_`` removed, spaces turned into ``-``;
a repeated heading gets ``-1``, ``-2``, ... Links inside code (fenced blocks, `spans`) are not links.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
_HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"", re.IGNORECASE)
_INLINE_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")


def _without_code_blocks(text: str) -> str:
    return _FENCE.sub("", text)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading's Markdown text."""
    text = _INLINE_LINK.sub(r"\1", heading).replace("`", "")
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = _without_code_blocks(page.read_text(encoding="utf-8"))
    found: set[str] = set(_HTML_ANCHOR.findall(text))
    seen: dict[str, int] = {}
    for heading in _HEADING.findall(text):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(page: Path) -> list[tuple[str, str]]:
    """Every relative link of a page (``page:line``, target); web and mail links left out."""
    text = page.read_text(encoding="utf-8")
    # Blank code out, keeping line numbers and offsets.
    blank = _FENCE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
    blank = _CODE_SPAN.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), blank)
    where = page.relative_to(ROOT)
    return [(f"{where}:{blank.count(chr(10), 0, m.start()) + 1}", m.group(1)) for m in _LINK.finditer(blank)
            if not re.match(r"[a-z][a-z0-9+.-]*:", m.group(1), re.IGNORECASE)]


LINKS = [(page, where, target) for page in PAGES for where, target in links(page)]


def test_the_pages_have_links() -> None:
    assert len(LINKS) > 50 and any(target.startswith("#") for _, _, target in LINKS)


def test_slug_follows_github() -> None:
    assert slug("1. Probe") == "1-probe"
    assert slug("Cheap answers: screen and race") == "cheap-answers-screen-and-race"
    assert slug("`mlsandbox train`") == "mlsandbox-train"
    assert slug("What is reused, and what is retried") == "what-is-reused-and-what-is-retried"
    assert slug("`screen`: multi-fidelity steps") == "screen-multi-fidelity-steps"


@pytest.mark.parametrize("page, where, target", LINKS, ids=[where for _, where, _ in LINKS])
def test_a_relative_link_resolves(page: Path, where: str, target: str) -> None:
    path, _, anchor = target.partition("#")
    file = (page.parent / path).resolve() if path else page
    assert file.exists(), f"{where}: {target}: no file {file.relative_to(ROOT) if file.is_relative_to(ROOT) else file}"
    if anchor and file.suffix == ".md":
        assert anchor in anchors(file), f"{where}: {target}: no heading #{anchor} in {file.relative_to(ROOT)}"
