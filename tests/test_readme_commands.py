"""Every ``ganx-train`` command of the README's code blocks passes the command-line check and
composes: a documented command is never refused (``hparams_search=...``, ``logger=[...]``)."""

import re
import shlex
from pathlib import Path

import pytest
from conftest import CONF_DIR, compose_cfg, load_script

from ganx.errors import ConfigError
from ganx.overrides import GROUPS, OPTIONAL_GROUPS, check_overrides, command_line_overrides

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_code_blocks() -> list[str]:
    return re.findall(r"```[a-z]*\n(.*?)```", README.read_text(), flags=re.S)


def readme_commands() -> list[str]:
    """The ganx-train command lines inside the README's fenced code blocks (not its outputs)."""
    lines = []
    for block in readme_code_blocks():
        for line in block.splitlines():
            line = re.sub(r"^\$ |^(make venv && )?\.venv/bin/", "", line.strip())
            if line.startswith("ganx-train") and not line.startswith("ganx-train:"):
                lines.append(line.split("  #")[0].strip())
    return lines


COMMANDS = readme_commands()


def test_the_readme_has_commands_to_check():
    assert len(COMMANDS) >= 20
    assert any("hparams_search=" in c for c in COMMANDS)
    assert any("logger=[" in c for c in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_passes_the_check_and_composes(command):
    args = [a.replace("<", "").replace(">", "") for a in shlex.split(command)[1:]]
    overrides = command_line_overrides(args)
    if overrides is None:
        return  # --help, --cfg: Hydra's own
    check_overrides(overrides)
    if "-m" in args or any(o.startswith(("hydra", "hydra/")) for o in overrides):
        return  # sweeps and launcher choices compose per job (tests/test_sweeps.py)
    assert compose_cfg(*overrides, tiny=False) is not None


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
    """The Set-up section's smoke command, as typed (plus a run dir and a metrics cache)."""
    from ganx_cli import ganx_train

    smoke = next(c for c in COMMANDS if "smoke" in README.read_text().split(c)[1].split("\n")[0])
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
    """The arguments of every ``python scripts/bench_quality.py`` command in the README's code
    blocks (backslash continuations joined)."""
    commands = []
    for block in readme_code_blocks():
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
