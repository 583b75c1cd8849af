"""The pages the tests read documented commands, tables and numbers from: the README and every
markdown page under docs/ (the pages of the docs site, the files they include, PROTOCOLS.md and
ARCHITECTURE.md), so a command or a number is checked wherever it is stated."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def pages() -> list[Path]:
    return [README, *sorted((ROOT / "docs").rglob("*.md"))]


def name(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def code_blocks() -> list[tuple[str, str]]:
    """(page, block) for every fenced code block of every page, in page order."""
    return [
        (name(page), block)
        for page in pages()
        for block in re.findall(r"```[a-z]*\n(.*?)```", page.read_text(), flags=re.S)
    ]


def section(heading: str) -> str:
    """The text under ``heading`` (a whole line, e.g. "## CIFAR-10, start to finish (offline)")
    up to the next heading of its level or above (outside code blocks), on the one page that
    has it."""
    level = len(heading.split()[0])
    found = []
    for page in pages():
        lines = page.read_text().splitlines()
        if heading not in lines:
            continue
        body, fenced = [], False
        for line in lines[lines.index(heading) + 1 :]:
            fenced ^= line.lstrip().startswith("```")
            head = re.match(r"(#+) ", line)
            if head and not fenced and len(head.group(1)) <= level:
                break
            body.append(line)
        found.append("\n".join(body) + "\n")
    assert len(found) == 1, f"{heading!r} is on {len(found)} pages, not one"
    return found[0]
