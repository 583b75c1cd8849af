"""Training end to end on tiny models: outputs, every loss x reg pair, wiring, exact resume."""

import json

import pytest
import torch
from conftest import compose_cfg, group_choices
from ganx_cli import TINY_ARGS, ganx_train_here
from internals import StepSettings, discriminator_step, seed_everything, training_iteration
from key_cover import override

from ganx import checkpoint as ckpt
from ganx.build import build_all
from ganx.errors import ConfigError
from ganx.loop import train

LOSSES = group_choices("loss")
REGS = group_choices("reg")


def test_default_outputs(tmp_path):
    result = train(compose_cfg(), tmp_path)
    assert result["status"] == "finished" and result["step"] == 4
    assert sorted(p.name for p in (tmp_path / "samples").glob("*.png")) == [
        "step_0000002.png",
        "step_0000004.png",
    ]
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert (tmp_path / "checkpoints" / "last.pt").exists()
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [2, 4]
    assert {"loss/D", "loss/G", "D/real", "D/fake"} <= set(lines[-1])
    state = ckpt.load(tmp_path / "checkpoints" / "last.pt")
    assert state["step"] == 4 and state["config"]["train"]["steps"] == 4


def test_gradient_norms_on_every_flush_and_only_there(tmp_path):
    """The loop asks the schedule once per step: the steps that end at a flush (log.every and
    the final step) log gradient norms taken on that step; the steps between take none."""
    import ganx.loop

    taken = []
    iterate = ganx.loop.iterate

    def recording(state, it, log_step=None):
        terms = iterate(state, it, log_step)
        taken.append(any("grad_norm/D" in t for t in terms))
        return terms

    ganx.loop.iterate = recording
    try:
        train(compose_cfg("log.every=3", "ckpt.every=10", "train.steps=5"), tmp_path)
    finally:
        ganx.loop.iterate = iterate
    assert taken == [False, False, True, False, True]
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [3, 5]
    assert all(x["grad_norm/D"] > 0 and x["grad_norm/G"] > 0 for x in lines)


def test_tensorboard_has_losses_and_regularizers(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    r1_cosine = ["reg.r1.schedule=cosine", "reg.r1.weight_end=1"]  # 10 -> 1 over the 4 steps
    train(compose_cfg("reg=[r1,js]", "reg.js.anneal=true", *r1_cosine), tmp_path)
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {
        "loss/D",
        "loss/G",
        "reg/r1",
        "reg/js",
        "weight/js",
        "D/real",
        "D/fake",
        "lr/G",
        "lr/D",
    } <= tags
    assert "samples" in events.Tags()["images"]
    gammas = [e.value for e in events.Scalars("weight/js")]
    assert gammas[0] > gammas[-1]  # annealed
    # R1's cosine schedule, logged at the flushes (steps 2 and 4): 1 + 9 * (1 + cos(pi t/4)) / 2
    logged = {e.step: e.value for e in events.Scalars("weight/r1")}
    assert logged == pytest.approx({2: 5.5, 4: 1.0})


def flat_parameters(module):
    return torch.cat([p.detach().flatten() for p in module.parameters()])


@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_with_every_regularizer_steps(loss):
    """One D and one G step (no I/O) for every loss x reg pair: finite terms, the penalty in
    D's terms, and both players' weights moved. One compose per loss holds every regularizer's
    node; each pair keeps one of them (js_annealed is js with anneal=true, gp0_2d gp0 at 10)."""
    names = [r for r in REGS if r not in ("none", "js_annealed", "js_3dgan", "gp0_2d")]
    # LeCam adds its penalty after reg.lecam.start_step (lecam-gan's schedule): null = from step 0
    full = compose_cfg(
        f"loss={loss}",
        f"reg=[{','.join(names)}]",
        "reg.js.anneal=true",
        "reg.lecam.start_step=null",
    )
    for name in [None, *names]:
        cfg = full.copy()
        cfg.reg = {name: full.reg[name]} if name else {}
        seed_everything(0)
        parts = build_all(cfg, torch.device("cpu"))
        d_before, g_before = flat_parameters(parts.discriminator), flat_parameters(parts.generator)
        settings = StepSettings(total=4, latent_dim=cfg.model.latent_dim)
        (d_terms, g_terms), _ = training_iteration(
            parts, settings, 0, 0, 1, False, parts.stream.next
        )
        for key, value in {**d_terms, **g_terms}.items():
            assert torch.isfinite(value).all(), (loss, name, key)
        if name and parts.regularizers[name].weight:
            assert f"reg/{name}" in d_terms, (loss, name)
        assert not torch.equal(d_before, flat_parameters(parts.discriminator)), (loss, name)
        assert not torch.equal(g_before, flat_parameters(parts.generator)), (loss, name)


@pytest.mark.parametrize("reg", [r for r in REGS if r != "none"])
def test_each_regularizer_changes_the_d_update(reg):
    """One D step with and without the regularizer, from identical state and RNG."""

    def d_weights_after_step(overrides):
        cfg = compose_cfg(*overrides)
        seed_everything(0)
        parts = build_all(cfg, torch.device("cpu"))
        real = parts.stream.next()
        seed_everything(1)
        settings = StepSettings(total=4, latent_dim=cfg.model.latent_dim)
        discriminator_step(parts, real, step=0, d_step=0, settings=settings)
        return torch.cat([p.detach().flatten() for p in parts.discriminator.parameters()])

    extra = [f"reg={reg}"]
    if reg in ("rlc", "lecam"):
        extra += [f"reg.{reg}.weight=10"]
    if reg == "lecam":
        extra += [override("reg.lecam.start_step", None)]
    base = d_weights_after_step(["reg=none"])
    with_reg = d_weights_after_step(extra)
    assert not torch.equal(base, with_reg), reg


@pytest.mark.slow  # a subprocess or a long run: make test (CI) runs it
def test_other_model_families_train(tmp_path):
    for overrides in (
        ["model=mlp"],
        ["model=sngan", "dataset.resolution=32"],
        ["model=toy2d", "dataset=ring8"],
        ["model=toy2d", "dataset=grid25"],
        ["model=dirac", "dataset=dirac", "train.ema=null"],
    ):
        run_dir = tmp_path / "_".join(o.replace("=", "-") for o in overrides)
        result = train(compose_cfg(*overrides), run_dir)
        assert result["status"] == "finished", overrides
        if "model=toy2d" in overrides:
            assert list((run_dir / "samples").glob("*.png"))


def _state(path):
    return ckpt.load(path)


def assert_states_equal(a, b):
    for key in ("generator", "discriminator", "ema_generator"):
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), (key, name)
    for key in ("opt_g", "opt_d"):
        for pid, sa in a[key]["state"].items():
            for name, value in sa.items():
                assert torch.equal(
                    torch.as_tensor(value), torch.as_tensor(b[key]["state"][pid][name])
                ), (key, name)
    assert a["regularizers"] == b["regularizers"]
    assert a["data"] == b["data"]
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])


@pytest.mark.parametrize("regs", ["[r1,lecam]", "[js,dat]", "[r1]"])
def test_resume_is_bitwise_exact(tmp_path, regs):
    common = [
        f"reg={regs}",
        "train.n_dis=2",
        "reg.lecam.start_step=2",
        "reg.lecam.decay=0.5",
        "train.lr_decay=true",
        "ckpt.every=3",
        "sample.every=3",
        "log.every=3",
    ]
    common = [c for c in common if "lecam" not in c or "lecam" in regs]
    if "js" in regs:
        common.append("reg.js.anneal=true")
    if regs == "[r1]":  # lazy R1 in its own step every 3 D steps (StyleGAN2's schedule)
        common.append("reg.r1.interval=3")
    straight = tmp_path / "straight"
    train(compose_cfg(*common, "train.steps=6"), straight)
    pieces = tmp_path / "pieces"
    # schedules (lr decay, JS annealing) span train.steps, so the first piece stops early
    first = train(compose_cfg(*common, "train.steps=6", "train.stop_at=3"), pieces)
    assert first["step"] == 3 and first["status"] == "paused"
    second = train(compose_cfg(*common, "train.steps=6", override("resume", "auto")), pieces)
    assert second["step"] == 6
    assert_states_equal(
        _state(straight / "checkpoints" / "last.pt"), _state(pieces / "checkpoints" / "last.pt")
    )


@pytest.mark.parametrize("loss", ["rpgan", "ragan"])
def test_resume_is_bitwise_exact_with_a_relativistic_loss(tmp_path, loss):
    """G's step draws its own real batch for the relativistic losses: the checkpoint's data
    position counts it, so a resumed run reads the same batches as a straight one."""
    common = [f"loss={loss}", "reg=[r1,r2]", "train.n_dis=2", "ckpt.every=3", "log.every=3"]
    straight = tmp_path / "straight"
    train(compose_cfg(*common, "train.steps=6"), straight)
    pieces = tmp_path / "pieces"
    train(compose_cfg(*common, "train.steps=6", "train.stop_at=3"), pieces)
    assert _state(pieces / "checkpoints" / "last.pt")["data"] == {"epoch": 0, "batch": 9}
    train(compose_cfg(*common, "train.steps=6", "resume=auto"), pieces)
    end = _state(straight / "checkpoints" / "last.pt")
    assert end["data"] == {"epoch": 0, "batch": 18}  # 6 iterations x (2 D + 1 G) batches
    assert_states_equal(end, _state(pieces / "checkpoints" / "last.pt"))


@pytest.mark.slow  # heavy for the quick loop: make test (CI) runs it
def test_rpgan_resume_is_exact_from_the_command_line(tmp_path):
    """The command a user types: ganx-train loss=rpgan 'reg=[r1,r2]', paused and resumed."""
    args = [*TINY_ARGS, "loss=rpgan", "reg=[r1,r2]", "train.steps=4"]
    assert ganx_train_here(*args, f"hydra.run.dir={tmp_path / 'straight'}")[0] == 0
    pieces = f"hydra.run.dir={tmp_path / 'pieces'}"
    assert ganx_train_here(*args, "train.stop_at=2", pieces)[0] == 0
    assert ganx_train_here(*args, "resume=auto", pieces)[0] == 0
    end = _state(tmp_path / "straight" / "checkpoints" / "last.pt")
    assert end["data"] == {"epoch": 0, "batch": 8}  # 4 iterations x (1 D + 1 G) batches
    assert_states_equal(end, _state(tmp_path / "pieces" / "checkpoints" / "last.pt"))


@pytest.mark.parametrize("updates", ["alternating", "simultaneous", "g_first"])
def test_only_relativistic_losses_draw_a_real_batch_for_g(updates):
    """Every other loss reads exactly the n_dis batches per iteration it always did."""
    n_dis = 1 if updates == "g_first" else 2
    for loss, extra in (("ns", 0), ("hinge", 0), ("rsgan", 1), ("ragan", 1)):
        cfg = compose_cfg(f"loss={loss}", "reg=none", f"train.n_dis={n_dis}")
        seed_everything(0)
        parts = build_all(cfg, torch.device("cpu"))
        drawn = []

        def next_real(parts=parts, drawn=drawn):
            drawn.append(parts.stream.state_dict()["batch"])
            return parts.stream.next()

        settings = StepSettings(total=4, latent_dim=cfg.model.latent_dim)
        training_iteration(parts, settings, 0, 0, n_dis, updates, next_real)
        assert len(drawn) == n_dis + extra, (loss, updates)
        assert parts.stream.state_dict()["batch"] == n_dis + extra, (loss, updates)


def test_n_steps_then_n_more_equals_2n(tmp_path):
    """Without step-dependent schedules a run of N steps resumed for N more equals 2N."""
    train(compose_cfg(override("train.steps", 4), "reg=r1"), tmp_path / "straight")
    train(compose_cfg(override("train.steps", 2), "reg=r1"), tmp_path / "pieces")
    train(compose_cfg(override("train.steps", 4), "reg=r1", "resume=auto"), tmp_path / "pieces")
    assert_states_equal(
        _state(tmp_path / "straight" / "checkpoints" / "last.pt"),
        _state(tmp_path / "pieces" / "checkpoints" / "last.pt"),
    )


def test_resume_with_other_shapes_fails_clearly(tmp_path):
    train(compose_cfg(), tmp_path)
    before = (tmp_path / "checkpoints" / "last.pt").read_bytes()
    with pytest.raises(ckpt.CheckpointError, match=r"model\.generator\.ngf: checkpoint 8, now 16"):
        train(compose_cfg("model.generator.ngf=16", "resume=auto"), tmp_path)
    assert (tmp_path / "checkpoints" / "last.pt").read_bytes() == before


def test_ckpt_keep(tmp_path):
    train(compose_cfg("train.steps=8", override("ckpt.every", 2), "ckpt.keep=2"), tmp_path)
    names = sorted(p.name for p in (tmp_path / "checkpoints").glob("*.pt"))
    assert names == ["last.pt", "step_0000006.pt", "step_0000008.pt"]


def test_ema_decay_warms_up():
    from internals import ema_decay

    assert ema_decay(0.999, 5, start=10) == 0.0
    assert ema_decay(0.999, 10, start=10) == pytest.approx(0.1)
    assert ema_decay(0.999, 100_000, start=10) == 0.999
    values = [ema_decay(0.999, t, 0) for t in range(0, 5000, 100)]
    assert values == sorted(values)


@pytest.mark.slow
def test_compiled_training_matches_eager(tmp_path):
    """hardware.compile=default (inductor on CPU) follows the eager run closely; with R1 the
    D step falls back to eager on its penalty steps."""
    eager = train(
        compose_cfg("train.steps=3", "log.every=3", "reg=r1", "reg.r1.interval=2"),
        tmp_path / "eager",
    )
    compiled = train(
        compose_cfg(
            "train.steps=3",
            "log.every=3",
            "reg=r1",
            "reg.r1.interval=2",
            "hardware.compile=default",
        ),
        tmp_path / "compiled",
    )
    assert compiled["status"] == "finished"
    for key in ("loss/D", "loss/G", "reg/r1"):
        assert compiled[key] == pytest.approx(eager[key], rel=1e-3, abs=1e-4), key
    state = ckpt.load(tmp_path / "compiled" / "checkpoints" / "last.pt")
    assert not any(k.startswith("_orig_mod") for k in state["generator"])


@pytest.mark.parametrize(
    "overrides",
    [
        ["hardware.amp=bf16"],
        ["hardware.amp=fp16"],
        ["hardware.channels_last=true"],
        ["model.spectral_norm=true"],
        ["model=mlp", "model.spectral_norm=true"],
    ],
)
def test_hardware_and_model_options_train(tmp_path, overrides):
    result = train(compose_cfg(*overrides), tmp_path)
    assert result["status"] == "finished"
    state = ckpt.load(tmp_path / "checkpoints" / "last.pt")
    if "hardware.amp=fp16" in overrides:
        assert state["scaler"] is not None  # the GradScaler is part of the checkpoint
    if "model.spectral_norm=true" in overrides:
        assert any("parametrizations" in k for k in state["discriminator"])


def test_lr_decay_reaches_zero_and_bn_stats_choice(tmp_path):
    from internals import generate

    train(compose_cfg(override("train.lr_decay", True), "train.steps=4"), tmp_path)
    state = ckpt.load(tmp_path / "checkpoints" / "last.pt")
    assert state["opt_g"]["param_groups"][0]["lr"] == pytest.approx(0.0, abs=1e-12)
    cfg = compose_cfg()
    seed_everything(0)
    g = build_all(cfg, torch.device("cpu")).generator
    before = {k: v.clone() for k, v in g.state_dict().items()}
    z = torch.randn(8, cfg.model.latent_dim)
    batch, running = generate(g, z, "batch"), generate(g, z, "running")
    assert not torch.allclose(batch, running)  # different BatchNorm statistics
    assert all(torch.equal(before[k], v) for k, v in g.state_dict().items())  # no state change


def test_resume_accepts_other_data_location_and_loading(tmp_path):
    train(compose_cfg("train.steps=2"), tmp_path)
    result = train(
        compose_cfg(
            "train.steps=4",
            "resume=auto",
            "dataset.on_device=false",
            "dataset.num_workers=0",
            "dataset.metrics=[fid_mnist]",
        ),
        tmp_path,
    )
    assert result["status"] == "finished" and result["step"] == 4


def test_one_d_call_on_real_and_fake_is_the_same_computation(tmp_path):
    """hardware.concat_real_fake: D without BatchNorm (MLP) trains to the same weights with one
    call on cat(real, fake) as with two calls, R1 included; a D with BatchNorm (DCGAN) keeps
    two calls, since a joint batch would change its statistics."""
    runs = {}
    for concat in ("false", "true"):
        cfg = compose_cfg("model=mlp", "reg=r1", f"hardware.concat_real_fake={concat}")
        assert build_all(cfg, torch.device("cpu")).concat_real_fake == (concat == "true")
        runs[concat] = train(cfg, tmp_path / concat)
        runs[concat]["state"] = ckpt.load(tmp_path / concat / "checkpoints" / "last.pt")
    for key in ("loss/D", "loss/G", "reg/r1"):
        assert runs["true"][key] == pytest.approx(runs["false"][key], rel=1e-5, abs=1e-6)
    for name, value in runs["false"]["state"]["discriminator"].items():
        torch.testing.assert_close(runs["true"]["state"]["discriminator"][name], value)
    dcgan = compose_cfg("hardware.concat_real_fake=true")
    assert not build_all(dcgan, torch.device("cpu")).concat_real_fake


# the names a format-1 checkpoint holds (ganx.state registers one slot per stateful thing)
FORMAT_1_KEYS = {
    "format", "step", "d_steps", "skipped_steps", "generator", "discriminator", "ema_generator",
    "opt_g", "opt_d", "schedulers", "scaler", "regularizers", "data", "rng", "fixed_noise",
    "config", "best", "elapsed_s", "record", "augment",
}  # fmt: skip


def test_checkpoint_format_is_unchanged_and_loads_without_best(tmp_path):
    """The registry writes exactly format 1's names; a checkpoint from before ``best``,
    ``elapsed_s``, ``record`` and ``augment`` were stored still resumes (the optional names)."""
    train(compose_cfg("train.steps=2", "reg=r1"), tmp_path / "a")
    state = ckpt.load(tmp_path / "a" / "checkpoints" / "last.pt")
    assert set(state) == FORMAT_1_KEYS and state["format"] == 1
    del state["best"], state["elapsed_s"], state["record"], state["augment"]
    old = tmp_path / "old.pt"
    ckpt.atomic_save(state, old)
    result = train(compose_cfg("train.steps=4", "reg=r1", f"resume={old}"), tmp_path / "b")
    assert result["status"] == "finished" and result["step"] == 4


@pytest.mark.parametrize("loss", ["wgan", "hinge", "lsgan", "rpgan"])
def test_js_with_a_non_sigmoid_loss_is_refused_before_anything_is_written(tmp_path, loss):
    """The JS-regularizer's (1 - sigmoid)^2 and sigmoid^2 weights assume the GAN loss."""
    run_dir = tmp_path / "run"
    with pytest.raises(ConfigError, match="JS-regularizer"):
        train(compose_cfg(f"loss={loss}", "reg=js"), run_dir)
    assert not run_dir.exists()


def test_a_checkpoint_from_before_a_new_setting_resumes_with_its_neutral_value(tmp_path):
    """Settings added later (R1/R2's weight schedule) do not lock out older checkpoints: absent
    from the checkpoint's config and at the value that reproduces the old behaviour, they pass;
    any other value is refused by name."""
    train(compose_cfg("train.steps=2", "reg=r1"), tmp_path / "a")
    state = ckpt.load(tmp_path / "a" / "checkpoints" / "last.pt")
    for key in ("schedule", "weight_end", "schedule_steps"):
        del state["config"]["reg"]["r1"][key]
    old = tmp_path / "old.pt"
    ckpt.atomic_save(state, old)
    result = train(compose_cfg("train.steps=4", "reg=r1", f"resume={old}"), tmp_path / "b")
    assert result["status"] == "finished" and result["step"] == 4
    cosine = ["reg.r1.schedule=cosine", "reg.r1.weight_end=1.0"]
    with pytest.raises(ckpt.CheckpointError, match="reg.r1.schedule: checkpoint None, now"):
        train(compose_cfg("train.steps=4", "reg=r1", *cosine, f"resume={old}"), tmp_path / "c")


def test_the_training_imports_are_made_once_and_frozen(monkeypatch):
    """ganx.startup: the pre-flight imports torch, torch._dynamo and the loop once per process,
    collects the garbage made so far, then freezes what exists (no later collection scans it)
    and leaves the collector as it found it."""
    import gc
    import sys

    import ganx.startup as startup

    collections = []

    def count(phase, info):
        if phase == "start":
            collections.append(info["generation"])

    monkeypatch.setattr(startup, "_imported", False)
    gc.callbacks.append(count)
    try:
        gc.unfreeze()
        startup.import_training_modules()
        frozen, ran = gc.get_freeze_count(), list(collections)
        startup.import_training_modules()  # once per process: nothing again
        assert collections == ran == [2]
        assert gc.isenabled() and frozen > 0 and "torch._dynamo" in sys.modules
        monkeypatch.setattr(startup, "_imported", False)
        gc.disable()
        startup.import_training_modules()
        assert not gc.isenabled()
    finally:
        gc.enable()
        gc.callbacks.remove(count)
