"""SSGAN's rotation loss and InfoMax-GAN's InfoNCE: closed-form checks and training with regs."""

import math

import pytest
import torch
from conftest import compose_cfg
from key_cover import override

from ganx.aux import infonce, rotate_quarters
from ganx.build import build_all
from ganx.loop import train


def test_rotate_quarters():
    images = torch.arange(8 * 4, dtype=torch.float).view(8, 1, 2, 2)
    rotated, labels = rotate_quarters(images)
    assert labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert torch.equal(rotated[0], images[0])
    assert torch.equal(rotated[2], torch.rot90(images[2], 1, dims=(1, 2)))
    assert torch.equal(rotated[7], torch.rot90(images[7], 3, dims=(1, 2)))


def test_infonce_prefers_matching_pairs():
    torch.manual_seed(0)
    n, r, l = 6, 8, 5
    global_ = torch.randn(n, r)
    aligned = global_[:, :, None].expand(n, r, l) * 3  # local features agree with own global
    random_local = torch.randn(n, r, l)
    assert infonce(aligned, global_) < infonce(random_local, global_)
    # with identical scores everywhere the loss is log(1 + (N-1) L) (one positive among them)
    flat = torch.zeros(n, r, l)
    assert infonce(flat, global_).item() == pytest.approx(math.log(1 + (n - 1) * l), rel=1e-5)


@pytest.mark.parametrize("model", ["ssgan", "infomax"])
def test_family_trains_with_aux_and_any_reg(tmp_path, model):
    for reg in ("none", "dat", "r1"):
        cfg = compose_cfg(
            f"model={model}", "dataset.resolution=32", "loss=hinge", f"reg={reg}", "log.every=1"
        )
        result = train(cfg, tmp_path / reg)
        assert result["status"] == "finished"
        assert "aux/D" in result and "aux/G" in result


@pytest.mark.parametrize("model", ["ssgan", "infomax"])
def test_aux_term_changes_the_d_update(model):
    """One D step with the auxiliary loss and with its D weight set to 0, from equal state."""
    from internals import StepSettings, discriminator_step, seed_everything

    def d_after(*overrides):
        cfg = compose_cfg(f"model={model}", "dataset.resolution=32", *overrides)
        seed_everything(0)
        parts = build_all(cfg, torch.device("cpu"))
        real = parts.stream.next()
        seed_everything(1)
        terms = discriminator_step(parts, real, 0, 0, StepSettings(4, cfg.model.latent_dim))
        assert "aux/D" in terms
        return torch.cat([p.detach().flatten() for p in parts.discriminator.parameters()])

    assert not torch.equal(d_after(), d_after(override("model.aux.d_weight", 0)))
