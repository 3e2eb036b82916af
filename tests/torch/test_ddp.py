"""Two processes (torch.multiprocessing.spawn, gloo) train a QuantLinear model with DDP.

torchrun / torch.distributed.run is broken in Debian's 1.13 build: spawn is the way.
Weights and steps (and DSQ's alphas) must stay identical across ranks and equal
a single-process run on the same global batch.
"""

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

STEPS = 4
GLOBAL_BATCH = 16


def make_model(estimator="stableqat"):
    import stableqat
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 24), nn.ReLU(), nn.Linear(24, 3)).double()
    stableqat.quantize_model(model, bits=2, estimator=estimator, skip=())
    return model


def batches():
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(GLOBAL_BATCH, 12, generator=g, dtype=torch.float64),
             torch.randint(0, 3, (GLOBAL_BATCH,), generator=g)) for _ in range(STEPS)]


def train(model, data, rank=0, world=1):
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    per_rank = GLOBAL_BATCH // world
    for x, t in data:
        xs, ts = x[rank * per_rank:(rank + 1) * per_rank], t[rank * per_rank:(rank + 1) * per_rank]
        opt.zero_grad()
        F.cross_entropy(model(xs), ts).backward()
        opt.step()


def worker(rank, world, port, out_dir, estimator):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        model = nn.parallel.DistributedDataParallel(make_model(estimator))
        train(model, batches(), rank, world)
        torch.save({k: v.detach() for k, v in model.module.state_dict().items()}, os.path.join(out_dir, f"{rank}.pt"))
    finally:
        dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("estimator", ["stableqat", "dsq"])
def test_ddp_two_processes_match_single_process(tmp_path, estimator):
    mp.spawn(worker, args=(2, free_port(), str(tmp_path), estimator), nprocs=2, join=True)
    rank0 = torch.load(tmp_path / "0.pt")
    rank1 = torch.load(tmp_path / "1.pt")
    single = make_model(estimator)
    initial = {k: v.clone() for k, v in single.state_dict().items()}
    train(single, batches())
    assert [k for k in rank0 if k.endswith("weight_step")] == ["0.weight_step", "2.weight_step"]
    alphas = [k for k in rank0 if k.endswith("weight_alpha")]
    assert alphas == (["0.weight_alpha", "2.weight_alpha"] if estimator == "dsq" else [])
    for name, value in single.state_dict().items():
        assert torch.equal(rank0[name], rank1[name]), name  # identical across ranks
        assert torch.allclose(rank0[name], value, rtol=1e-10, atol=1e-12), name  # = global-batch run
        assert not torch.equal(value, initial[name]), name  # training moved it
