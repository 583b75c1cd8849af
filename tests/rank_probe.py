"""One data-parallel rank as ``ganx.launch`` starts it, plus two test-only probes (never part of
ganx): every rank saves its final G, D and EMA (parameters and buffers; the augmentation's state) to
``PROBE_DIR/rank<r>.pt``; and with ``PROBE_NAN_RANK``/``PROBE_NAN_CALL`` that rank's D loss is
NaN at that call, as if its batch had gone bad.

    python tests/rank_probe.py CONFIG_YAML RUN_DIR    (RANK, WORLD_SIZE, MASTER_* in the env)
"""

import os
import sys
from pathlib import Path

import torch

from ganx import launch, losses, outputs

RANK = int(os.environ["RANK"])
PROBE_DIR = Path(os.environ["PROBE_DIR"])


def save_final_state(finish):
    def wrapped(self, state, status, *args):  # args: the signal of an interrupted run
        modules = {"generator": state.parts.generator, "discriminator": state.parts.discriminator}
        if state.ema is not None:
            modules["ema_generator"] = state.ema
        record = {name: m.state_dict() for name, m in modules.items()}
        if state.parts.augment is not None:  # augment=diffaug|ada: its stream (and ADA's p)
            record["augment"] = state.parts.augment.state_dict()
        record.update(step=state.step, status=status, skipped=state.skipped)
        torch.save(record, PROBE_DIR / f"rank{RANK}.pt")
        return finish(self, state, status, *args)

    return wrapped


def nan_at_call(d_loss, call: int):
    calls = {"n": 0}

    def poisoned(self, real_logits, fake_logits):
        calls["n"] += 1
        value = d_loss(self, real_logits, fake_logits)
        return value * float("nan") if calls["n"] == call else value

    return poisoned


if __name__ == "__main__":
    outputs.Outputs.finish = save_final_state(outputs.Outputs.finish)
    if os.environ.get("PROBE_NAN_RANK") == str(RANK):
        call = int(os.environ["PROBE_NAN_CALL"])
        losses.NonSaturatingLoss.d_loss = nan_at_call(losses.NonSaturatingLoss.d_loss, call)
    launch.rank_main(sys.argv[1], sys.argv[2])
