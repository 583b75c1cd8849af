"""ganx-report: loss curves, each setting's last sample grid, no "± 0" for a single seed."""

import csv
import json

import torch
from torchvision.utils import save_image

from ganx.commands.report import main as report_main


def job(root, setting, seed, fids, grid=True):
    d = root / setting / f"seed={seed}"
    (d / ".hydra").mkdir(parents=True)
    (d / ".hydra" / "overrides.yaml").write_text(f"- {setting}\n- seed={seed}\n")
    lines = [
        json.dumps(
            {
                "step": 10 * (i + 1),
                "loss/D": 1.0 + i,
                "loss/G": 0.5,
                "grad_norm/G": 2.0,
                "speed/it_per_s": 9.0,
                "fid2k_mnist": f,
            }
        )
        for i, f in enumerate(fids)
    ]
    (d / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    (d / "status.json").write_text(json.dumps({"status": "finished", "wall_time_s": 5.0}))
    if grid:
        (d / "samples").mkdir()
        for step in (10, 20):
            save_image(torch.rand(4, 1, 8, 8), d / "samples" / f"step_{step:07d}.png")
    return d


def test_report_has_loss_curves_sample_grids_and_no_zero_std(tmp_path):
    sweep, out = tmp_path / "sweep", tmp_path / "out"
    job(sweep, "reg=none", 0, [50.0, 40.0])
    job(sweep, "reg=none", 1, [52.0, 44.0])
    single = job(sweep, "reg=r1", 0, [30.0, 35.0])
    report_main([str(sweep), "--out", str(out)])
    text = (out / "report.md").read_text()
    rows = {line.split(" | ")[0].strip("| "): line for line in text.splitlines() if "reg=" in line}
    assert "±" in rows["reg=none"] and "42 ± 2.8" in rows["reg=none"]
    assert "±" not in rows["reg=r1"] and "| 35 |" in rows["reg=r1"]  # one seed: its value
    assert "![samples](../sweep/reg=r1/seed=0/samples/step_0000020.png)" in rows["reg=r1"]
    assert (out / "../sweep/reg=r1/seed=0/samples/step_0000020.png").resolve() == (
        single / "samples" / "step_0000020.png"
    )
    for plot in ("loss_D.png", "loss_G.png", "fid2k_mnist.png"):
        assert (out / plot).stat().st_size > 0 and f"]({plot})" in text
    assert not (out / "grad_norm_G.png").exists() and not (out / "speed_it_per_s.png").exists()
    csv_rows = {r["setting"]: r for r in csv.DictReader(open(out / "report.csv"))}
    assert csv_rows["reg=r1"]["fid2k_mnist final std"] == "nan"  # undefined, not 0
    assert "grad_norm/G final mean" not in csv_rows["reg=r1"]
