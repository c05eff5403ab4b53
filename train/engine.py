"""The training engine: one epoch loop for every task, in one process or many.

``run(env, stop, task, dist)`` owns what every job does the same way: checkpoints and exact
resume, SIGTERM, early stopping and best-epoch export, the Debugger hook and the profiler,
mixed precision and channels-last, incremental training's starting weights, and distribution
(``dist``: one process, or a DDP process group in which every rank takes the same steps). The
task (``train.task.Task``) supplies the data, the model, the loss, the evaluation and the metric
lines.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from common import artifact
from common.export import export_onnx
from train import checkpoint, previous_model
from train.contract import MODEL_CHANNEL, TrainingEnv
from train.data.dataset import EpochSampler
from train.data.loading import Split, default_num_workers, make_loader
from train.data.stream import StreamSampler
from train.debugger import Instruments
from train.distributed import sync_batchnorm
from train.distributed.runtime import Dist
from train.distributed.stream_share import SharedStream
from train.errors import TrainingInterrupted, UserError
from train.interrupt import check_before_training
from train.optim import EarlyStopping
from train.precision import Precision
from train.seeding import choose_seed
from train.task import DataContext, Finish, Meter, Task, TaskData

log = logging.getLogger(__name__)

LOG_EVERY_BATCHES = 20


@dataclass
class Progress:
    """Where training stands; all of it goes into the checkpoint."""

    epoch: int = 0  # the epoch in progress (0-based)
    batch_samples: int = 0  # training samples of this epoch consumed, all ranks together
    best_score: float | None = None
    best_epoch: int | None = None
    best_metrics: dict[str, float] = field(default_factory=dict)
    last_metrics: dict[str, float] = field(default_factory=dict)  # of the last finished epoch

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class Training:
    """The objects one job trains with."""

    task: Task
    dist: Dist
    model: nn.Module  # the network itself
    net: nn.Module  # what the training step calls: ``model``, or DDP around it
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    per_batch: bool  # the scheduler steps every batch (else every epoch)
    precision: Precision
    scaler: torch.amp.GradScaler | None
    stopper: EarlyStopping
    workers: int
    batch: int  # training samples per step and process (mini_batch_size split on a host)
    meter: Meter
    progress: Progress = field(default_factory=Progress)
    best_state: dict[str, torch.Tensor] | None = None

    def loader(self, split: Split, batch_size: int) -> torch.utils.data.DataLoader:
        return make_loader(split, batch_size, self.workers,
                           pin_memory=self.precision.device.type == "cuda")

    def evaluate(self, split: Split) -> Meter:
        """The task's evaluation of ``split`` on every rank's share, summed over all ranks."""
        self.model.eval()
        with torch.inference_mode(), self.precision.autocast():
            # Per process, as in training: an instance's batch is split between its processes.
            batch = max(1, self.task.eval_batch_size // self.dist.local_world)
            meter = self.task.evaluate(self.model, self.loader(split, batch), self.precision)
        return meter.reduced(self.dist)


def run(env: TrainingEnv, stop: Callable[[], bool], task: Task, dist: Dist) -> dict[str, float]:
    params = task.params
    if dist.is_main:
        log.info("%s hyperparameters: %s", task.name,
                 {k: v for k, v in params.to_dict().items() if v is not None})
    # Rank 0's view of the checkpoint and the seed is every rank's: hosts need not share disks.
    resume = dist.broadcast(checkpoint.load(env.checkpoint_dir) if dist.is_main else None)
    previous = _previous_model(env, resume)
    seed = dist.broadcast(choose_seed(params.seed, resume))
    torch.manual_seed(seed)
    data = task.load_data(DataContext(env, seed, dist))
    if dist.local_world > 1:
        _share_streams(env, data, dist)
    check_before_training(stop, "while the data was loading")
    if previous is not None:
        task.check_previous(previous)
    training = _setup(task, dist, data, previous)
    fingerprint = task.fingerprint()
    if resume is not None:
        checkpoint.check_compatible(resume, fingerprint, env.checkpoint_dir)
    if previous is not None and data.validation is not None and not data.validation.streamed:
        # The previous model's score (not for a stream: that would cost a pass of the FIFO).
        start = training.evaluate(data.validation)
        log.info("incremental training: the previous model scores validation %s %.6f before "
                 "training", task.score_name, start.score)
    instruments = (Instruments.create(env, training.model, task.criterion,
                                      cuda=dist.device.type == "cuda", resuming=resume is not None)
                   if dist.is_main else Instruments())
    with instruments:
        if resume is not None:
            _restore(training, resume)
            instruments.restore(resume.get("debugger"))
            log.info("resuming from checkpoint %s at epoch %d, sample %d", env.checkpoint_dir,
                     training.progress.epoch, training.progress.batch_samples)
            if data.train.streamed and training.progress.batch_samples:
                # A FIFO cannot be rewound or skipped into: the epoch starts over (documented).
                log.warning("Pipe mode: epoch %d restarts from its first sample",
                            training.progress.epoch)
                training.progress.batch_samples = 0
                training.meter = task.new_meter()

        def save_checkpoint() -> None:
            # The epoch's training sums so far, over every rank (all ranks take part).
            meter_sums = dist.sum(training.meter.sums())
            if dist.is_main:
                state = _checkpoint_state(training, seed, fingerprint, meter_sums)
                state["debugger"] = instruments.state()
                path = checkpoint.save(env.checkpoint_dir, state)
                log.info("checkpoint saved to %s (epoch %d, sample %d)", path,
                         training.progress.epoch, training.progress.batch_samples)
            dist.barrier()

        def interrupted() -> TrainingInterrupted:
            save_checkpoint()
            where = f" on host {dist.hosts[0]}" if dist.enabled else ""
            return checkpoint.interruption(env.checkpoint_dir, training.progress.epoch, where)

        _epochs(training, data, stop, instruments, save_checkpoint, interrupted)
        progress = training.progress
        if training.best_state is not None:
            log.info("exporting the weights of epoch %d (best validation %s %.6f)",
                     progress.best_epoch, task.score_name, progress.best_score)
            training.model.load_state_dict(training.best_state)
        instruments.predict_mode()  # the exported weights' evaluation is not a validation epoch
        final = task.final_metrics(Finish(training.evaluate, dict(progress.last_metrics),
                                          progress.best_epoch, dict(progress.best_metrics)))
    if dist.is_main:
        artifact.save(env.model_dir, training.model.state_dict(), task.metadata(final))
        export_onnx(training.model, task.metadata(final), env.model_dir)
        log.info("model saved to %s", env.model_dir)
    return final


def _previous_model(env: TrainingEnv, resume: dict[str, Any] | None
                    ) -> previous_model.PreviousModel | None:
    if resume is None:
        return previous_model.load(env)
    if MODEL_CHANNEL in env.available_channels():
        log.info("resuming from a checkpoint: the %r channel is not used", MODEL_CHANNEL)
    return None


def _share_streams(env: TrainingEnv, data: TaskData, dist: Dist) -> None:
    """Pipe-mode splits on a host of several processes: one reader deals (stream_share)."""
    for split in (data.train, data.validation, data.test):
        if split is not None and isinstance(split.sampler, StreamSampler):
            split.sampler.reader = SharedStream(split.sampler.reader, dist,
                                                env.channel_distribution(split.channel))


def per_rank_batch(mini_batch_size: int, local_world: int, minimum: int = 1) -> int:
    """``mini_batch_size`` is per instance, split across its processes (the built-in's rule);
    each process's share must be at least the task's ``minimum``."""
    size = mini_batch_size // local_world
    if size < minimum:
        each = "its process" if local_world == 1 else f"each of its {local_world} processes"
        raise UserError(
            f"mini_batch_size={mini_batch_size} gives {each} {size} image(s) per step, but this "
            f"task trains on at least {minimum} per step and process (BatchNorm needs 2); "
            f"mini_batch_size is per instance and split between its processes: set it to at "
            f"least {minimum * local_world}")
    if size * local_world != mini_batch_size:
        log.warning("mini_batch_size=%d does not divide between %d processes: each trains on %d",
                    mini_batch_size, local_world, size)
    return size


def _setup(task: Task, dist: Dist, data: TaskData,
           previous: previous_model.PreviousModel | None) -> Training:
    params = task.params
    model = task.build_model(imagenet=previous is None)
    if previous is not None:
        previous_model.apply(previous, model)
    if params.syncbn and dist.enabled:
        model = sync_batchnorm.convert(model, dist.device)
    precision = Precision.choose(params.precision_dtype, dist.device)
    model = model.to(dist.device)
    task.criterion.to(dist.device)  # e.g. the weighted loss's per-class weights
    if precision.channels_last:
        model = model.to(memory_format=torch.channels_last)
    batch = per_rank_batch(params.mini_batch_size, dist.local_world, task.min_batch)
    steps = _steps_per_epoch(data, batch, dist)
    optimizer = task.optimizer(model.parameters())
    scheduler, per_batch = task.scheduler(optimizer, steps)
    workers = (params.num_workers if params.num_workers is not None
               else default_num_workers(dist.device.type == "cuda", dist.local_world))
    return Training(
        task=task, dist=dist, model=model, net=dist.wrap(model), optimizer=optimizer,
        scheduler=scheduler, per_batch=per_batch, precision=precision,
        scaler=precision.scaler(), workers=workers, batch=batch, meter=task.new_meter(),
        stopper=EarlyStopping(min_epochs=params.early_stopping_min_epochs,
                              patience=params.early_stopping_patience,
                              tolerance=params.early_stopping_tolerance),
    )


def _steps_per_epoch(data: TaskData, batch: int, dist: Dist) -> int:
    """Optimizer steps in one epoch, the same on every rank (the learning-rate schedule is
    planned in them): a sampled split's shortest share (an epoch ends when the first rank runs
    out: a ShardedByS3Key channel's hosts hold different counts); a stream's declared count
    over every rank."""
    sampler = data.train.sampler
    if isinstance(sampler, EpochSampler):
        sampler.set_epoch(0)
        return max(1, min(dist.all_gather(math.ceil(len(sampler) / batch))))
    return max(1, math.ceil((data.train_samples or 0) / (batch * dist.world)))


def _start_in_order(samples: int, sampler: Any, dist: Dist) -> int:
    """Where to resume in the sampler's order after ``samples`` of every rank: that order
    spans all ranks' data (FullyReplicated), or only this host's share (ShardedByS3Key, split
    between the host's processes), of which the host has trained its part."""
    if isinstance(sampler, EpochSampler):
        return samples * sampler.num_replicas // dist.world
    return samples


def _epochs(training: Training, data: TaskData, stop: Callable[[], bool],
            instruments: Instruments, save_checkpoint: Callable[[], None],
            interrupted: Callable[[], TrainingInterrupted]) -> None:
    task, dist, progress = training.task, training.dist, training.progress
    params = task.params
    batch = training.batch
    frequency = params.checkpoint_frequency or 1
    while progress.epoch < params.epochs:
        epoch = progress.epoch
        data.train.dataset.set_epoch(epoch)
        data.train.sampler.set_epoch(epoch, start=_start_in_order(progress.batch_samples,
                                                                  data.train.sampler, dist))
        instruments.train_mode()
        samples_before = progress.batch_samples
        if not _train_epoch(training, training.loader(data.train, batch), stop,
                            instruments.after_step):
            raise interrupted()
        task.end_epoch(epoch, progress.batch_samples, dist)
        if not training.per_batch:
            training.scheduler.step()
        train_meter = training.meter.reduced(dist)
        validation = None
        if data.validation is not None:
            instruments.eval_mode()
            validation = training.evaluate(data.validation)
        progress.last_metrics = task.log_epoch(epoch, train_meter, validation)
        log.info("epoch %d: %d training samples on all ranks", epoch,
                 progress.batch_samples - samples_before)
        stop_early = False
        if validation is not None:
            if progress.best_score is None or validation.score > progress.best_score:
                progress.best_score, progress.best_epoch = validation.score, epoch
                progress.best_metrics = dict(progress.last_metrics)
                training.best_state = copy.deepcopy(training.model.state_dict())
            if params.early_stopping:
                stop_early = training.stopper.update(epoch + 1, validation.score)
        progress.epoch, progress.batch_samples = epoch + 1, 0
        training.meter = task.new_meter()
        if stop_early:
            log.info("early stopping after epoch %d: validation %s has not improved for %d "
                     "epochs (best %.6f)", epoch, task.score_name,
                     training.stopper.epochs_without_improvement, training.stopper.best or 0.0)
            break
        if dist.any(stop()):
            raise interrupted()
        if progress.epoch % frequency == 0 or progress.epoch == params.epochs:
            save_checkpoint()


def _batches(loader: Iterable[Any]) -> Iterator[Any | None]:
    """The loader's batches, then None forever (a rank that has run out keeps voting)."""
    yield from loader
    while True:
        yield None


def _train_epoch(training: Training, loader: Iterable[Any], stop: Callable[[], bool],
                 after_step: Callable[[], None]) -> bool:
    """Train until any rank runs out of batches; False when stopped (SIGTERM) after a step."""
    task, dist, progress, precision = (training.task, training.dist, training.progress,
                                       training.precision)
    training.net.train()
    tick, seen = time.perf_counter(), 0
    for steps, batch in enumerate(_batches(loader), start=1):
        size = task.batch_size(batch) if batch is not None else 0
        read = task.samples_read(batch) if batch is not None else 0
        agreed = dist.agree_step(batch is not None, batch is not None and stop(), read,
                                 batch is not None and size < task.min_batch)
        if not agreed.proceed:
            return True
        task.observe(batch)
        if not agreed.skip:
            with precision.autocast():
                loss = task.train_step(training.net, batch, training.meter, precision)
            training.optimizer.zero_grad(set_to_none=True)
            if training.scaler is not None:
                training.scaler.scale(loss).backward()
                training.scaler.step(training.optimizer)
                training.scaler.update()
            else:
                loss.backward()
                training.optimizer.step()
            if training.per_batch:
                training.scheduler.step()
        progress.batch_samples += agreed.samples
        seen += agreed.samples
        after_step()
        if steps % LOG_EVERY_BATCHES == 0:
            now = time.perf_counter()
            log.info("Epoch[%d] Batch [%d]\tSpeed: %.2f samples/sec%s", progress.epoch, steps,
                     seen / max(now - tick, 1e-9), training.meter.progress())
            tick, seen = now, 0
        if agreed.stop:
            return False
    return True


def _checkpoint_state(training: Training, seed: int, fingerprint: dict[str, Any],
                      meter_sums: torch.Tensor) -> dict[str, Any]:
    return {
        "task": training.task.name,
        "model": training.model.state_dict(),
        "optimizer": training.optimizer.state_dict(),
        "scheduler": training.scheduler.state_dict(),
        "scaler": training.scaler.state_dict() if training.scaler is not None else None,
        "early_stopping": training.stopper.state_dict(),
        "progress": training.progress.to_dict(),
        "meter": meter_sums,
        "best_state": training.best_state,
        "task_state": training.task.state_dict(),
        "rng": torch.get_rng_state(),
        "seed": seed,
        "fingerprint": fingerprint,
        "hyperparameters": training.task.params.to_dict(),
        "world": training.dist.world,
    }


def _restore(training: Training, state: dict[str, Any]) -> None:
    training.model.load_state_dict(state["model"])
    training.optimizer.load_state_dict(state["optimizer"])
    training.scheduler.load_state_dict(state["scheduler"])
    if training.scaler is not None and state.get("scaler"):
        training.scaler.load_state_dict(state["scaler"])
    training.stopper.load_state_dict(state["early_stopping"])
    for name, value in state["progress"].items():
        setattr(training.progress, name, value)
    # The saved sums cover every rank: rank 0 takes them, the others start at zero.
    if training.dist.is_main:
        training.meter.set_sums(state["meter"])
    training.best_state = state["best_state"]
    training.task.load_state_dict(state["task_state"])
    torch.set_rng_state(state["rng"])
