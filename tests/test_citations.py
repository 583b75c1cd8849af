"""Every citation of a reference's code carries the commit it quotes (issue 28): in
docs/PROTOCOLS.md and in ganx's source, a reference file is named as ``owner/repo@commit:path``
(with ``:line`` or ``:first-last`` where a line is meant), or by a name that such a pin in the
same place (the PROTOCOLS.md section, the source file) spells out. Line numbers are written
``path:line``, never "l. N", so a citation stays true when the reference moves on."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"\b[\w.-]+/[\w.-]+@[0-9a-f]{7,40}:([\w./-]+\.\w+)")
FILE = re.compile(r"(?<![\w./@:-])([\w./-]*[\w-]\.(?:py|ipynb|sh))\b")
OLD_LINE_FORM = re.compile(r"\bl\. ?\d")


def units() -> list[tuple[str, str]]:
    """(name, text): each PROTOCOLS.md section, each source file of the package."""
    text = (ROOT / "docs" / "PROTOCOLS.md").read_text()
    out = [(f"PROTOCOLS.md, {part.splitlines()[0]}", part) for part in text.split("\n## ")]
    out += [
        (str(p.relative_to(ROOT)), p.read_text()) for p in sorted(ROOT.glob("src/ganx/**/*.py"))
    ]
    return out


def ganx_file(name: str) -> bool:
    """A path in this repository (``tests/test_protocols.py``, ``nets/sngan.py``), not a
    reference's; a bare name counts as a reference's file."""
    return "/" in name and any((base / name).exists() for base in (ROOT, ROOT / "src" / "ganx"))


def unpinned(text: str) -> list[str]:
    pinned = {Path(path).name for path in PIN.findall(text)}
    bare = PIN.sub("", text)  # what is left once the pins themselves are removed
    return sorted(
        {
            name
            for name in FILE.findall(bare)
            if not ganx_file(name) and Path(name).name not in pinned
        }
    )


@pytest.mark.parametrize(("name", "text"), units(), ids=[name for name, _ in units()])
def test_every_cited_reference_file_carries_its_commit(name, text):
    assert not unpinned(text), f"{name}: cited without a commit: {unpinned(text)}"
    assert not OLD_LINE_FORM.findall(text), f"{name}: write lines as path:line, not 'l. N'"


def test_the_check_sees_an_unpinned_citation():
    assert unpinned("as in gan.py:43-80") == ["gan.py"]
    assert unpinned("(eriklindernoren/PyTorch-GAN@36d3c77:implementations/gan/gan.py:43-80)") == []
    assert (
        unpinned("kwotsin/mimicry@a7fda06:torch_mimicry/modules/resblocks.py; resblocks.py:184")
        == []
    )
    assert unpinned("see tests/test_protocols.py") == []
    assert OLD_LINE_FORM.findall("gan.py l. 43") and not OLD_LINE_FORM.findall("et al. 2017")
