"""The fenced code blocks of a Markdown page, and the marker of a fragment (a block shown
for reading, not run on its own)."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["FRAGMENT", "Block", "fenced_blocks", "is_fragment"]

FRAGMENT = "<!-- fragment -->"


@dataclass(frozen=True)
class Block:
    """One fenced code block of a Markdown file."""

    lang: str
    text: str  # the lines between the fences, each ending in a newline
    line: int  # 1-based line of the opening fence
    before: str  # the text between the previous block (or the top) and this one


_FENCE = re.compile(r"^(```+|~~~+)\s*([\w+-]*)")


def fenced_blocks(markdown: str) -> list[Block]:
    """The fenced code blocks of ``markdown`` (top level or indented in a list), in order."""
    blocks: list[Block] = []
    lines = markdown.splitlines(keepends=True)
    gap_start = 0
    i = 0
    while i < len(lines):
        stripped = lines[i].lstrip(" ")
        indent = len(lines[i]) - len(stripped)
        opening = _FENCE.match(stripped)
        if opening is None:
            i += 1
            continue
        fence, lang = opening[1], opening[2]
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not lines[j].lstrip(" ").startswith(fence):
            body.append(lines[j][indent:] if lines[j][:indent].isspace() else lines[j])
            j += 1
        blocks.append(Block(lang, "".join(body), i + 1, "".join(lines[gap_start:i])))
        gap_start = i = j + 1
    return blocks


def is_fragment(block: Block) -> bool:
    """A block marked ``<!-- fragment -->`` on the last non-blank line before its fence."""
    lines = [line.strip() for line in block.before.splitlines() if line.strip()]
    return bool(lines) and lines[-1] == FRAGMENT
