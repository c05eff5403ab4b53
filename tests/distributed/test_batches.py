"""The engine's per-rank arithmetic, on a stand-in for rank 0 of a 2-host x 2-process job: the
batch split, the steps the learning-rate schedule is planned in, and where a resumed epoch
starts, for replicated and sharded channels."""

from __future__ import annotations

import pytest

from train import engine
from train.contract import DISTRIBUTION_FULLY_REPLICATED, DISTRIBUTION_SHARDED
from train.data import loading
from train.data.dataset import EpochSampler
from train.data.loading import Split
from train.distributed.runtime import Dist
from train.errors import UserError
from train.task import TaskData


class TwoHostsTwoProcesses(Dist):
    """Rank 0 of 2 hosts x 2 processes; ``shares``: every rank's value for all_gather."""

    enabled = True
    world = 4
    local_world = 2

    def __init__(self, shares: list[int] | None = None) -> None:
        super().__init__()
        self.shares = shares

    def all_gather(self, value):
        return [value] if self.shares is None else [value, *self.shares[1:]]


def _data(size: int, distribution: str, dist: Dist) -> TaskData:
    rank, count = dist.shard(distribution)
    sampler = EpochSampler(size, shuffle=True, seed=0, rank=rank, num_replicas=count, pad=True)
    return TaskData(Split("train", None, sampler), train_samples=size)  # type: ignore[arg-type]


def test_a_task_that_needs_two_images_per_step_refuses_one_per_process():
    assert engine.per_rank_batch(8, 4, minimum=2) == 2
    with pytest.raises(UserError, match=r"mini_batch_size=4 gives each of its 4 processes 1 "
                                        r"image\(s\).*at least 8"):
        engine.per_rank_batch(4, 4, minimum=2)
    with pytest.raises(UserError, match="gives its process 1"):
        engine.per_rank_batch(1, 1, minimum=2)


def test_replicated_data_plans_the_whole_channel_over_every_rank():
    dist = TwoHostsTwoProcesses()
    # 100 images over 4 ranks: 25 each (padded), batches of 8 → 4 steps.
    assert engine._steps_per_epoch(_data(100, DISTRIBUTION_FULLY_REPLICATED, dist), 8, dist) == 4


def test_sharded_data_plans_this_hosts_share_and_agrees_on_the_shortest():
    # This host holds 100 images (50 per process: 7 steps of 8); the other host's processes
    # report 5 steps: every rank plans 5 (an epoch ends when the first rank runs out).
    dist = TwoHostsTwoProcesses(shares=[0, 7, 5, 5])
    assert engine._steps_per_epoch(_data(100, DISTRIBUTION_SHARDED, dist), 8, dist) == 5
    alone = TwoHostsTwoProcesses(shares=[0, 7, 7, 7])
    assert engine._steps_per_epoch(_data(100, DISTRIBUTION_SHARDED, alone), 8, alone) == 7


def test_a_resumed_epoch_starts_after_this_hosts_part_of_the_samples_trained():
    dist = TwoHostsTwoProcesses()
    # 3 steps of 4 ranks x 8 = 96 samples trained, 48 of them by this host's two processes.
    replicated = _data(200, DISTRIBUTION_FULLY_REPLICATED, dist).train.sampler
    sharded = _data(200, DISTRIBUTION_SHARDED, dist).train.sampler
    assert engine._start_in_order(96, replicated, dist) == 96
    assert engine._start_in_order(96, sharded, dist) == 48


def test_weighted_loss_counts_the_whole_sharded_channel():
    # 2 hosts x 2 processes; ranks in host order, each host's processes report its part.
    parts = [([3, 1], 4), ([3, 1], 4), ([1, 5], 6), ([1, 5], 6)]

    def gather(value):
        return parts

    assert loading._whole_channel([3, 1], 4, 2, gather) == ([4, 6], 10)  # ShardedByS3Key
    assert loading._whole_channel([3, 1], 4, 4, gather) == ([3, 1], 4)  # FullyReplicated
