"""Every ``ganx-train`` command of the documentation's code blocks (the README and every page
under docs/) passes the command-line check and composes: a documented command is never refused
(``hparams_search=...``, ``logger=[...]``); every ``ganx-...`` tool named in a code block exists;
every ``scripts/bench_quality.py`` command's configurations compose."""

import re
import shlex
from importlib import metadata

import pytest
from conftest import CONF_DIR, compose_cfg, load_script
from docs_pages import README, code_blocks, name, pages

from ganx.errors import ConfigError
from ganx.overrides import (
    GROUPS,
    OPTIONAL_GROUPS,
    check_overrides,
    command_line_overrides,
    quote_paths,
)


def documented_command_lines() -> list[tuple[str, str, str]]:
    """(page, command, its comment) for every command line inside the documentation's fenced
    code blocks (not their outputs: ``ganx-train: error: ...``)."""
    lines = []
    for page, block in code_blocks():
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"^\$ |^(make venv && )?\.venv/bin/", "", line.strip())
            if re.match(r"ganx(-[a-z]+)?( |$)", line):
                command, _, comment = line.partition("  #")
                lines.append((page, command.strip(), comment.strip()))
    return lines


def inline_train_commands() -> list[tuple[str, str]]:
    """(page, command) for every ``ganx-train ...`` code span in the text of the pages, except
    schematic ones (``experiment=<name>``, ``seed=0,...,19``)."""
    spans = []
    for page in pages():
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S).replace("\n", " ")
        for span in re.findall(r"`(ganx-train(?: [^`]*)?)`", text):
            if "<" not in span and "..." not in span:
                spans.append((name(page), span))
    return spans


DOCUMENTED = documented_command_lines()
COMMANDS = [(page, c) for page, c, _ in DOCUMENTED if c.split()[0] == "ganx-train"]
for page, span in inline_train_commands():  # each spelling once: composing takes a second
    if span not in {c for _, c in COMMANDS}:
        COMMANDS.append((page, span))


def test_the_readme_has_commands_to_check():
    commands = [c for _, c in COMMANDS]
    assert len(commands) >= 20
    assert any("hparams_search=" in c for c in commands)
    assert any("logger=[" in c for c in commands)
    pages = {page for page, _ in COMMANDS}
    assert {"README.md", "docs/sweeps.md", "docs/resume.md"} <= pages, pages


def test_every_documented_tool_exists():
    """A ``ganx-...`` command in a code block names one of ganx's console scripts."""
    entry_points = metadata.distribution("ganx").entry_points
    tools = {ep.name for ep in entry_points if ep.group == "console_scripts"}
    named = {(page, c.split()[0]) for page, c, _ in DOCUMENTED}
    assert {tool for _, tool in named} >= {"ganx-train", "ganx-eval", "ganx-sample", "ganx-dirac"}
    assert not [(page, tool) for page, tool in named if tool not in tools]


@pytest.mark.parametrize("page,command", COMMANDS, ids=[f"{p}: {c}" for p, c in COMMANDS])
def test_readme_command_passes_the_check_and_composes(page, command):
    args = [a.replace("<", "").replace(">", "") for a in shlex.split(command)[1:]]
    overrides = command_line_overrides(args)
    if overrides is None:
        return  # --help, --cfg: Hydra's own
    check_overrides(overrides)
    if "-m" in args or any(o.startswith(("hydra", "hydra/")) for o in overrides):
        return  # sweeps and launcher choices compose per job (tests/test_sweeps.py)
    assert compose_cfg(*overrides, tiny=False) is not None


# the Hydra tools besides ganx-train, by the config they compose (tests/test_tool_settings.py
# checks what their keys do)
TOOL_CONFIGS = {
    "ganx-eval": "eval_tool",
    "ganx-sample": "sample_tool",
    "ganx-export": "export_tool",
    "ganx-dirac": "dirac_study",
}
TOOL_COMMANDS = [
    (page, c) for page, c, _ in DOCUMENTED if c.split()[0] in TOOL_CONFIGS and " serve" not in c
]


def test_the_docs_have_tool_commands_to_check():
    assert {c.split()[0] for _, c in TOOL_COMMANDS} == set(TOOL_CONFIGS)


@pytest.mark.parametrize("page,command", TOOL_COMMANDS, ids=[f"{p}: {c}" for p, c in TOOL_COMMANDS])
def test_documented_tool_command_composes(page, command):
    """ganx-eval, ganx-sample, ganx-export and ganx-dirac commands name keys their configs have
    (composed as the tool composes them, paths with ``=`` quoted as the tool quotes them)."""
    from hydra import compose, initialize_config_module

    tool, *args = shlex.split(command)
    with initialize_config_module("ganx.conf", version_base="1.3"):
        assert compose(TOOL_CONFIGS[tool], overrides=quote_paths(args)) is not None


def test_documented_explorer_commands_parse():
    from ganx.dirac_serve import parse_keys

    serve = [c for _, c, _ in DOCUMENTED if c.startswith("ganx-dirac serve")]
    assert len(serve) >= 2
    for command in serve:
        parse_keys(shlex.split(command)[2:])


def test_every_config_folder_is_a_checked_group():
    folders = {p.name for p in CONF_DIR.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders - {"hydra"} == set(GROUPS)
    assert set(OPTIONAL_GROUPS) == {"experiment", "hparams_search"}


def test_a_misspelt_choice_of_every_group_is_refused():
    for group in GROUPS:
        with pytest.raises(ConfigError, match=f"no such {group}"):
            check_overrides([f"{group}=no_such_choice"])


@pytest.mark.slow
def test_the_readme_smoke_run_prints_what_the_readme_says(tmp_path):
    """The README's smoke command, as typed (plus a run dir and a metrics cache)."""
    from ganx_cli import ganx_train

    smoke = next(
        c for page, c, comment in DOCUMENTED if page == README.name and "smoke run" in comment
    )
    run_dir = tmp_path / "smoke"
    args = shlex.split(smoke)[1:]
    proc = ganx_train(*args, f"hydra.run.dir={run_dir}", f"metrics.cache_dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    log = (run_dir / "train.log").read_text()
    for said in ("run directory:", "device: cpu", "parameters: G", "method: model=dcgan"):
        assert said in log, said
    final = next(line for line in log.splitlines() if "final values:" in line)
    for metric in ("fid2k_mnist", "kid2k_mnist", "is2k_mnist", "classes2k_mnist"):
        assert metric in final, final
    assert f"samples: {run_dir}" in log and "checkpoints:" in log


def readme_bench_quality_commands() -> list[list[str]]:
    """The arguments of every ``python scripts/bench_quality.py`` command in the documentation's
    code blocks (backslash continuations joined)."""
    commands = []
    for _, block in code_blocks():
        for line in block.replace("\\\n", " ").splitlines():
            if line.startswith("python scripts/bench_quality.py "):
                commands.append(shlex.split(line.split("  #")[0])[2:])
    return commands


BENCH_COMMANDS = readme_bench_quality_commands()


def test_the_readme_has_benchmark_commands_to_check():
    assert len(BENCH_COMMANDS) >= 6
    assert any("dataset=stacked_mnist" in " ".join(c) for c in BENCH_COMMANDS)


@pytest.mark.parametrize("argv", BENCH_COMMANDS, ids=lambda argv: argv[argv.index("--out") + 1])
def test_readme_benchmark_configurations_compose_and_validate(argv, tmp_path):
    """bench_quality composes and validates every configuration before it trains; with
    --report-only it stops there (a refused one exits with the configuration's name)."""
    out = argv.index("--out") + 1
    report_dir = tmp_path / argv[out]
    load_script("bench_quality").main(
        [*argv[:out], str(report_dir), *argv[out + 1 :], "--report-only"]
    )
    assert not (report_dir / "runs").exists()
