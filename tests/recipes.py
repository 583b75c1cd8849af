"""docs/ARCHITECTURE.md's recipes, read and applied to a copy of the package, for the tests that
follow them (test_recipes, test_recipe_periodic). A step is a sentence ending in a colon that
says where its code block goes, then the block:

- "Create `FILE`" (a new file), "Append to `FILE`" (at its end, after a blank line);
- "In `FILE`, before (after) the line `LINE`": before (after) the first line that starts with
  LINE, indentation aside.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"
STEP = re.compile(
    r"(Create|Append\s+to|In)\s+`([^`]+)`(?:,\s+(before|after)\s+the\s+line\s+`([^`]+)`)?"
    r"(?:(?!```).)*?:\n\n```\w*\n(.*?)```",
    re.DOTALL,
)


@dataclass(frozen=True)
class Step:
    verb: str  # Create | Append to | In
    file: str  # as the repository has it: src/ganx/..., conf/..., tests/...
    where: str  # before | after (for In), else ""
    anchor: str
    code: str


def recipe(title: str) -> list[Step]:
    """The steps of the recipe under ``### title``, in order."""
    text = ARCHITECTURE.read_text().split("## Recipes", 1)[1]
    section = re.split(r"^#{2,3} ", text.split(f"### {title}\n", 1)[1], maxsplit=1, flags=re.M)[0]
    found = STEP.findall(section)
    return [Step(" ".join(verb.split()), *rest) for verb, *rest in found]


def copy_of_the_package(tmp_path: Path) -> Path:
    """A repository-shaped copy: src/ganx (conf/ linked as ganx/conf, as the installed package
    maps it), tests and the key-coverage check; put its ``src`` on PYTHONPATH."""
    copy = tmp_path / "ganx"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "src" / "ganx", copy / "src" / "ganx", ignore=ignore)
    for folder in ("conf", "tests"):
        shutil.copytree(ROOT / folder, copy / folder, ignore=ignore)
    (copy / "scripts").mkdir()
    for name in ("key_coverage.py", "key_coverage_gaps.txt"):
        shutil.copy(ROOT / "scripts" / name, copy / "scripts" / name)
    (copy / "src" / "ganx" / "conf").symlink_to(copy / "conf")
    return copy


def follow(copy: Path, steps: list[Step]) -> list[Path]:
    """Apply ``steps`` to ``copy``; returns the files touched, in order."""
    touched = []
    for step in steps:
        target = copy / step.file
        assert (step.verb == "Create") != target.exists(), f"{step.verb} {step.file}: no such file"
        if step.verb == "In":
            insert(target, step)
        else:
            before = target.read_text() if step.verb == "Append to" else ""
            target.write_text(before + ("\n\n" if before else "") + step.code)
        touched.append(target)
    return touched


def insert(path: Path, step: Step) -> None:
    assert step.where, f"In {step.file}: the step says neither before nor after which line"
    lines = path.read_text().splitlines(keepends=True)
    at = next((i for i, line in enumerate(lines) if line.strip().startswith(step.anchor)), None)
    assert at is not None, f"the recipe's line {step.anchor!r} is not in {step.file}"
    block = step.code + "\n" if step.where == "before" else step.code
    lines.insert(at if step.where == "before" else at + 1, block)
    path.write_text("".join(lines))
