"""SyncBatchNorm on CPU (gloo): DDP over two processes with ``GlooSyncBatchNorm`` computes the
gradients, and the running statistics, of one process with both batches, to float64 precision."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from common.models import build_classifier
from tests.distributed.hosts import free_port
from train.distributed.sync_batchnorm import GlooSyncBatchNorm, convert


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_classifier("resnet", 18, 10, None).double()


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return (torch.randn(8, 3, 32, 32, generator=generator, dtype=torch.float64),
            torch.randint(0, 10, (8,), generator=generator))


def _steps(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> None:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def _rank(rank: int, port: int, results: dict) -> None:
    from torch.nn.parallel import DistributedDataParallel

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        images, labels = _batch()
        model = convert(_model(), torch.device("cpu"))
        assert any(isinstance(m, GlooSyncBatchNorm) for m in model.modules())
        _steps(DistributedDataParallel(model), images[rank::2], labels[rank::2])
        if rank == 0:
            results.update({k: v.clone() for k, v in model.state_dict().items()})
    finally:
        dist.destroy_process_group()


def test_two_processes_train_exactly_as_one_with_both_batches() -> None:
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_rank, args=(free_port(), results), nprocs=2)
        distributed = dict(results)
    images, labels = _batch()
    reference = _model()
    _steps(reference, torch.cat([images[0::2], images[1::2]]),
           torch.cat([labels[0::2], labels[1::2]]))
    for name, value in reference.state_dict().items():
        torch.testing.assert_close(distributed[name], value, rtol=1e-9, atol=1e-9, msg=name)
