"""Data parallelism at unit level: two real gloo ranks average known gradients and logged values
(not sum them), and each rank reads its own disjoint share of every epoch."""

import os
import subprocess
import sys

import torch

from ganx.data import BatchStream, DataSource
from ganx.launch import free_port

RANK_SCRIPT = """
import sys, torch, torch.distributed as dist
from ganx.collectives import average_gradients, average_values
dist.init_process_group("gloo")
rank = dist.get_rank()
p, q = torch.nn.Parameter(torch.zeros(2, 3)), torch.nn.Parameter(torch.zeros(4))
p.grad = torch.full((2, 3), 1.0 + rank)      # rank 0: 1, rank 1: 2
q.grad = torch.arange(4.0) * (1 + 2 * rank)   # rank 0: 0 1 2 3, rank 1: 0 3 6 9
average_gradients([p, q], 2)
values = average_values(torch.tensor([10.0 * (rank + 1), -1.0]), 2)
print("grads", p.grad.flatten().tolist(), q.grad.tolist(), "values", values.tolist(), flush=True)
dist.destroy_process_group()
"""


def test_two_gloo_ranks_average_gradients_and_values():
    port = str(free_port())
    procs = []
    for rank in (0, 1):
        env = dict(
            os.environ,
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=port,
            RANK=str(rank),
            WORLD_SIZE="2",
            OMP_NUM_THREADS="1",
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", RANK_SCRIPT],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-2000:]
    expected = f"grads {[1.5] * 6} {[0.0, 2.0, 4.0, 6.0]} values {[15.0, -1.0]}"
    assert [out.strip() for out, _ in outputs] == [expected, expected]


def test_rank_shards_are_disjoint_and_cover_the_epoch():
    """Images 0..N-1 hold their own index: the batches each of 2 ranks reads in one epoch are
    disjoint, and together cover the epoch's batches (all but the drop_last remainder)."""
    n, batch = 70, 8
    source = DataSource("index", 1, 1, images=torch.arange(n, dtype=torch.float32).view(n, 1))
    seen = {}
    for rank in (0, 1):
        stream = BatchStream(source, batch, seed=3, device=torch.device("cpu"), rank=rank, world=2)
        per_epoch = stream.batches_per_epoch
        assert per_epoch == n // (batch * 2)
        seen[rank] = [int(i) for _ in range(per_epoch) for i in stream.next().flatten()]
        assert len(set(seen[rank])) == per_epoch * batch  # no sample twice within a rank
    assert not set(seen[0]) & set(seen[1])
    assert len(set(seen[0]) | set(seen[1])) == 2 * per_epoch * batch
    # the single-rank stream's epoch, cut into the same global batches, is exactly their union
    single = BatchStream(source, batch, seed=3, device=torch.device("cpu"))
    whole = [int(i) for _ in range(2 * per_epoch) for i in single.next().flatten()]
    assert sorted(whole) == sorted(seen[0] + seen[1])
