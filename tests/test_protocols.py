"""docs/PROTOCOLS.md cannot drift: every preset named in a heading is composed (Hydra's compose
API, as `ganx-train experiment=<name>` does) and each table row with a config key must equal
its `ganx` column (``absent``: the key must not exist, e.g. a regularizer not selected)."""

import re
from pathlib import Path

import pytest
import yaml
from conftest import compose_cfg
from omegaconf import OmegaConf

DOC = Path(__file__).resolve().parents[1] / "docs" / "PROTOCOLS.md"


def sections():
    """(preset names, extra overrides, [(key, ganx value text)]) per '## `experiment=...`'."""
    out = []
    for block in DOC.read_text().split("\n## ")[1:]:
        heading, _, body = block.partition("\n")
        names = re.findall(r"`experiment=([a-z0-9_]+)`", heading)
        checked = re.search(r"Checked with: `([^`]+)`", body)
        extra = checked.group(1).split() if checked else []
        rows = []
        for line in body.splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) == 5 and cells[1].startswith("`") and cells[1] != "`key`":
                rows.append((cells[1].strip("`"), cells[2]))
        out += [(name, extra, rows) for name in names]
    return out


SECTIONS = sections()


def test_every_experiment_preset_with_a_reference_has_a_table():
    documented = {name for name, _, _ in SECTIONS}
    assert {
        "wgan_gp",
        "dragan",
        "roth_js",
        "roth_3dgan",
        "dat_sngan",
        "mimicry_sngan",
        "mimicry_ssgan",
        "mimicry_infomax",
        "vanilla_gan_original",
        "r3gan",
    } <= documented
    assert all(rows for _, _, rows in SECTIONS)


@pytest.mark.parametrize("name,extra,rows", SECTIONS, ids=[s[0] for s in SECTIONS])
def test_preset_composes_to_its_documented_values(name, extra, rows):
    cfg = compose_cfg(f"experiment={name}", *extra, tiny=False)
    for key, text in rows:
        expected = "<missing>" if text == "absent" else yaml.safe_load(text)
        got = OmegaConf.select(cfg, key, default="<missing>")
        if OmegaConf.is_config(got):
            got = OmegaConf.to_container(got)
        assert got == expected, (
            f"experiment={name}: {key} is {got!r}, docs/PROTOCOLS.md says {text}"
        )


def default_rows():
    """(overrides, key, ganx value text) of the rows of "Defaults outside the presets"."""
    block = DOC.read_text().split("\n## Defaults outside the presets", 1)[1]
    rows = []
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[1].startswith("`") and cells[1] != "`key`":
            choices = re.findall(r"`([a-z_.0-9]+=[^`]+)`", cells[0])
            rows.append((choices, cells[1].strip("`"), cells[2]))
    return rows


@pytest.mark.parametrize(("choices", "key", "text"), default_rows())
def test_defaults_outside_the_presets_compose_as_documented(choices, key, text):
    cfg = compose_cfg(*choices, tiny=False)
    assert OmegaConf.select(cfg, key, default="<missing>") == yaml.safe_load(text), (choices, key)


def test_the_defaults_table_has_its_rows():
    keys = {key for _, key, _ in default_rows()}
    assert {"reg.gp0.weight", "reg.lecam.start_step", "augment.translation"} <= keys
    assert {"train.lazy_regularization", "model.latent_distribution", "reg.rlc.weight"} <= keys
