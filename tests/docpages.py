"""The README and the docs/ pages as tests read them.

A code block that a test runs is marked in its page by a comment on the line before its fence,
`<!-- run by tests: NAME -->`, and a test takes it with `block("docs/PAGE.md", "NAME")`: the text
can move or be reworded around it without the test losing it, and tests/test_docs.py checks that
every marked block is taken by some test.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, NamedTuple

ROOT = Path(__file__).resolve().parents[1]

MARK = re.compile(r"^<!-- run by tests: (?P<name>[\w.-]+) -->\n```(?P<lang>\w*)\n(?P<text>.*?)^```", re.S | re.M)
FENCE = re.compile(r"^(```|~~~)")


class Marked(NamedTuple):
    page: str  # relative to the repository root, as in block()
    name: str
    lang: str
    text: str


def pages() -> List[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def relative(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def marked(page: Path) -> List[Marked]:
    return [Marked(relative(page), m["name"], m["lang"], m["text"]) for m in MARK.finditer(page.read_text())]


def block(page: str, name: str) -> str:
    """The text of the block marked NAME in PAGE (e.g. "docs/certificates.md")."""
    found: Dict[str, str] = {m.name: m.text for m in marked(ROOT / page)}
    if name not in found:
        raise LookupError(f"{page} has no code block marked <!-- run by tests: {name} --> (it has {sorted(found)})")
    return found[name]


def prose_lines(page: Path) -> List[str]:
    """The page's lines outside fenced code blocks, each with its inline code spans removed."""
    out, fenced = [], False
    for line in page.read_text().splitlines():
        if FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        if not fenced:
            out.append(re.sub(r"`[^`]*`", "", line))
    return out


def anchors(page: Path) -> List[str]:
    """The anchors GitHub gives the page's headings: lower case, punctuation but - and _ dropped,
    spaces as hyphens, a repeated one suffixed -1, -2..."""
    seen: Dict[str, int] = {}
    out = []
    fenced = False
    for line in page.read_text().splitlines():
        if FENCE.match(line.lstrip()):
            fenced = not fenced
        heading = None if fenced else re.match(r"#{1,6} +(.*?) *#* *$", line)
        if heading:
            slug = re.sub(r"[^\w\- ]", "", heading[1].lower()).replace(" ", "-")
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            out.append(slug if n == 0 else f"{slug}-{n}")
    return out
