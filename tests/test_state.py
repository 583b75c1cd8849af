"""TrainingState's registry (ganx.state): what each slot gives back on load, what a checkpoint
written before a slot existed keeps, and the one line a network of another shape gets."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import compose_cfg

from ganx.augment import stream_seed
from ganx.checkpoint import atomic_save
from ganx.collectives import Ranks
from ganx.errors import CheckpointError, ConfigError
from ganx.rng import rank_seed
from ganx.state import TrainingState, resolve_resume

CPU = torch.device("cpu")


def fresh(*overrides: str) -> TrainingState:
    return TrainingState.create(compose_cfg(*overrides), Ranks(), CPU, None)


def test_every_counter_and_the_optional_slots_come_back():
    saved_state = fresh()
    saved_state.step, saved_state.d_steps, saved_state.skipped = 7, 9, 2
    saved_state.best, saved_state.elapsed_s = 1.5, 12.25
    saved = saved_state.state_dict()
    loaded = fresh()
    loaded.load_state_dict(saved, Path("x.pt"))
    assert (loaded.step, loaded.d_steps, loaded.skipped) == (7, 9, 2)
    assert (loaded.best, loaded.elapsed_s) == (1.5, 12.25)  # optional, yet loaded when present


def test_a_checkpoint_without_the_optional_slots_keeps_the_fresh_values():
    saved = fresh().state_dict()
    for name in ("best", "elapsed_s", "augment"):
        del saved[name]
    saved["fixed_noise"] = saved["fixed_noise"] + 1.0  # told apart from a fresh state's
    saved["step"] = 6
    loaded = fresh()
    loaded.best, loaded.elapsed_s = 3.0, 4.0
    loaded.load_state_dict(saved, Path("old.pt"))
    assert (loaded.best, loaded.elapsed_s) == (3.0, 4.0)
    # the slots after a missing optional one still load: the grid noise, the RNG streams
    assert loaded.step == 6 and torch.equal(loaded.fixed_noise, saved["fixed_noise"])
    torch.manual_seed(123)
    loaded.load_state_dict(saved, Path("old.pt"))
    assert torch.equal(torch.get_rng_state(), saved["rng"]["torch"])


def test_a_required_slot_is_never_skipped():
    saved = fresh().state_dict()
    del saved["step"]  # not optional: a checkpoint without it is not one ganx wrote
    with pytest.raises(KeyError, match="step"):
        fresh().load_state_dict(saved, Path("x.pt"))


@pytest.mark.parametrize("net", ["generator", "discriminator", "ema_generator"])
def test_a_network_of_another_shape_is_one_line_naming_the_file(net):
    wider = fresh("model.generator.ngf=12", "model.discriminator.ndf=12")
    saved = {**wider.state_dict(), net: fresh().state_dict()[net]}  # that one net narrower
    with pytest.raises(CheckpointError) as err:
        wider.load_state_dict(saved, Path("run/last.pt"))
    message = str(err.value)
    assert message.startswith("cannot resume from run/last.pt: the network shapes differ (")
    assert "Error(s) in loading state_dict" in message and "\n" not in message


def test_a_fresh_state_starts_at_zero_with_the_switches_it_was_given():
    state = fresh("train.ema=false", "hardware.amp=off")
    assert (state.step, state.d_steps, state.skipped, state.elapsed_s) == (0, 0, 0, 0.0)
    assert state.best is None  # no objective value yet: any first value is the best
    assert state.ema is None and state.scaler is None and state.schedulers == []
    assert state.eval_generator is state.parts.generator
    assert state.state_dict()["ema_generator"] is None
    with_all = fresh("train.ema=true", "hardware.amp=fp16", "train.lr_decay=true")
    assert with_all.ema is not None and with_all.eval_generator is with_all.ema
    assert with_all.scaler is not None and with_all.scaler.is_enabled()
    assert with_all.scaler._device == "cpu"  # the CPU scaler, not CUDA's (disabled here)
    assert len(with_all.schedulers) == 2


def test_the_grid_noise_has_its_own_stream_and_the_run_prior():
    parts = fresh().parts
    torch.manual_seed(0)
    before = torch.get_rng_state()
    state = TrainingState(compose_cfg(), parts)
    assert torch.equal(torch.get_rng_state(), before)  # drawing it moved no training stream
    other_seed = TrainingState(compose_cfg("seed=1"), state.parts)
    assert not torch.equal(state.fixed_noise, other_seed.fixed_noise)
    uniform = TrainingState(compose_cfg("model.latent_distribution=uniform"), state.parts)
    assert uniform.fixed_noise.min() >= -1 and uniform.fixed_noise.max() < 1
    assert state.fixed_noise.abs().max() > 1  # N(0, I): some draw of 64 x 100 exceeds 1


def test_augmentation_and_the_scaler_come_back_and_a_run_without_them_ignores_theirs():
    ada = fresh("augment=ada", "hardware.amp=fp16")
    ada.parts.augment.p.fill_(0.25)
    ada.scaler.scale(torch.ones(()))  # the scale exists from the first scaled loss on
    ada.scaler.update(1024.0)
    saved = ada.state_dict()
    assert saved["augment"] is not None and saved["scaler"] is not None
    again = fresh("augment=ada", "hardware.amp=fp16")
    again.load_state_dict(saved, Path("x.pt"))
    assert float(again.parts.augment.p) == 0.25 and again.scaler.get_scale() == 1024.0
    # hardware.amp may change on resume: fp16 -> off drops the scaler's state, off -> fp16
    # starts a fresh scaler; a slot the run has no use for is ignored
    plain = fresh("hardware.amp=off")
    plain.load_state_dict({**saved, "augment": saved["augment"]}, Path("x.pt"))
    assert plain.scaler is None and plain.parts.augment is None
    scaled = fresh("augment=ada", "hardware.amp=fp16")
    scaled.load_state_dict({**saved, "scaler": None}, Path("x.pt"))
    assert scaled.scaler.get_scale() == fresh("hardware.amp=fp16").scaler.get_scale()


def test_a_refused_setting_from_a_constructor_is_a_config_error_naming_the_key():
    with pytest.raises(ConfigError, match=r"reg\.lecam\.decay=1\.5"):
        fresh("reg=[lecam]", "reg.lecam.decay=1.5")


def test_a_later_rank_draws_its_own_streams_from_the_seed_rank_and_step(monkeypatch, tmp_path):
    """Rank r > 0 (ranks.active: rank 0's weights are broadcast first) reseeds torch's stream
    with rank_seed(seed, r, step), and on resume its augmentation stream with
    stream_seed(seed, r) + step; rank 0 keeps the checkpointed streams."""
    import ganx.state as state_module

    broadcast = []
    monkeypatch.setattr(state_module, "broadcast_state", broadcast.append)
    cfg = compose_cfg("augment=diffaug", "seed=3", "train.batch_size=8")
    first = TrainingState.create(cfg, Ranks(rank=1, world=2), CPU, None)
    assert broadcast == [first.parts.generator, first.parts.discriminator]
    assert first.parts.stream.world == 2 and first.parts.stream.rank == 1
    assert torch.equal(torch.get_rng_state(), torch.manual_seed(rank_seed(3, 1, 0)).get_state())
    first.step = 5
    path = tmp_path / "last.pt"
    atomic_save(first.state_dict(), path)
    resumed = TrainingState.create(cfg, Ranks(rank=1, world=2), CPU, path)
    assert resumed.step == 5
    assert torch.equal(torch.get_rng_state(), torch.manual_seed(rank_seed(3, 1, 5)).get_state())
    expected = torch.Generator().manual_seed(stream_seed(3, 1) + 5).get_state()
    assert torch.equal(resumed.parts.augment.generator.get_state(), expected)
    # no augmentation: nothing to reseed on resume
    plain_cfg = compose_cfg("seed=3", "train.batch_size=8")
    plain = TrainingState.create(plain_cfg, Ranks(rank=1, world=2), CPU, None)
    atomic_save(plain.state_dict(), path)
    assert TrainingState.create(plain_cfg, Ranks(rank=1, world=2), CPU, path).step == 0


def test_resume_auto_and_a_missing_file(tmp_path):
    assert resolve_resume(None, tmp_path) is None
    assert resolve_resume("auto", tmp_path) is None  # nothing to resume: a fresh run
    last = tmp_path / "checkpoints" / "last.pt"
    last.parent.mkdir()
    last.write_bytes(b"")
    assert resolve_resume("auto", tmp_path) == last
    with pytest.raises(ConfigError, match=r"^resume='nope\.pt': no such checkpoint file$"):
        resolve_resume("nope.pt", tmp_path)


def test_load_names_the_checkpoint_in_what_it_says(tmp_path, caplog):
    state = fresh()
    state.step = 4
    path = tmp_path / "last.pt"
    atomic_save(state.state_dict(), path)
    with caplog.at_level("INFO", logger="ganx"):
        resumed = fresh()
        resumed.load(path)
    assert f"resumed from {path} at step 4" in caplog.messages
    with pytest.raises(CheckpointError, match=f"cannot resume from {path} with changed settings"):
        fresh("loss=hinge").load(path)
    wider = fresh("model.generator.ngf=12", "model.discriminator.ndf=12").state_dict()
    atomic_save({**wider, "config": state.state_dict()["config"]}, path)  # shapes lie
    with pytest.raises(CheckpointError, match=f"cannot resume from {path}: the network shapes"):
        fresh().load(path)
