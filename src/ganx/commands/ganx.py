"""What every ganx command shares before Hydra or argparse sees its arguments: ``--version``.

Hydra's own ``--version`` prints only Hydra's version; ``ganx-<tool> --version`` prints ganx's
version and commit first. ``ganx`` alone lists the tools. Imports nothing heavy (torch stays
out of this path, so ``--version`` and shell completion answer at once).
"""

from __future__ import annotations

import sys

TOOLS = {
    "ganx-train": "train a GAN (Hydra config groups: model, loss, reg, dataset, hardware, ...)",
    "ganx-sample": "samples of a checkpoint as a PNG grid or an .npz array",
    "ganx-eval": "metrics of a checkpoint, with training's evaluation code",
    "ganx-export": "a checkpoint's generator as TorchScript (or ONNX)",
    "ganx-report": "the table and plots of a sweep directory",
    "ganx-dirac": "the Dirac-GAN convergence study; `ganx-dirac serve`: its explorer page",
    "ganx-weights": "the FID Inception weights, converted offline",
}


def version_text(tool: str) -> str:
    from importlib import metadata

    from ..records import version_line

    lines = [version_line() if tool == "ganx" else f"{tool}: {version_line()}"]
    try:
        lines.append(f"Hydra {metadata.version('hydra-core')}")
    except metadata.PackageNotFoundError:
        pass
    return "\n".join(lines)


def version_line_only() -> str:
    from ..records import version_line

    return version_line()


def handle_version(tool: str, argv: list[str] | None = None) -> None:
    """Print the version and exit when ``--version`` is among the arguments."""
    argv = sys.argv[1:] if argv is None else argv
    if "--version" in argv:
        print(version_text(tool))
        sys.exit(0)


def argparse_tool(tool: str, doc: str, why_flags: str, argv: list[str] | None):
    """The parser of a tool that takes flags rather than Hydra's key=value (``why_flags`` says
    why, in its --help), after answering ``--version``; the tool adds its own arguments."""
    import argparse

    handle_version(tool, argv)
    parser = argparse.ArgumentParser(
        prog=tool,
        description=f"{doc.splitlines()[0]} (argparse flags rather than key=value: {why_flags})",
    )
    parser.add_argument("--version", action="store_true", help="print ganx's version")
    return parser


def main(argv: list[str] | None = None) -> None:
    """``ganx``: the version and the list of tools."""
    argv = sys.argv[1:] if argv is None else argv
    handle_version("ganx", argv)
    width = max(map(len, TOOLS))
    print(version_line_only())
    print("tools (each takes --help):")
    for name, what in TOOLS.items():
        print(f"  {name:<{width}}  {what}")
    if argv and argv[0] not in ("-h", "--help"):
        sys.exit(f"ganx: error: unknown argument {argv[0]!r}; run one of the tools above")


def with_paths_quoted(hydra_main):
    """A console entry point that quotes path values first: ``checkpoint=`` paths of sweep jobs
    contain ``=`` (``multirun/.../reg=r1/seed=0/checkpoints/last.pt``), which Hydra's override
    grammar would read as a second assignment."""

    def entry() -> None:
        from ..overrides import quote_paths

        sys.argv[1:] = quote_paths(sys.argv[1:])
        hydra_main()

    entry.__doc__ = hydra_main.__doc__
    return entry
