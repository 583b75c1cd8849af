"""The Dirac-GAN overview: titles inside the figure, trajectories inside their frames (cut at
the frame with a mark where they leave it)."""

import matplotlib
import pytest
import torch
from hydra import compose, initialize_config_module

from ganx.dirac_study import in_frame, overview_figure, run_study

matplotlib.use("Agg")


def test_in_frame_cuts_at_the_crossing_point():
    path = torch.tensor([[1.0, 1.0], [1.5, 0.5], [2.5, 0.0], [4.0, 0.0]])
    kept, left = in_frame(path, 2.0)
    assert left == 2
    assert torch.allclose(kept[-1], torch.tensor([2.0, 0.25]))  # on the frame, on the segment
    assert torch.equal(kept[:2], path[:2])
    inside, none = in_frame(path[:2], 2.0)
    assert none is None and torch.equal(inside, path[:2])


@pytest.mark.slow  # a subprocess or a long run: make test (CI) runs it
def test_overview_titles_and_trajectories_fit(tmp_path):
    with initialize_config_module("ganx.conf", version_base="1.3"):
        # wgan + none spirals out of the frame; the longest title is wgan_gp + instance_noise
        cfg = compose(
            "dirac_study",
            overrides=["losses=[wgan,wgan_gp]", "regs=[none,instance_noise]", "plot.arrows=4"],
        )
        outcomes, _ = run_study(cfg)  # both compose training configs inside this context
        figure = overview_figure(outcomes, cfg)
    figure.savefig(tmp_path / "overview.png", dpi=80)  # draws: title extents are final
    renderer = figure.canvas.get_renderer()
    frame = figure.bbox
    titles = []
    for ax in figure.axes:
        box = ax.title.get_window_extent(renderer)
        assert frame.x0 - 1 <= box.x0 and box.x1 <= frame.x1 + 1, ax.get_title()
        assert box.y1 <= frame.y1 + 1, ax.get_title()
        titles.append(ax.get_title())
        x0, x1 = ax.get_xlim()
        y0, y1 = ax.get_ylim()
        for line in ax.get_lines():
            xs, ys = line.get_xdata(), line.get_ydata()
            assert all(x0 <= x <= x1 for x in xs) and all(y0 <= y <= y1 for y in ys)
    # the title boxes of neighbouring panels do not overlap
    boxes = [ax.title.get_window_extent(renderer) for ax in figure.axes]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b)
    left = [t for t in titles if "leaves the frame" in t]
    assert any(t.startswith("wgan + none") for t in left)
