"""Augmentation (``augment=diffaug|ada``): differentiable, identical for a given seed, applied to
every image D sees (reals and fakes, D and G steps, inside penalties), ADA's p steered by D's
real logits, and exact resume with either on."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import compose_cfg, group_choices
from internals import StepSettings, discriminator_loss, generator_loss, training_iteration
from key_cover import override
from test_resume_eval import assert_trees_equal, last_state
from torch import nn

from ganx import checkpoint as ckpt
from ganx.augment import AdaptiveAugment, DiffAugment, stream_seed
from ganx.build import build_all
from ganx.loop import train
from ganx.rng import rank_seed

CPU = torch.device("cpu")


def bound(augment, seed=0):
    augment.bind(CPU, seed)
    return augment


AUGMENTS = {
    "diffaug": lambda: DiffAugment(),
    "ada": lambda: AdaptiveAugment(p=1.0),  # p = 1: every transform on every image
}


@pytest.mark.slow  # heavy for the quick loop: make test (CI) runs it
@pytest.mark.parametrize("kind", sorted(AUGMENTS))
@pytest.mark.parametrize("channels", [1, 3])
def test_gradients_reach_the_input_exactly(kind, channels):
    """The augmentation is a differentiable map of the image for fixed draws: torch's numerical
    gradient check passes (double precision, the same draws on every call)."""
    augment = AUGMENTS[kind]()
    x = torch.randn(3, channels, 12, 12, dtype=torch.float64, requires_grad=True)

    def same_draws(images):
        augment.bind(CPU, 5)
        return augment(images)

    assert torch.autograd.gradcheck(same_draws, (x,), eps=1e-6, atol=1e-5)
    assert not torch.equal(same_draws(x), x)  # it does change the images


@pytest.mark.parametrize("kind", sorted(AUGMENTS))
def test_identical_for_a_seed_and_different_for_another(kind):
    x = torch.rand(16, 3, 28, 28) * 2 - 1
    first = bound(AUGMENTS[kind](), seed=3)(x)
    again = bound(AUGMENTS[kind](), seed=3)(x)
    other = bound(AUGMENTS[kind](), seed=4)(x)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_stream_seeds_are_distinct_apart_from_the_training_streams_and_valid():
    """Every (seed, rank) has its own augmentation stream; within a run none is a stream the
    training RNG draws from (rank 0: the seed; rank r > 0: rank_seed, both offset alike by the
    step on resume); and every seed the config accepts (any int >= 0 torch can seed with, up to
    2**64 - 1) gives one below 2**63, so a resumed rank's stream_seed + step stays valid."""
    seeds, ranks = range(6000), range(4)
    streams = {seed: [stream_seed(seed, rank) for rank in ranks] for seed in seeds}
    assert len({s for run in streams.values() for s in run}) == len(seeds) * len(ranks)
    for seed, run in streams.items():
        training = {seed} | {rank_seed(seed, rank, 0) for rank in ranks if rank > 0}
        assert not training & set(run), seed
    for seed in [0, 1, 2**32, *(2**64 - 1 - k * (2**59 + 12345) for k in range(16))]:
        for rank in (0, 7):
            assert 0 <= stream_seed(seed, rank) < 2**63, (seed, rank)
    torch.Generator().manual_seed(stream_seed(2**64 - 1, 7) + 10**9)


def test_ada_at_p_zero_is_the_identity_and_r1_differentiates_through_it_twice():
    x = torch.randn(4, 1, 28, 28)
    assert torch.equal(bound(AdaptiveAugment(p=0.0))(x), x)
    augment = bound(AdaptiveAugment(p=1.0))
    D = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Softplus(), nn.Flatten(), nn.Linear(4 * 26 * 26, 1))
    real = x.requires_grad_(True)
    (grad,) = torch.autograd.grad(D(augment(real)).sum(), real, create_graph=True)
    grad.pow(2).sum().backward()  # R1's double backward through the augmentation
    assert D[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize(("side", "limit"), [(28, 4), (32, 4), (12, 2), (20, 3)])
def test_diffaugment_translation_rounds_half_up_as_the_authors(side, limit):
    """``rand_translation`` shifts by up to int(s * 0.125 + 0.5) px
    (mit-han-lab/data-efficient-gans@0b63395:DiffAugment_pytorch.py:40): 4 px at 28 (3.5 rounded
    up), 2 at 12 (1.5 up), 3 at 20 (2.5 up); every shift in [-limit, limit] occurs."""
    ones = torch.ones(4096, 1, side, side)
    moved = bound(DiffAugment(policy=["translation"]))(ones)
    for axis in (2, 1):  # rows (a vertical shift), columns (a horizontal one)
        empty = (moved[:, 0].sum(axis) == 0).sum(1)  # zero rows/columns = |shift|
        assert sorted(empty.unique().tolist()) == list(range(limit + 1))


def test_diffaugment_distributions_match_the_authors():
    """A cutout of half the side: with only ``cutout`` exactly a 14 x 14 square (or its part
    inside the image) is zeroed."""
    ones = torch.ones(256, 1, 28, 28)
    cut = bound(DiffAugment(policy=["cutout"]))(ones)
    holes = (cut == 0).sum((1, 2, 3))
    assert holes.max() == 14 * 14 and holes.min() >= 7 * 7


def over_fitting_parts(sign: float, *overrides):
    """The default config's parts with augment=ada, and a D whose every logit is ``sign`` * 5
    (an over-fitting D, sign +1, calls every real real; sign -1 calls every real fake). Only
    x-flips: p's rule does not depend on the transforms, and the geometric ones at p = 1 cost
    ~40 s of this CPU's time for nothing."""
    cfg = compose_cfg("augment=ada", "reg=none", "augment.transforms=[xflip]", *overrides)
    parts = build_all(cfg, CPU)

    class Constant(nn.Module):
        def __init__(self):
            super().__init__()
            self.bias = nn.Parameter(torch.tensor(5.0 * sign))

        def forward(self, x):
            return x.flatten(1).sum(1, keepdim=True) * 0 + self.bias

    parts.discriminator = parts.discriminator_fast = Constant()
    parts.opt_d = torch.optim.SGD(parts.discriminator.parameters(), lr=0.0)
    return cfg, parts


def run_iterations(cfg, parts, n: int) -> list[float]:
    settings = StepSettings(cfg.train.steps, cfg.model.latent_dim)
    ps, d_steps = [], 0
    for step in range(n):
        _, d_steps = training_iteration(
            parts, settings, step, d_steps, 1, "alternating", parts.stream.next
        )
        ps.append(float(parts.augment.p))
    return ps


def test_ada_p_rises_when_d_over_fits_and_falls_otherwise():
    """ADA's rule: every ``interval`` D steps p moves by sign(r_t - target) * images / (kimg *
    1000); here 16 reals per D step, interval 2, kimg 0.32: steps of 0.1."""
    cfg, parts = over_fitting_parts(
        +1.0, override("augment.interval", 2), override("augment.kimg", 0.32)
    )
    ps = run_iterations(cfg, parts, 6)
    assert ps == pytest.approx([0.0, 0.1, 0.1, 0.2, 0.2, 0.3])
    cfg, parts = over_fitting_parts(
        -1.0,
        override("augment.interval", 2),
        override("augment.kimg", 0.32),
        override("augment.p", 0.5),
    )
    ps = run_iterations(cfg, parts, 6)
    assert ps == pytest.approx([0.5, 0.4, 0.4, 0.3, 0.3, 0.2])
    cfg, parts = over_fitting_parts(
        +1.0, override("augment.interval", 1), override("augment.kimg", 0.016)
    )
    assert run_iterations(cfg, parts, 3) == [1.0, 1.0, 1.0]  # p stays a probability


def parts_for(*overrides):
    cfg = compose_cfg(*overrides)
    torch.manual_seed(0)
    return cfg, build_all(cfg, CPU)


@pytest.mark.parametrize("kind", ["diffaug", "ada"])
def test_r1_is_taken_through_the_augmentation_as_the_authors_do(kind):
    """With augmentation, D's loss and R1 see D(T(x)), and R1 is the gradient w.r.t. the
    un-augmented reals through T (stylegan2-ada-pytorch, training/loss.py, Dr1)."""
    cfg, parts = parts_for(f"augment={kind}", "augment.p=1.0" if kind == "ada" else "reg=r1")
    real, fake = parts.stream.next(), torch.randn(16, 1, 28, 28).clamp(-1, 1)
    saved = parts.augment.generator.get_state()
    _, terms = discriminator_loss(parts, real, fake, 0, 0, 10)
    parts.augment.generator.set_state(saved)
    x = real.clone().requires_grad_(True)
    D = parts.discriminator
    real_logits = D(parts.augment(x))
    fake_logits = D(parts.augment(fake))
    (grad,) = torch.autograd.grad(real_logits.sum(), x)
    r1 = 0.5 * grad.flatten(1).pow(2).sum(1).mean()
    assert terms["reg/r1"].item() == pytest.approx(r1.item(), rel=1e-5)
    d_loss = parts.loss.d_loss(real_logits, fake_logits)
    assert terms["loss/D"].item() == pytest.approx(d_loss.item(), rel=1e-5)
    assert terms["augment/real_sign"] == real_logits.sign().mean()


@pytest.mark.parametrize("kind", ["diffaug", "ada"])
def test_d_loss_sees_augmented_images_without_a_penalty_too(kind):
    """Without an input-gradient penalty D runs through its fast (compilable) wrapper, and that
    wrapper is augmented as well: D's loss is still on D(T(real)) and D(T(fake))."""
    extra = ["augment.p=1.0"] if kind == "ada" else []
    cfg, parts = parts_for(f"augment={kind}", "reg=none", *extra)
    real, fake = parts.stream.next(), torch.randn(16, 1, 28, 28).clamp(-1, 1)
    saved = parts.augment.generator.get_state()
    _, terms = discriminator_loss(parts, real, fake, 0, 0, 10)
    parts.augment.generator.set_state(saved)
    D, T = parts.discriminator, parts.augment
    expected = parts.loss.d_loss(D(T(real)), D(T(fake)))
    plain = parts.loss.d_loss(D(real), D(fake))
    assert terms["loss/D"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert terms["loss/D"].item() != pytest.approx(plain.item(), rel=1e-5)


@pytest.mark.parametrize("loss", ["ns", "rpgan"])
@pytest.mark.parametrize("kind", ["diffaug", "ada"])
def test_g_step_sees_augmented_fakes_and_its_gradient_flows_through(kind, loss):
    """D(T(G(z))) in G's loss; a relativistic loss's own real batch is augmented too, drawn
    after the fakes (D(T(fake)), then D(T(real)))."""
    cfg, parts = parts_for(
        f"augment={kind}", "augment.p=1.0" if kind == "ada" else "reg=r1", f"loss={loss}"
    )
    settings = StepSettings(cfg.train.steps, cfg.model.latent_dim)
    fake = parts.generator(torch.randn(16, cfg.model.latent_dim))
    real = parts.stream.next() if loss == "rpgan" else None
    saved = parts.augment.generator.get_state()
    loss, _ = generator_loss(parts, 16, 0, settings, fake, real)
    parts.augment.generator.set_state(saved)
    D, T = parts.discriminator, parts.augment
    if real is None:
        expected, plain = parts.loss.g_loss(D(T(fake))), parts.loss.g_loss(D(fake))
    else:
        expected = parts.loss.g_loss(D(T(fake)), D(T(real)))
        plain = parts.loss.g_loss(D(T(fake)), D(real))  # the reals not augmented
    assert float(loss) == pytest.approx(float(expected), rel=1e-6)
    assert float(loss) != pytest.approx(float(plain), rel=1e-6)
    loss.backward()
    assert next(parts.generator.parameters()).grad.abs().sum() > 0


# the default config (default widths, batch 64, mnist5k, R1), without evaluations
RESUME = ["train.n_dis=2", "ckpt.every=3", "sample.every=3", "log.every=3", "eval.metrics=[]"]
RESUME += ["hardware=cpu", "log.progress=false"]
ADA_MOVING = ["augment.p=0.5", "augment.kimg=2", "augment.interval=3"]


@pytest.mark.parametrize("kind", ["diffaug", "ada"])
def test_resume_is_bitwise_exact_with_augmentation(tmp_path, kind):
    """The default config with augment on: 6 steps straight equal 3 + 3 resumed, in every
    checkpointed tensor (the augmentation's stream, ADA's p and its running sums included; the
    pause falls inside an ADA interval)."""
    common = [f"augment={kind}", *RESUME, *(ADA_MOVING if kind == "ada" else [])]
    for run, extra in (
        ("straight", []),
        ("pieces", ["train.stop_at=3"]),
        ("pieces", ["resume=auto"]),
    ):
        train(compose_cfg(*common, "train.steps=6", *extra, tiny=False), tmp_path / run)
    straight, pieces = last_state(tmp_path / "straight"), last_state(tmp_path / "pieces")
    assert straight["augment"] is not None
    assert_trees_equal(straight, pieces)
    if kind == "ada":  # p moved (the test is not about a p that never changes), and is logged
        logged = [json.loads(line) for line in (tmp_path / "straight" / "metrics.jsonl").open()]
        assert any(record.get("augment/p", 0.5) != 0.5 for record in logged)


def test_a_checkpoint_from_before_augmentation_resumes_with_augment_none(tmp_path):
    """Checkpoints written before the augment group and dataset.subset existed hold neither in
    their config nor an ``augment`` entry; they trained as augment=none on the whole data set,
    so resuming them with those defaults is allowed (and anything else is refused by name)."""
    common = ["train.steps=4", "ckpt.every=2"]
    train(compose_cfg(*common, "train.stop_at=2"), tmp_path)
    path = tmp_path / "checkpoints" / "last.pt"
    old = ckpt.load(path)
    del old["augment"], old["config"]["augment"]
    del old["config"]["dataset"]["subset"], old["config"]["dataset"]["subset_seed"]
    ckpt.atomic_save(old, path)
    with pytest.raises(ckpt.CheckpointError, match="augment.name: checkpoint None, now 'ada'"):
        train(compose_cfg(*common, "resume=auto", "augment=ada"), tmp_path)
    assert train(compose_cfg(*common, "resume=auto"), tmp_path)["step"] == 4


COMBINATIONS = [(f"reg={r}", "loss=ns") for r in group_choices("reg")]
COMBINATIONS += [("reg=r1", f"loss={loss}") for loss in group_choices("loss") if loss != "ns"]


@pytest.mark.slow  # heavy for the quick loop: make test (CI) runs it
@pytest.mark.parametrize("kind", ["diffaug", "ada"])
@pytest.mark.parametrize(("reg", "loss"), COMBINATIONS)
def test_augmentation_composes_with_every_loss_and_regularizer(kind, reg, loss):
    """One full iteration (D step with its penalties and input transforms, G step) per
    combination, ADA at p = 1: it runs, its terms are finite, and r_t is logged."""
    if reg.startswith("reg=js") and loss not in ("loss=ns", "loss=minimax"):
        pytest.skip("the JS-regularizer needs a sigmoid loss")
    extra = ["augment.p=1.0"] if kind == "ada" else []
    cfg, parts = parts_for(f"augment={kind}", reg, loss, *extra)
    settings = StepSettings(cfg.train.steps, cfg.model.latent_dim)
    terms, _ = training_iteration(parts, settings, 0, 0, 1, "alternating", parts.stream.next)
    assert len(terms) == 2 and all(torch.isfinite(v).all() for t in terms for v in t.values())
    assert "augment/real_sign" in terms[0]
